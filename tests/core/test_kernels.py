"""The compiled kernels that no other module's tests reach whole: grouping keys by partition
and finding the class of the run of unitig orders, each against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from kmerdb.core import bits, kernels


@pytest.mark.parametrize("n_parts", [1, 3, 7, 64, 100])
def test_partition_scatter_is_a_stable_grouping(n_parts):
    rng = np.random.default_rng(n_parts)
    n = 5_000
    hashes = np.repeat(rng.integers(0, 2**64 - 1, n // 5, dtype=np.uint64, endpoint=True), 5)
    kmers, others = rng.integers(0, 2**64 - 1, (2, n), dtype=np.uint64, endpoint=True)
    marks = rng.integers(0, 256, n).astype(np.uint8)
    part = (hashes % np.uint64(n_parts)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    for tags in (rng.integers(0, 2**62, n), np.zeros(0, dtype=np.int64)):  # tags, or positions
        out, out_marks = np.empty((4, n), dtype=np.uint64), np.empty_like(marks)
        bounds = np.empty(n_parts + 1, dtype=np.int64)
        kernels.partition_scatter(
            hashes, n_parts, kmers, others, tags, marks, out, out_marks, bounds, np.empty(n_parts, np.int64)
        )
        want_tags = tags if tags.size else np.arange(n)
        assert np.array_equal(out, np.stack([kmers, others, hashes, want_tags.astype(np.uint64)])[:, order])
        assert np.array_equal(out_marks, marks[order])
        assert np.array_equal(bounds, np.concatenate([[0], np.cumsum(np.bincount(part, minlength=n_parts))]))


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_run_classes_equal_a_binary_search(dtype):
    """Runs found from the previous one or through a directory of any spacing equal a binary
    search of the bounds, and give their classes; a run naming a class out of range is
    reported."""
    rng = np.random.default_rng(2)
    n = 10_000
    inner = np.sort(rng.choice(np.arange(1, n), size=700, replace=False))
    bounds = np.concatenate([[0], inner, [n]]).astype(dtype)
    n_classes = 300
    classes = rng.integers(0, n_classes, bounds.size - 1).astype(np.uint64)
    width = bits.width_for(n_classes - 1)
    runs = bits.pack(classes, width)
    walks = [
        rng.integers(0, n, 3_000),  # anywhere
        np.arange(n),  # along the unitigs
        np.arange(n)[::-1],  # against them
        np.concatenate([np.arange(40, 400), np.arange(9_000, 8_000, -1), [0, n - 1, 0]]),
    ]
    for shift in (0, 3, 4, 7, 14):  # a directory entry per order .. one for all
        directory = kernels.run_directory(bounds, shift)
        assert directory.size == -(-n >> shift)
        for at in walks:
            at = np.ascontiguousarray(at, dtype=np.int64)
            out = np.empty(at.size, dtype=np.int64)
            assert kernels.run_classes(bounds, directory, shift, at, runs, width, n_classes, out) == kernels.OK
            want = np.searchsorted(bounds, at.astype(dtype), side="right") - 1
            assert np.array_equal(out, classes[want].astype(np.int64))
    # a run beyond the table's classes
    at = np.arange(n, dtype=np.int64)
    directory = kernels.run_directory(bounds, 4)
    top = int(classes.max())
    status = kernels.run_classes(bounds, directory, 4, at, runs, width, top, np.empty(n, dtype=np.int64))
    assert status == kernels.CORRUPT_CLASSES


def _forest(c, a, b, weight, cost, depth_cut):
    parent = np.empty(c, dtype=np.int64)
    work = [np.empty(c, dtype=np.int64) for _ in range(4)]
    pairs = [np.empty(2 * c, dtype=np.int64) for _ in range(2)]
    kernels.class_forest(
        a, b, np.argsort(weight, kind="stable"), np.argsort(cost, kind="stable"), depth_cut, parent,
        work[0], work[1], pairs[0], pairs[1], work[2], work[3],
    )
    return parent


def _kruskal_weight(c, a, b, weight):
    """Brute force: the weight of a minimum spanning forest (plain Kruskal)."""
    link = list(range(c))

    def root(x):
        while link[x] != x:
            x = link[x]
        return x

    total = 0
    for e in sorted(range(a.size), key=lambda e: weight[e]):
        ra, rb = root(int(a[e])), root(int(b[e]))
        if ra != rb:
            link[ra] = rb
            total += int(weight[e])
    return total


@pytest.mark.parametrize("seed", range(6))
def test_class_forest_is_a_minimum_spanning_forest_rooted_at_the_cheapest(seed):
    """Uncut, the parents are a minimum spanning forest of the pairs, each tree rooted at its
    cheapest class; cut, every chain is at most that deep and its links are the forest's."""
    rng = np.random.default_rng(seed)
    c = 40
    a, b = rng.integers(0, c, 90), rng.integers(0, c, 90)
    keep = a != b
    a, b = a[keep].astype(np.int64), b[keep].astype(np.int64)
    weight = rng.integers(1, 6, a.size)
    cost = rng.permutation(c)
    parent = _forest(c, a, b, weight, cost, 10**6)
    weight_of = {}
    for x, y, w_ in zip(a.tolist(), b.tolist(), weight.tolist()):
        key = (min(x, y), max(x, y))
        weight_of[key] = min(weight_of.get(key, w_), w_)
    total = 0
    roots = {}
    for x in range(c):
        y, steps = x, 0
        while parent[y] >= 0:
            total += weight_of[(min(y, int(parent[y])), max(y, int(parent[y])))] if y == x else 0
            y = int(parent[y])
            steps += 1
            assert steps <= c  # no cycle
        roots[x] = y
    assert total == _kruskal_weight(c, a, b, weight)
    for r in set(roots.values()):  # the root is the cheapest class of its tree
        assert cost[r] == min(cost[y] for y, r2 in roots.items() if r2 == r)
    cut = _forest(c, a, b, weight, cost, 2)
    for x in range(c):
        y, depth = x, 0
        while cut[y] >= 0:
            assert parent[y] == cut[y] or parent[cut[y]] == y  # a link of the uncut forest
            y = int(cut[y])
            depth += 1
        assert depth <= 2
