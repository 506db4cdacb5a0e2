"""Databases written by format 1 (dense columns only) open, answer and take edits.

``fixtures/format1.tar.gz`` holds two indexes written by the last release of format 1 from
the fixture genomes (k=21, 4 partitions): ``presence.kmerdb`` (A and B built, C appended:
two column groups per old layer) and ``counts.kmerdb`` (A, B, C counted).
"""

from __future__ import annotations

import tarfile

import pytest
from conftest import FIXTURES
from dbcheck import assert_matches_oracle, universe

import kmerdb
from kmerdb.store.catalog import PILOT_DICTIONARY_FORMAT
from kmerdb.store.encodings import encoding_for

K = 21
SOURCES = {
    "A": [str(FIXTURES / "genome_a.fa")],
    "B": [str(FIXTURES / "genome_b.fa.gz")],
    "C": [str(FIXTURES / "genome_c_ref.fa")],
}
COUNTED = {**SOURCES, "C": [str(FIXTURES / "genome_c.fq")]}


@pytest.fixture()
def old(tmp_path):
    with tarfile.open(FIXTURES / "format1.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path


def _kinds(path) -> set[str]:
    with kmerdb.open(path) as db:
        return {g.kind for layers in db.snapshot.partitions for rec in layers for g in rec.groups}


@pytest.mark.parametrize("name, genomes", [("presence", SOURCES), ("counts", COUNTED)])
def test_format1_opens_and_answers_as_the_oracle(old, oracle_sets, name, genomes):
    path = old / f"{name}.kmerdb"
    sets = oracle_sets(K, genomes)
    kmers, codes = universe(sets, K)
    with kmerdb.open(path) as db:
        assert db.snapshot.format_version == 1
        assert db.config.colours == "auto"  # the key is absent from a format-1 config
    assert _kinds(path) <= {"presence", "counts"}
    assert_matches_oracle(path, sets, ["A", "B", "C"], kmers, codes)
    assert kmerdb.verify(path, threads=1).ok


def test_format1_takes_colour_classes_and_says_so(old, oracle_sets):
    path = old / "presence.kmerdb"
    sets = oracle_sets(K, {**SOURCES, "D": [str(FIXTURES / "genome_c.fq")]})
    kmers, codes = universe(sets, K)
    with kmerdb.open(path, mode="a") as db, db.transaction():
        db.append_genome("D", str(FIXTURES / "genome_c.fq"), threads=1)
    with kmerdb.open(path, mode="a") as db, db.transaction():
        db.compact(threads=1)
    assert_matches_oracle(path, sets, ["A", "B", "C", "D"], kmers, codes)
    kinds = _kinds(path)
    with kmerdb.open(path) as db:
        # layers (and colour-class groups) of the current format: the format says so, for
        # older libraries to refuse it
        assert max(encoding_for(kind).since for kind in kinds) <= kmerdb.FORMAT_VERSION
        assert db.snapshot.format_version == kmerdb.FORMAT_VERSION
    assert kmerdb.verify(path, threads=1).ok


def test_format1_keeps_its_format_when_nothing_new_is_written(old, oracle_sets):
    """A removal writes no file: the database stays readable by the library that made it."""
    path = old / "presence.kmerdb"
    with kmerdb.open(path, mode="a") as db, db.transaction():
        db.remove_genome("B")
    sets = oracle_sets(K, SOURCES)
    kmers, codes = universe(sets, K)
    with kmerdb.open(path) as db:
        assert db.snapshot.format_version == 1
    assert_matches_oracle(path, sets, ["A", "C"], kmers, codes)


def _roles(path) -> set[str]:
    with kmerdb.open(path) as db:
        return {role for layers in db.snapshot.partitions for rec in layers for role in rec.files}


@pytest.mark.parametrize("name, genomes", [("presence", SOURCES), ("counts", COUNTED)])
def test_format1_reindexed_approx_and_back_takes_dictionaries(old, oracle_sets, name, genomes):
    """An MPHF layer going approx keeps its MPHF (new fingerprints); going exact again it gets a
    minimizer dictionary and its groups in unitig order, and the format says so."""
    path = old / f"{name}.kmerdb"
    sets = oracle_sets(K, genomes)
    kmers, codes = universe(sets, K)
    assert _roles(path) == {"mphf", "evidence", "unitigs"}
    kmerdb.reindex(path, "approx", fp_bits=12, threads=1)
    assert _roles(path) == {"mphf", "evidence", "unitigs"}
    with kmerdb.open(path) as db:
        assert db.snapshot.format_version == 1  # new fingerprints only: nothing of a newer format
    kmerdb.reindex(path, "exact", threads=1)
    assert _roles(path) == {"dictionary", "unitigs"}
    with kmerdb.open(path) as db:
        # the new dictionaries are of version 2 (format 6); the groups are reordered as they
        # are (no new layer)
        assert db.snapshot.format_version == PILOT_DICTIONARY_FORMAT
    assert_matches_oracle(path, sets, ["A", "B", "C"], kmers, codes)
    assert kmerdb.verify(path, threads=1).ok
