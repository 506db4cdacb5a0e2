"""Fixtures of the store tests: a small database built once per module, and a private copy of it per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import kmerdb

_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """Genomes A and B of the fixtures, k = 15, two partitions (built once per module)."""
    path = tmp_path_factory.mktemp("store") / "clean.kmerdb"
    genomes = {"A": [str(_FIXTURES / "genome_a.fa")], "B": [str(_FIXTURES / "genome_b.fa.gz")]}
    kmerdb.build(path, genomes, k=15, partitions=2, threads=1)
    return path


@pytest.fixture
def db(pristine, tmp_path) -> Path:
    """A private copy of the pristine database (symlinks copied as links)."""
    path = tmp_path / "db.kmerdb"
    shutil.copytree(pristine, path, symlinks=True)
    return path
