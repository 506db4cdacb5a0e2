"""Databases of format 5 (dictionaries of version 1, hash functions of levels) open, answer and
take edits; what this library writes into them is of version 2, and the format record says so.

A format-5 database is made here as that library made it: dictionaries written at version 1,
format 5 the newest the catalog knows.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES
from dbcheck import assert_matches_oracle, universe

import kmerdb
from kmerdb.core import dictionary as D
from kmerdb.store import catalog
from kmerdb.store.catalog import PILOT_DICTIONARY_FORMAT

K = 21
SOURCES = {
    "A": [str(FIXTURES / "genome_a.fa")],
    "B": [str(FIXTURES / "genome_b.fa.gz")],
    "C": [str(FIXTURES / "genome_c_ref.fa")],
}


def _versions(path) -> set[int]:
    """Versions of the database's dictionaries."""
    with kmerdb.open(path) as db:
        paths = [rec.files["dictionary"].path for layers in db.snapshot.partitions for rec in layers
                 if "dictionary" in rec.files]
    return {int(np.load(path / p, mmap_mode="r")[1]) for p in paths}


@pytest.fixture()
def format5(tmp_path, monkeypatch):
    path = tmp_path / "old.kmerdb"
    with monkeypatch.context() as patch:
        patch.setattr(D, "VERSION", 1)
        patch.setattr(catalog, "FORMAT_VERSION", 5)
        patch.setattr(catalog, "PILOT_DICTIONARY_FORMAT", 5)
        kmerdb.build(path, {"A": SOURCES["A"], "B": SOURCES["B"]}, k=K, partitions=4, threads=1)
    assert _versions(path) == {1}
    return path


def test_format5_opens_and_answers_as_the_oracle(format5, oracle_sets):
    sets = oracle_sets(K, {"A": SOURCES["A"], "B": SOURCES["B"]})
    kmers, codes = universe(sets, K)
    with kmerdb.open(format5) as db:
        assert db.snapshot.format_version == 5
    assert_matches_oracle(format5, sets, ["A", "B"], kmers, codes)
    assert kmerdb.verify(format5, threads=1).ok


def test_format5_appended_holds_both_versions_and_says_so(format5, oracle_sets):
    sets = oracle_sets(K, SOURCES)
    kmers, codes = universe(sets, K)
    with kmerdb.open(format5, mode="a") as db, db.transaction():
        db.append_genome("C", SOURCES["C"][0], threads=1)
    assert _versions(format5) == {1, 2}
    with kmerdb.open(format5) as db:
        assert db.snapshot.format_version == PILOT_DICTIONARY_FORMAT == kmerdb.FORMAT_VERSION
    assert_matches_oracle(format5, sets, ["A", "B", "C"], kmers, codes)
    assert kmerdb.verify(format5, threads=1).ok


def test_format5_reindexed_gets_version_2_dictionaries(format5, oracle_sets):
    sets = oracle_sets(K, {"A": SOURCES["A"], "B": SOURCES["B"]})
    kmers, codes = universe(sets, K)
    kmerdb.reindex(format5, "approx", fp_bits=12, threads=1)
    kmerdb.reindex(format5, "exact", threads=1)
    assert _versions(format5) == {2}
    with kmerdb.open(format5) as db:
        assert db.snapshot.format_version == PILOT_DICTIONARY_FORMAT
    assert_matches_oracle(format5, sets, ["A", "B"], kmers, codes)
