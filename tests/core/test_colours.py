"""Sparse genome rows and colour classes against dense brute force."""

from __future__ import annotations

import numpy as np
import pytest

import kmerdb.core.colours as colours
from kmerdb.core.colours import SparseRows, segment_positions


def dense_case(n=400, g=37, seed=3, counts=False):
    rng = np.random.default_rng(seed)
    m = (rng.random((n, g)) < 0.3) * rng.integers(1, 300, (n, g))
    m[::4] = m[1]  # many repeated colours
    m[5] = 0  # a row no genome holds
    return m.astype(np.uint32) if counts else m > 0


def test_segment_positions_concatenates_ranges():
    got = segment_positions(np.array([5, 0, 10, 3, 7]), np.array([2, 0, 3, 1, 0]))
    assert got.tolist() == [5, 6, 10, 11, 12, 3]
    assert segment_positions(np.zeros(0, np.int64), np.zeros(0, np.int64)).size == 0


@pytest.mark.parametrize("counts", [False, True])
def test_round_trips_and_transformations_match_dense(counts):
    m = dense_case(counts=counts)
    dtype = np.uint32 if counts else bool
    rows = SparseRows.from_dense(m)
    assert rows.n == m.shape[0] and rows.nnz == int(np.count_nonzero(m))
    assert np.array_equal(rows.to_dense(dtype), m)
    assert np.array_equal(rows.packed(), np.packbits(m > 0, axis=1))
    pick = np.array([9, 0, 9, 399, 5])
    assert np.array_equal(rows.take(pick).to_dense(dtype), m[pick])
    # remap: reverse the columns and drop two
    g = m.shape[1]
    cmap = np.arange(g)[::-1].copy()
    cmap[[3, 20]] = -1
    want = np.zeros_like(m)
    for old, new in enumerate(cmap):
        if new >= 0:
            want[:, new] = m[:, old]
    assert np.array_equal(rows.remap(cmap, g).to_dense(dtype), want)
    # side by side and one after the other
    both = SparseRows.hstack([(rows, 0), (rows.take(np.arange(rows.n)[::-1]), g)], 2 * g)
    assert np.array_equal(both.to_dense(dtype), np.concatenate([m, m[::-1]], axis=1))
    stacked = SparseRows.vstack([rows, rows.take(pick)], g)
    assert np.array_equal(stacked.to_dense(dtype), np.concatenate([m, m[pick]]))
    kept, idx = rows.drop_empty()
    assert np.array_equal(kept.to_dense(dtype), m[m.any(axis=1)]) and np.array_equal(idx, np.flatnonzero(m.any(axis=1)))


def test_from_pairs_sorts_and_keeps_counts_aligned():
    rng = np.random.default_rng(1)
    m = dense_case(counts=True)
    r, c = np.nonzero(m)
    perm = rng.permutation(r.size)
    rows = SparseRows.from_pairs(r[perm], c[perm], m.shape[0], m.shape[1], m[r, c][perm])
    assert np.array_equal(rows.to_dense(np.uint32), m)
    assert all((np.diff(rows.columns[a:b]) > 0).all() for a, b in zip(rows.indptr[:-1], rows.indptr[1:]))


def _brute_classes(m):
    seen: dict[tuple, int] = {}
    for row in m:
        key = tuple(np.flatnonzero(row).tolist())
        seen[key] = seen.get(key, 0) + 1
    return seen


@pytest.mark.parametrize("g", [1, 3, 16, 37])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classes_are_the_distinct_colours(seed, g):
    """Colours by bitmask (up to 16 genomes) or by set hash, numbered by decreasing number of
    rows, ties by first row: the brute-force numbering."""
    m = dense_case(seed=seed, g=g)
    class_of, table = SparseRows.from_dense(m).classes()
    want = _brute_classes(m)
    assert table.n == len(want)
    assert np.array_equal(table.to_dense()[class_of], m)  # every row is its class
    got = {tuple(np.flatnonzero(r).tolist()) for r in table.to_dense()}
    assert got == set(want)  # each colour once
    keys = [tuple(np.flatnonzero(r).tolist()) for r in m]
    first = {k: keys.index(k) for k in want}
    numbering = {k: i for i, k in enumerate(sorted(want, key=lambda k: (-want[k], first[k])))}
    assert class_of.tolist() == [numbering[k] for k in keys]


@pytest.mark.parametrize("g", [3, 12])
def test_bitmask_and_hashed_colours_agree(monkeypatch, g):
    m = dense_case(seed=9, g=g)
    by_mask = SparseRows.from_dense(m).classes()
    monkeypatch.setattr(colours, "_BITMASK_COLUMNS", 0)
    by_hash = SparseRows.from_dense(m).classes()
    assert np.array_equal(by_mask[0], by_hash[0]) and np.array_equal(by_mask[1].to_dense(), by_hash[1].to_dense())


def test_a_hash_collision_is_detected_and_redone(monkeypatch):
    real = colours.mix64
    calls = []

    def first_seed_collides(x, seed=0):
        calls.append(seed)
        if seed in (colours._SEEDS[0], colours._SEEDS[0] ^ 0xFF):
            return np.zeros_like(np.asarray(x, dtype=np.uint64))  # every row hashes alike
        return real(x, seed)

    monkeypatch.setattr(colours, "mix64", first_seed_collides)
    m = dense_case(seed=4)
    class_of, table = SparseRows.from_dense(m).classes()
    assert colours._SEEDS[1] in calls
    assert np.array_equal(table.to_dense()[class_of], m) and table.n == len(_brute_classes(m))


def test_empty_rows_and_no_rows():
    class_of, table = SparseRows.empty(4, 10).classes()
    assert class_of.tolist() == [0, 0, 0, 0] and table.n == 1 and table.nnz == 0
    class_of, table = SparseRows.empty(0, 10).classes()
    assert class_of.size == 0 and table.n == 0
