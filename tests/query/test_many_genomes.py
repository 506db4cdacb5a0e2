"""Queries and lookups on many genomes, in every colour encoding, against the oracle."""

from __future__ import annotations

import dbcheck
import numpy as np
import oracle
import pytest

import kmerdb
from query.manygenomes import collection

ENCODINGS = ("classes", "dense", "auto")


@pytest.fixture(scope="session")
def many(tmp_path_factory):
    return collection(tmp_path_factory)


@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize("colours", ENCODINGS)
def test_query_and_lookup_match_the_oracle(many, colours, counts):
    path = many.db(colours, counts)
    reads = many.reads()
    want_hits, want_n = many.hits(reads)
    kmers, codes = dbcheck.universe(many.sets, 21, extra=50)
    with kmerdb.open(path) as db:
        assert db.genomes == many.labels
        res = db.query(reads)
        assert np.array_equal(res.n_kmers, want_n)
        assert np.array_equal(res.hits, want_hits)
        found = np.array([sum(1 for x in oracle.kmers(r, 21) if any(x in s for s in many.sets.values())) for r in reads])
        assert np.array_equal(res.found, found)
        assert np.array_equal(res.found_raw, found)
    dbcheck.assert_matches_oracle(path, many.sets, many.labels, kmers, codes)


def test_the_encodings_are_the_ones_asked_for(many):
    from query.manygenomes import group_kinds

    # built with exact evidence: classes laid out in unitig order
    assert group_kinds(many.db("classes")) == {"unitig-classes"}
    assert group_kinds(many.db("classes", True)) == {"unitig-class-counts"}
    assert group_kinds(many.db("dense")) == {"presence"}
    assert group_kinds(many.db("dense", True)) == {"counts"}
    # related genomes: some classes are written as differences, so the queries and lookups
    # above went through chains of them
    for counts in (False, True):
        with kmerdb.open(many.db("classes", counts)) as db:
            groups = [g for part in db._engine().layers for layer in part for g in layer.groups]
            differences = sum(int((g.parents() >= 0).sum()) for g in groups)
            assert differences > 0
            # and stats counts them from the files' forms
            classes = db.stats()["classes"]
            assert classes["differences"] == differences
            assert classes["count"] == sum(g.n_classes for g in groups)


def test_query_in_small_batches_and_threads(many):
    """Batches that split the reads: the same hits."""
    path = many.db("classes", True)
    reads = many.reads(n=60, seed=9)
    want_hits, _ = many.hits(reads)
    with kmerdb.open(path) as db:
        db._engine()._batch_bases = 500
        assert np.array_equal(db.query(reads).hits, want_hits)
    with kmerdb.open(path) as db:
        engine = db._engine()
        assert engine._batch_seqs is not None  # class hits take a (sequences, genomes) block
        engine._batch_seqs = 7
        assert np.array_equal(db.query(reads).hits, want_hits)


@pytest.mark.parametrize(
    "narrow, length, want_type",
    [
        (None, 120, np.int8),  # 100 positions per read at most: a byte per cell
        (None, 300, np.int16),
        (((np.int32, 2**31 - 1),), 120, np.int32),
        ((), 120, None),  # straight into the int64 hits
    ],
)
def test_class_hits_add_up_in_any_width(many, monkeypatch, narrow, length, want_type):
    """Class hits summed in the narrowest type that holds every read's positions (wrapping on
    the way through differences and complements), or straight into the int64 hits: the same
    answer."""
    from kmerdb.query import engine

    if narrow is not None:
        monkeypatch.setattr(engine, "_NARROW", narrow)
    used = []
    finish = engine._Hits.finish

    def spy(self):
        used.append(None if self.narrow is None else self.narrow.dtype.type)
        finish(self)

    monkeypatch.setattr(engine._Hits, "finish", spy)
    reads = many.reads(n=40, length=length, seed=11)
    want_hits, _ = many.hits(reads)
    for counts in (False, True):
        with kmerdb.open(many.db("classes", counts)) as db:
            assert np.array_equal(db.query(reads).hits, want_hits)
    assert set(used) == {want_type}


@pytest.mark.parametrize("colours", ["classes", "dense"])
def test_approx_evidence_with_z_agrees_with_dense(many, colours):
    """With approx evidence and the z rule, class and dense indexes answer alike, and the
    exact-evidence hits bound them (approx may only add false positives, z only removes)."""
    reads = many.reads(n=30, seed=5)
    kw = {"evidence": "approx", "fp_bits": 4}
    results = {}
    for z in (0, 2):
        for c in ("classes", "dense"):
            with kmerdb.open(many.db(c, False, **kw)) as db:
                results[(c, z)] = db.query(reads, z=z)
    for z in (0, 2):
        a, b = results[("classes", z)], results[("dense", z)]
        assert np.array_equal(a.hits, b.hits)
        assert np.array_equal(a.found, b.found)
        assert np.array_equal(a.found_raw, b.found_raw)
    want, _ = many.hits(reads)
    assert (results[(colours, 0)].hits >= want).all()
    assert (results[(colours, 2)].hits <= results[(colours, 0)].hits).all()


def test_approx_lookup_is_a_superset_of_the_oracle(many):
    kmers, codes = dbcheck.universe(many.sets, 21, extra=50)
    want = dbcheck.expected(many.sets, many.labels, kmers) > 0
    got = {}
    for c in ("classes", "dense"):
        with kmerdb.open(many.db(c, False, evidence="approx", fp_bits=4)) as db:
            got[c] = db.lookup(codes)
    assert np.array_equal(got["classes"], got["dense"])
    assert (got["classes"] >= want).all()
    present = want.any(axis=1)
    assert np.array_equal(got["classes"][present], want[present])  # members answer exactly


@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize(("colours", "appended"), [("classes", None), ("auto", None), ("classes", "dense")])
def test_after_appends_and_removals(many, colours, appended, counts):
    """Layers of several groups (appends) and genomes gone (removals) answer as the oracle."""
    path, labels = many.edited(colours, counts, appended)
    reads = many.reads(n=30, seed=17)
    want_hits, want_n = many.hits(reads, labels)
    kmers, codes = dbcheck.universe(many.sets, 21, extra=30)
    with kmerdb.open(path) as db:
        assert db.genomes == labels
        res = db.query(reads)
        assert np.array_equal(res.hits, want_hits)
        assert np.array_equal(res.n_kmers, want_n)
    dbcheck.assert_matches_oracle(path, many.sets, labels, kmers, codes)
