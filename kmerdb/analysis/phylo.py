"""Trees from distance matrices: neighbour joining and UPGMA, written as Newick.

Both work on a dense numpy matrix and loop over merge steps only (``n - 2`` or ``n - 1``
of them), each step a few whole-matrix operations.  Ties are broken by the lowest
(row, column) index, so the same matrix always gives the same tree.

* Neighbour joining (Saitou & Nei 1987, Studier & Keppler 1988) gives an unrooted tree,
  written with a trifurcation at the last join, as tools such as rapidNJ and QuickTree do.
  Negative branch lengths, which NJ can produce on non-additive distances, are set to 0.
* UPGMA (average linkage) gives a rooted ultrametric tree: a leaf's depth is half the
  distance at which it joins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from kmerdb.errors import InvalidParameterError

__all__ = ["METHODS", "neighbor_joining", "upgma", "tree_from_matrix", "newick_label"]

METHODS = ("nj", "upgma")

_PLAIN = re.compile(r"^[^\s()\[\]':;,]+$")


def newick_label(label: str) -> str:
    """A label as a Newick token: as is when safe, else single-quoted (``'`` doubled)."""
    if _PLAIN.match(label):
        return label
    return "'" + label.replace("'", "''") + "'"


def _length(x: float) -> str:
    x = max(0.0, float(x)) + 0.0
    return f"{x:.10g}"


def _check(matrix, labels: Sequence[str]) -> np.ndarray:
    d = np.array(matrix, dtype=np.float64)
    n = len(labels)
    if d.shape != (n, n):
        raise InvalidParameterError("matrix", d.shape, f"expected a square matrix of {n} x {n}")
    if n and not np.isfinite(d).all():
        raise InvalidParameterError("matrix", "non-finite", "distances must be finite")
    if len(set(labels)) != n:
        raise InvalidParameterError("labels", list(labels), "labels must be unique")
    d = (d + d.T) / 2.0  # symmetric by construction; guards rounding
    np.fill_diagonal(d, 0.0)
    return d


def _start(matrix, labels: Sequence[str]):
    """Checked distances and Newick leaf names, and the whole tree when there are < 2 leaves."""
    d = _check(matrix, labels)
    nodes = [newick_label(x) for x in labels]
    trivial = ";" if not nodes else (f"{nodes[0]};" if len(nodes) == 1 else None)
    return d, nodes, trivial


def neighbor_joining(matrix, labels: Sequence[str]) -> str:
    """Neighbour-joining tree of a symmetric distance matrix, as a Newick string.

    Parameters
    ----------
    matrix : array_like, shape (n, n)
        Distances (symmetric, zero diagonal).
    labels : sequence of str
        Leaf names, one per row.

    Returns
    -------
    str
        Newick, ending with ``;``.
    """
    d, nodes, trivial = _start(matrix, labels)
    if trivial:
        return trivial
    n = len(nodes)
    if n == 2:
        half = _length(d[0, 1] / 2)
        return f"({nodes[0]}:{half},{nodes[1]}:{half});"
    active = np.ones(n, dtype=bool)
    for m in range(n, 3, -1):
        idx = np.flatnonzero(active)
        sub = d[np.ix_(idx, idx)]
        r = sub.sum(axis=1)
        q = (m - 2) * sub - r[:, None] - r[None, :]
        np.fill_diagonal(q, np.inf)
        a, b = divmod(int(np.argmin(q)), m)
        if a > b:
            a, b = b, a
        i, j = idx[a], idx[b]
        dij = d[i, j]
        li = 0.5 * dij + (r[a] - r[b]) / (2.0 * (m - 2))
        lj = dij - li
        nodes[i] = f"({nodes[i]}:{_length(li)},{nodes[j]}:{_length(lj)})"
        new = 0.5 * (d[i] + d[j] - dij)
        d[i, :] = new
        d[:, i] = new
        d[i, i] = 0.0
        active[j] = False
    i, j, k = np.flatnonzero(active)
    li = 0.5 * (d[i, j] + d[i, k] - d[j, k])
    lj = 0.5 * (d[i, j] + d[j, k] - d[i, k])
    lk = 0.5 * (d[i, k] + d[j, k] - d[i, j])
    return f"({nodes[i]}:{_length(li)},{nodes[j]}:{_length(lj)},{nodes[k]}:{_length(lk)});"


def upgma(matrix, labels: Sequence[str]) -> str:
    """UPGMA (average-linkage) tree of a symmetric distance matrix, as a rooted Newick string.

    Parameters
    ----------
    matrix : array_like, shape (n, n)
        Distances (symmetric, zero diagonal).
    labels : sequence of str
        Leaf names, one per row.

    Returns
    -------
    str
        Newick, ending with ``;``.
    """
    d, nodes, trivial = _start(matrix, labels)
    if trivial:
        return trivial
    n = len(nodes)
    size = np.ones(n, dtype=np.float64)
    height = np.zeros(n, dtype=np.float64)
    active = np.ones(n, dtype=bool)
    work = d.copy()
    np.fill_diagonal(work, np.inf)
    for _ in range(n - 1):
        flat = int(np.argmin(work))
        i, j = divmod(flat, n)
        if i > j:
            i, j = j, i
        h = max(work[i, j] / 2.0, height[i], height[j])
        nodes[i] = f"({nodes[i]}:{_length(h - height[i])},{nodes[j]}:{_length(h - height[j])})"
        new = (work[i] * size[i] + work[j] * size[j]) / (size[i] + size[j])
        work[i, :] = new
        work[:, i] = new
        work[i, i] = np.inf
        work[j, :] = np.inf
        work[:, j] = np.inf
        size[i] += size[j]
        height[i] = h
        active[j] = False
    (root,) = np.flatnonzero(active)
    return f"{nodes[root]};"


def tree_from_matrix(matrix, labels: Sequence[str], method: str = "nj") -> str:
    """A Newick tree by ``method`` (``"nj"`` or ``"upgma"``)."""
    if method == "nj":
        return neighbor_joining(matrix, labels)
    if method == "upgma":
        return upgma(matrix, labels)
    raise InvalidParameterError("method", method, f"expected one of {', '.join(METHODS)}")
