"""Analytics on many genomes, in every colour encoding, against the oracle: weights,
intersections, the distances, spectra and colour classes; both ways of counting pairs."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from query.manygenomes import K, collection, oracle_matrix

import kmerdb
from kmerdb.analysis import analytics, pairs
from kmerdb.store.encodings import encoding_for

ENCODINGS = ("classes", "dense", "auto")


@pytest.fixture(scope="session")
def many(tmp_path_factory):
    return collection(tmp_path_factory)


def _jaccard(a: dict, b: dict) -> float:
    union = len(a.keys() | b.keys())
    return len(a.keys() & b.keys()) / union if union else 1.0


def _bray_curtis(a: dict, b: dict) -> float:
    den = sum(a.values()) + sum(b.values())
    return 1.0 - 2.0 * sum(min(v, b.get(x, 0)) for x, v in a.items()) / den if den else 0.0


def _containment(a: dict, b: dict) -> float:
    return len(a.keys() & b.keys()) / len(a) if a else 1.0


def _mash(a: dict, b: dict) -> float:
    j = _jaccard(a, b)
    return max(0.0, -math.log(2 * j / (1 + j)) / K) + 0.0 if j > 0 else 1.0


@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize("colours", ENCODINGS)
def test_weights_and_intersections(many, colours, counts):
    sets, labels = many.sets, many.labels
    with kmerdb.open(many.db(colours, counts)) as db:
        w = db.col_weights(threads=1)
        assert w.distinct.tolist() == [len(sets[x]) for x in labels]
        want_total = [sum(sets[x].values()) if counts else len(sets[x]) for x in labels]
        assert w.total.tolist() == want_total
        inter = db.intersections(threads=2)
    want = oracle_matrix(sets, labels, lambda a, b: len(a.keys() & b.keys()))
    assert np.array_equal(inter, want.astype(np.int64))


@pytest.mark.parametrize("colours", ENCODINGS)
def test_distances(many, colours):
    sets, labels = many.sets, many.labels
    with kmerdb.open(many.db(colours, True)) as db:
        for metric, fn in (
            ("jaccard", _jaccard),
            ("containment", _containment),
            ("mash", _mash),
            ("bray-curtis", _bray_curtis),
        ):
            got = db.distance(metric, threads=1).matrix
            assert np.allclose(got, oracle_matrix(sets, labels, fn), rtol=0, atol=1e-12), metric
        jd = db.distance("jaccard-distance", threads=1).matrix
        assert np.allclose(jd, 1 - oracle_matrix(sets, labels, _jaccard), rtol=0, atol=1e-12)
        near = list(db.iter_distances("jaccard-distance", nearest=2, threads=1))
    assert len(near) == 2 * len(labels)
    by_label = {label: i for i, label in enumerate(labels)}
    for a, b, value in near:
        assert value == pytest.approx(1 - _jaccard(sets[a], sets[b]), abs=1e-12)
        assert by_label[a] != by_label[b]


@pytest.mark.parametrize("colours", ENCODINGS)
def test_spectrum(many, colours):
    with kmerdb.open(many.db(colours, True)) as db:
        spectra = db.spectrum(threads=1)
    for label in many.labels:
        want = sorted(Counter(many.sets[label].values()).items())
        assert spectra[label] == want


def test_colour_classes_agree_between_encodings(many):
    tables = {}
    for colours in ENCODINGS:
        with kmerdb.open(many.db(colours)) as db:
            tables[colours] = analytics.colour_classes(db, threads=1)
    for table in tables.values():
        order = np.lexsort(table.raw.T[::-1])
        table.raw, table.weights = table.raw[order], table.weights[order]
    first = tables["dense"]
    assert int(first.weights.sum()) == len(set().union(*[set(s) for s in many.sets.values()]))
    for table in tables.values():
        assert np.array_equal(table.raw, first.raw)
        assert np.array_equal(table.weights, first.weights)


def test_products_and_byte_pairs_agree(many, monkeypatch):
    """Pair counts by float32 products (chunks of tiny weight, one class alone in float64)
    equal those of the byte-pair histograms."""
    path = many.db("classes")
    with kmerdb.open(path) as db:
        table = analytics.colour_classes(db, threads=1)
        g = table.n_genomes
        monkeypatch.setattr(pairs, "GEMM_GENOMES", 10**6)
        histograms = pairs.pair_rows(table, 0, g)
        rows = pairs.pair_rows(table, 5, 17)
        monkeypatch.setattr(pairs, "GEMM_GENOMES", 2)
        monkeypatch.setattr(pairs, "_F32_EXACT", 3)
        monkeypatch.setattr(pairs, "_GEMM_BYTES", 8 * g * 7)
        products = pairs.pair_rows(table, 0, g)
        assert np.array_equal(products, histograms)
        monkeypatch.setattr(pairs, "_GEMM_BLOCK", 16)  # blocks above the diagonal, mirrored
        assert np.array_equal(pairs.pair_rows(table, 0, g), histograms)
        assert np.array_equal(pairs.pair_rows(table, 5, 17), rows)
        assert np.array_equal(db.intersections(threads=1), histograms)


@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize("appended", ["classes", "dense"])
def test_after_appends_and_removals(many, appended, counts):
    """Layers of a class group beside appended groups (classes, or dense)."""
    path, labels = many.edited("classes", counts, appended)
    with kmerdb.open(path) as db:
        families = [
            {encoding_for(g.kind).family for g in rec.groups} for part in db.snapshot.partitions for rec in part
        ]
    assert any(len(f) > 1 for f in families) == (appended == "dense")
    sets = many.sets
    with kmerdb.open(path) as db:
        w = db.col_weights(threads=1)
        assert w.distinct.tolist() == [len(sets[x]) for x in labels]
        inter = db.intersections(threads=1)
        assert np.array_equal(inter, oracle_matrix(sets, labels, lambda a, b: len(a.keys() & b.keys())).astype(np.int64))
        if counts:
            bc = db.distance("bray-curtis", threads=1).matrix
            assert np.allclose(bc, oracle_matrix(sets, labels, _bray_curtis), rtol=0, atol=1e-12)
            spectra = db.spectrum(threads=1)
            assert all(spectra[x] == sorted(Counter(sets[x].values()).items()) for x in labels)


def test_spread_accumulator_merges_like_one_table(monkeypatch):
    from kmerdb.analysis import classes

    monkeypatch.setattr(classes, "_MERGE_ROWS", 64)  # buckets merge every few rows
    rng = np.random.default_rng(4)
    pool = rng.integers(0, 256, (300, 13), dtype=np.uint8)
    spread = classes.SpreadAccumulator(classes.empty_rows("presence", 100), buckets=5)
    want: Counter = Counter()
    for _ in range(20):
        pick = rng.integers(0, pool.shape[0], 90)
        weights = rng.integers(1, 9, pick.size)
        spread.add(pool[pick], weights)
        for row, w in zip(pick.tolist(), weights.tolist()):
            want[pool[row].tobytes()] += w
    raw, weights = spread.result()
    assert dict(zip((r.tobytes() for r in raw), weights.tolist())) == dict(want)
    assert raw.shape[0] == len(want)
