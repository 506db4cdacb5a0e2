"""Genome comparisons from the columns: weights, intersections, distances, spectra.

Everything here is computed from the column groups, partition by partition and layer by
layer, in forked worker processes, without listing k-mers.  The unit of work is the
*colour class*: the distinct presence rows (or count rows) of a block of slots, each with
the number of slots that carry it.  Genomes of one family share few distinct rows, so a
partition of millions of k-mers reduces to thousands of classes, and

* the distinct k-mers of genome ``i`` are ``sum(w[c] * P[c, i])``,
* the k-mers shared by genomes ``i`` and ``j`` are ``sum(w[c] * P[c, i] * P[c, j])``,
  the weighted Gram matrix ``P.T @ diag(w) @ P``, one matrix product,
* on count rows ``R``, ``sum(w[c] * min(R[c, i], R[c, j]))`` (Bray-Curtis) is the sum over
  the distinct count values ``v`` of ``(v - v_prev) * Gram(R >= v)``.

Distinct rows are found by sorting, never with ``np.unique``: a row of at most 64 genomes
is one uint64 and a plain ``np.sort`` finds the distinct values; a wider row is hashed to
64 bits, the block's row index is packed into the low bits of the hash so that one sort
gives both the groups and the permutation, and every row is compared with its group's
representative, so a hash collision is detected and the block redone exactly (lexsort).
Memory is bounded by the row block (:data:`BLOCK_BYTES` of row data per worker) and the
class tables, which are merged as they arrive.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from .columns import PRESENCE, unpack_presence
from .errors import InvalidParameterError
from .layer import Layer

__all__ = [
    "METRICS",
    "TREE_METRICS",
    "ColWeights",
    "DistanceMatrix",
    "ClassTable",
    "colour_classes",
    "col_weights",
    "intersections",
    "distance",
    "iter_distances",
    "spectrum",
    "distinct_rows",
]

#: Metric name -> (is a similarity, symmetric, needs counts).
METRICS: dict[str, tuple[bool, bool, bool]] = {
    "jaccard": (True, True, False),
    "jaccard-distance": (False, True, False),
    "containment": (True, False, False),
    "mash": (False, True, False),
    "bray-curtis": (False, True, True),
}

#: Metrics a tree can be built from (``jaccard`` is used as ``1 - J``).
TREE_METRICS = ("jaccard-distance", "jaccard", "mash", "bray-curtis")

#: Bytes of row data a worker reads and reduces at a time.
BLOCK_BYTES = 16 << 20
#: Largest number of rows of one block (the row index is packed into the low bits of a hash).
MAX_BLOCK_ROWS = 1 << 20
#: A class table larger than this many rows is merged (deduplicated) again.
_MERGE_ROWS = 1 << 18
#: Bytes of one float64 chunk of class rows in the Gram products.
_GRAM_BYTES = 32 << 20

Progress = Callable[[str, int, "int | None"], None]


# --------------------------------------------------------------------------------------
# distinct rows
# --------------------------------------------------------------------------------------
def _boundaries(sorted_values: np.ndarray) -> np.ndarray:
    first = np.empty(sorted_values.shape[0], dtype=bool)
    if first.size:
        first[0] = True
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    return first


def _hash_rows(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of uint64 words (splitmix64-style mixing per word)."""
    h = np.full(words.shape[0], 0x9E3779B97F4A7C15, dtype=np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(29)
    return h


def _reduce_counts(weights: np.ndarray | None, order: np.ndarray | None, starts: np.ndarray, n: int) -> np.ndarray:
    if weights is None:
        return np.diff(np.append(starts, n)).astype(np.int64)
    w = weights if order is None else weights[order]
    return np.add.reduceat(w.astype(np.int64, copy=False), starts) if starts.size else np.zeros(0, np.int64)


def _distinct_exact(words: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    n = words.shape[0]
    order = np.lexsort(words.T[::-1]) if words.shape[1] else np.arange(n)
    s = words[order]
    first = np.ones(n, dtype=bool)
    if n > 1:
        first[1:] = (s[1:] != s[:-1]).any(axis=1)
    starts = np.flatnonzero(first)
    return s[starts], _reduce_counts(weights, order, starts, n)


def distinct_rows(words: np.ndarray, weights: np.ndarray | None = None, *, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D uint64 array and their multiplicities.

    Parameters
    ----------
    words : ndarray of uint64, shape (n, W)
        Rows to reduce (any bit pattern; rows are equal when all their words are).
    weights : ndarray of int, shape (n,), optional
        Weight of each row (default 1): the multiplicity of a distinct row is the sum of
        the weights of its copies.
    exact : bool
        Skip the hashed path and sort rows lexicographically.

    Returns
    -------
    rows : ndarray of uint64, shape (C, W)
        The distinct rows, in no particular order.
    counts : ndarray of int64, shape (C,)
        Summed weights (copies, without ``weights``).
    """
    words = np.asarray(words, dtype=np.uint64)
    n, W = words.shape
    if n == 0:
        return words[:0].copy(), np.zeros(0, dtype=np.int64)
    if W == 0:
        total = int(weights.sum()) if weights is not None else n
        return np.zeros((1, 0), dtype=np.uint64), np.array([total], dtype=np.int64)
    if W == 1 and weights is None and not exact:
        s = np.sort(words[:, 0])
        starts = np.flatnonzero(_boundaries(s))
        return s[starts].reshape(-1, 1), _reduce_counts(None, None, starts, n)
    bits = max(1, (n - 1).bit_length())
    if exact or bits > 26:
        return _distinct_exact(words, weights)
    # hash in the high bits, row index in the low bits: one sort gives groups and order
    h = _hash_rows(words)
    key = (h >> np.uint64(bits)) << np.uint64(bits)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    order = (key & np.uint64((1 << bits) - 1)).astype(np.intp)
    key >>= np.uint64(bits)
    first = _boundaries(key)
    del key
    starts = np.flatnonzero(first)
    rep = order[starts]
    run = np.cumsum(first) - 1
    del first
    same = True
    for j in range(W):  # every row equals its group's representative, or the hash collided
        col = words[:, j]
        if not np.array_equal(col[order], col[rep][run]):
            same = False
            break
    if not same:
        return _distinct_exact(words, weights)
    return words[rep], _reduce_counts(weights, order, starts, n)


def _words(raw: np.ndarray) -> np.ndarray:
    """(n, B) uint8 -> (n, ceil(B/8)) uint64 (zero padded)."""
    n, b = raw.shape
    w = (b + 7) // 8
    if b == 8 * w and raw.flags.c_contiguous:
        return raw.view(np.uint64)
    out = np.zeros((n, 8 * w), dtype=np.uint8)
    out[:, :b] = raw
    return out.view(np.uint64)


# --------------------------------------------------------------------------------------
# class tables
# --------------------------------------------------------------------------------------
@dataclass
class ClassTable:
    """The colour classes of an index: distinct rows over all genomes and their weights.

    Attributes
    ----------
    mode : {"presence", "counts"}
        ``presence``: rows are packed presence bits (genome ``i`` at bit ``i``, most
        significant bit first, ``np.packbits`` order) viewed as uint64 words;
        ``counts``: rows are uint32 counts, one per genome, viewed as uint64 words.
    n_genomes : int
        Genomes (columns) of a row.
    words : ndarray of uint64, shape (C, W)
        The distinct rows.
    weights : ndarray of int64, shape (C,)
        Number of k-mers (slots) with each row.
    """

    mode: str
    n_genomes: int
    words: np.ndarray
    weights: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.weights.size)

    def rows(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows ``lo:hi`` as (n, n_genomes): bool presence or uint32 counts."""
        raw = self.words[lo:hi].view(np.uint8)
        if self.mode == "presence":
            return unpack_presence(raw, self.n_genomes)
        return np.ascontiguousarray(raw[:, : 4 * self.n_genomes]).view(np.uint32)


def _canonical_words(rows: np.ndarray, mode: str) -> np.ndarray:
    if mode == "presence":
        return _words(np.packbits(rows, axis=1))
    return _words(np.ascontiguousarray(rows, dtype=np.uint32).view(np.uint8).reshape(rows.shape[0], -1))


def _merge(tables: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    words = np.concatenate([t[0] for t in tables])
    weights = np.concatenate([t[1] for t in tables])
    if len(tables) == 1:
        return words, weights
    return distinct_rows(words, weights)


class _Accumulator:
    """Collects class tables and merges them when they grow."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        self.rows = 0
        self.merged_rows = 0

    def add(self, words: np.ndarray, weights: np.ndarray) -> None:
        if not weights.size:
            return
        self.tables.append((words, weights))
        self.rows += weights.size
        if self.rows - self.merged_rows > max(_MERGE_ROWS, self.merged_rows):
            self._merge()

    def _merge(self) -> None:
        if len(self.tables) > 1:
            self.tables = [_merge(self.tables)]
        self.rows = self.merged_rows = sum(t[1].size for t in self.tables)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.tables:
            return np.zeros((0, self.width), dtype=np.uint64), np.zeros(0, dtype=np.int64)
        self._merge()
        return self.tables[0]


def _layer_block(layer: Layer, lo: int, hi: int, mode: str):
    """Row data of slots lo:hi of a layer as uint64 words, and how to decode them."""
    parts, segments, off = [], [], 0
    for group, data, cols, keep in layer.groups:
        if cols.size == 0:
            continue
        block = np.asarray(data[lo:hi])
        n_ids = len(group.genome_ids)
        full = keep.size == n_ids and np.array_equal(keep, np.arange(n_ids))
        if mode == "presence":
            if group.kind == PRESENCE:
                raw = block if full else np.packbits(unpack_presence(block, n_ids)[:, keep], axis=1)
            else:
                raw = np.packbits((block if full else block[:, keep]) > 0, axis=1)
            segments.append((off, raw.shape[1], cols, None))
        else:
            if group.kind == PRESENCE:
                vals = unpack_presence(block, n_ids)[:, keep].astype(np.uint8)
            else:
                vals = np.ascontiguousarray(block if full else block[:, keep])
            raw = vals.view(np.uint8).reshape(vals.shape[0], -1)
            segments.append((off, raw.shape[1], cols, vals.dtype))
        parts.append(raw)
        off += raw.shape[1]
    if not parts:
        return None, segments
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    return _words(np.ascontiguousarray(raw)), segments


def _decode(words: np.ndarray, segments, n_genomes: int, mode: str) -> np.ndarray:
    """Class rows in a layer's layout -> (C, n_genomes) rows in database column order."""
    raw = words.view(np.uint8)
    c = words.shape[0]
    out = np.zeros((c, n_genomes), dtype=bool if mode == "presence" else np.uint32)
    for off, nbytes, cols, dtype in segments:
        part = raw[:, off : off + nbytes]
        if dtype is None:
            out[:, cols] = unpack_presence(part, cols.size)
        else:
            out[:, cols] = np.ascontiguousarray(part).view(dtype)
    return out


def _block_rows(layer: Layer, mode: str, block_bytes: int) -> int:
    per_row = 0
    for group, data, cols, _ in layer.groups:
        if cols.size:
            per_row += data.shape[1] * data.dtype.itemsize if data.ndim == 2 else 1
    per_row = max(8, per_row) * (4 if mode == "counts" else 3)
    return int(max(1024, min(MAX_BLOCK_ROWS, block_bytes // per_row)))


def _open_partition(state: dict, p: int) -> list[Layer]:
    return [Layer(state["root"], rec, state["column_of"]) for rec in state["partitions"][p]]


# Set in the parent before workers fork; workers read their copy.
_STATE: dict = {}


def _classes_task(p: int):
    st = _STATE
    mode, n_genomes = st["mode"], st["n_genomes"]
    width = _width(mode, n_genomes)
    acc = _Accumulator(width)
    for layer in _open_partition(st, p):
        if layer.n == 0:
            continue
        step = _block_rows(layer, mode, st["block_bytes"])
        for lo in range(0, layer.n, step):
            hi = min(layer.n, lo + step)
            words, segments = _layer_block(layer, lo, hi, mode)
            if words is None:
                break
            cw, cnt = distinct_rows(words)
            rows = _decode(cw, segments, n_genomes, mode)
            if not rows.any(axis=1).all():  # slots of no current genome
                keep = rows.any(axis=1)
                rows, cnt = rows[keep], cnt[keep]
            acc.add(_canonical_words(rows, mode), cnt)
    words, weights = acc.result()
    return p, words, weights


#: Counts below this are histogrammed densely; larger ones are kept as values.
_HIST_CAP = 4096


def _weights_task(p: int):
    """Distinct k-mers, occurrences (and count histograms) per genome from one partition."""
    st = _STATE
    n_genomes, want_spectrum = st["n_genomes"], st["spectrum"]
    distinct = np.zeros(n_genomes, dtype=np.int64)
    totals = np.zeros(n_genomes, dtype=np.int64)
    dense = np.zeros((n_genomes, _HIST_CAP), dtype=np.int64) if want_spectrum else None
    large: list[list[np.ndarray]] = [[] for _ in range(n_genomes)] if want_spectrum else []
    byte_bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.int64)  # (256, 8)
    for layer in _open_partition(st, p):
        if layer.n == 0:
            continue
        step = _block_rows(layer, "counts", st["block_bytes"])
        for group, data, cols, keep in layer.groups:
            if cols.size == 0:
                continue
            n_ids = len(group.genome_ids)
            for lo in range(0, layer.n, step):
                block = np.asarray(data[lo : lo + step])
                if group.kind == PRESENCE:
                    # bits set per column: a histogram of byte values per byte column
                    nb = block.shape[1]
                    flat = block.astype(np.intp) + (np.arange(nb, dtype=np.intp) * 256)
                    hist = np.bincount(flat.ravel(), minlength=256 * nb).reshape(nb, 256)
                    bits = (hist @ byte_bits).ravel()[:n_ids][keep]  # genome i of the group at bit i
                    distinct[cols] += bits
                    totals[cols] += bits
                    if want_spectrum:
                        dense[cols, 1] += bits
                    continue
                vals = block[:, keep]
                distinct[cols] += np.count_nonzero(vals, axis=0)
                totals[cols] += vals.sum(axis=0, dtype=np.int64)
                if want_spectrum:
                    for j, c in enumerate(cols):
                        v = vals[:, j].astype(np.int64)
                        dense[c] += np.bincount(np.minimum(v, _HIST_CAP - 1), minlength=_HIST_CAP)
                        if dense[c, _HIST_CAP - 1]:
                            big = v[v >= _HIST_CAP - 1]
                            dense[c, _HIST_CAP - 1] -= big.size
                            large[c].append(big)
    if want_spectrum:
        large = [np.concatenate(x) if x else np.zeros(0, np.int64) for x in large]
    return p, distinct, totals, (dense, large)


def _width(mode: str, n_genomes: int) -> int:
    return (((n_genomes + 7) // 8) + 7) // 8 if mode == "presence" else (4 * n_genomes + 7) // 8


def _run_partitions(db, task, state: dict, threads: int | None, progress: Progress | None, phase: str) -> Iterator:
    """Run ``task(p)`` for every partition with layers, in forked workers; yield results."""
    from .build import resolve_threads

    n_threads = resolve_threads(threads)
    snap = db.snapshot
    todo = [p for p, layers in enumerate(snap.partitions) if any(rec.n_kmers for rec in layers)]
    # largest partitions first: better balance at the end
    todo.sort(key=lambda p: -sum(rec.n_kmers for rec in snap.partitions[p]))
    _STATE.clear()
    _STATE.update(
        state,
        root=db.path,
        partitions=snap.partitions,
        column_of={g.id: i for i, g in enumerate(snap.genomes)},
        n_genomes=len(snap.genomes),
    )
    pool = None
    try:
        if n_threads > 1 and len(todo) > 1:
            pool = multiprocessing.get_context("fork").Pool(min(n_threads, len(todo)))
            results = pool.imap_unordered(task, todo, chunksize=1)
        else:
            results = map(task, todo)
        for done, result in enumerate(results, 1):
            if progress is not None:
                progress(phase, done, len(todo))
            yield result
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _STATE.clear()


def _block_bytes(max_memory, threads: int | None) -> int:
    from .build import parse_size, resolve_threads

    budget = parse_size(max_memory)
    if budget is None:
        return BLOCK_BYTES
    n = resolve_threads(threads)
    # a block's temporaries are a few times its row data (hashes, keys, order, gathers)
    return int(max(1 << 20, min(BLOCK_BYTES, budget // (8 * (n + 1)))))


def colour_classes(
    db,
    counts: bool = False,
    threads: int | None = None,
    max_memory: int | str | None = None,
    progress: Progress | None = None,
) -> ClassTable:
    """The colour classes of an index: its distinct rows and how many k-mers carry each.

    Parameters
    ----------
    db : Database
        An open database.
    counts : bool
        Reduce count rows (index built with counts) instead of presence rows.
    threads : int, optional
        Worker processes (default: all CPUs).
    max_memory : int or str, optional
        Bounds the row blocks the workers read at once, e.g. ``"512M"``.
    progress : callable, optional
        ``progress(phase, done, total)`` over partitions.

    Returns
    -------
    ClassTable
        Rows of k-mers held by no genome of the index (after a removal) are left out.
    """
    mode = "counts" if counts else "presence"
    if counts and not db.config.counts:
        raise InvalidParameterError("counts", True, "this index keeps presence only (build it with counts)")
    n_genomes = len(db.genomes)
    acc = _Accumulator(_width(mode, n_genomes))
    state = {"mode": mode, "block_bytes": _block_bytes(max_memory, threads)}
    for _, words, weights in _run_partitions(db, _classes_task, state, threads, progress, "comparing"):
        acc.add(words, weights)
    words, weights = acc.result()
    return ClassTable(mode, n_genomes, words, weights)


# --------------------------------------------------------------------------------------
# products over classes
# --------------------------------------------------------------------------------------
def _gram_block(table: ClassTable, lo: int, hi: int, threshold: int | None = None) -> np.ndarray:
    """``sum_c w[c] * X[c, lo:hi].T * X[c, :]`` as int64, X = presence (or counts >= threshold)."""
    g = table.n_genomes
    out = np.zeros((hi - lo, g), dtype=np.int64)
    step = max(1, _GRAM_BYTES // (8 * max(1, g)))
    for a in range(0, table.n_classes, step):
        rows = table.rows(a, a + step)
        w = table.weights[a : a + step]
        x = rows if threshold is None else rows >= threshold
        if threshold is not None:
            sel = x.any(axis=1)
            if not sel.all():
                x, w = x[sel], w[sel]
            if not w.size:
                continue
        xf = x.astype(np.float64)
        # exact: 0/1 entries, integer weights, sums far below 2**53
        out += np.rint((xf[:, lo:hi] * w[:, None]).T @ xf).astype(np.int64)
    return out


def _min_block(table: ClassTable, lo: int, hi: int) -> np.ndarray:
    """``sum_c w[c] * min(R[c, i], R[c, j])`` for i in lo:hi, over count classes."""
    out = np.zeros((hi - lo, table.n_genomes), dtype=np.int64)
    levels = _levels(table)
    prev = 0
    for v in levels:
        out += (int(v) - prev) * _gram_block(table, lo, hi, threshold=int(v))
        prev = int(v)
    return out


def _levels(table: ClassTable) -> np.ndarray:
    vals = []
    step = max(1, _GRAM_BYTES // (4 * max(1, table.n_genomes)))
    for a in range(0, table.n_classes, step):
        r = table.rows(a, a + step)
        s = np.sort(r[r > 0])
        vals.append(s[_boundaries(s)])
    if not vals:
        return np.zeros(0, dtype=np.uint32)
    s = np.sort(np.concatenate(vals))
    return s[_boundaries(s)]


# --------------------------------------------------------------------------------------
# public results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColWeights:
    """Per-genome totals of an index.

    Attributes
    ----------
    labels : tuple of str
        Genome labels, in column order.
    distinct : ndarray of int64
        Distinct k-mers of each genome.
    total : ndarray of int64
        k-mer occurrences of each genome (counts index), else equal to ``distinct``.
    """

    labels: tuple[str, ...]
    distinct: np.ndarray
    total: np.ndarray

    def to_dict(self) -> dict:
        return {
            label: {"distinct": int(d), "total": int(t)} for label, d, t in zip(self.labels, self.distinct, self.total)
        }


@dataclass(frozen=True)
class DistanceMatrix:
    """A labelled genome x genome matrix.

    Attributes
    ----------
    metric : str
        One of :data:`METRICS`.
    labels : tuple of str
        Row and column labels.
    matrix : ndarray of float64, shape (n, n)
        ``matrix[i, j]`` compares genome ``i`` with genome ``j``; for ``containment``, the
        fraction of genome ``i``'s k-mers that genome ``j`` holds.
    """

    metric: str
    labels: tuple[str, ...]
    matrix: np.ndarray

    def __getitem__(self, pair: tuple[str, str]) -> float:
        a, b = pair
        return float(self.matrix[self._index(a), self._index(b)])

    def _index(self, label: str) -> int:
        from .errors import GenomeNotFoundError

        try:
            return self.labels.index(label)
        except ValueError:
            raise GenomeNotFoundError(label) from None

    @property
    def is_similarity(self) -> bool:
        return METRICS[self.metric][0]

    def to_dict(self) -> dict:
        """``{"metric": ..., "labels": [...], "matrix": [[...]]}``."""
        return {"metric": self.metric, "labels": list(self.labels), "matrix": self.matrix.tolist()}

    def to_tsv(self) -> str:
        """Header ``<metric> label...``, then one row per genome: label and values."""
        lines = ["\t".join((self.metric,) + self.labels)]
        for label, row in zip(self.labels, self.matrix):
            lines.append("\t".join([label] + [_fmt(v) for v in row.tolist()]))
        return "\n".join(lines) + "\n"

    def to_phylip(self) -> str:
        """Square (relaxed) PHYLIP: the count, then per row the label padded to 10 characters,
        a space and the values; whitespace in labels becomes ``_``."""
        lines = [f"{len(self.labels)}"]
        for label, row in zip(self.labels, self.matrix):
            name = "_".join(label.split()) or "_"
            lines.append(f"{name:<10} " + " ".join(_fmt(v) for v in row.tolist()))
        return "\n".join(lines) + "\n"

    def as_distance(self) -> np.ndarray:
        """The matrix as distances (``1 - x`` for a similarity)."""
        return 1.0 - self.matrix if self.is_similarity else self.matrix.copy()

    def tree(self, method: str = "nj") -> str:
        """A Newick tree of the genomes (``nj`` or ``upgma``); see :mod:`kmerdb.phylo`."""
        from .phylo import tree_from_matrix

        if not METRICS[self.metric][1]:
            raise InvalidParameterError("metric", self.metric, f"a tree needs a symmetric metric: {', '.join(TREE_METRICS)}")
        return tree_from_matrix(self.as_distance(), self.labels, method)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return repr(float(v))
    return repr(float(v)) if v != int(v) else (str(int(v)) if abs(v) < 1e15 else repr(float(v)))


def _check_metric(db, metric: str) -> None:
    if metric not in METRICS:
        raise InvalidParameterError("metric", metric, f"expected one of {', '.join(METRICS)}")
    if METRICS[metric][2] and not db.config.counts:
        raise InvalidParameterError("metric", metric, "needs an index built with counts")


def col_weights(db, threads: int | None = None, max_memory=None, progress: Progress | None = None) -> ColWeights:
    """Distinct k-mers (and occurrences, with counts) of every genome, from the columns.

    See :meth:`kmerdb.Database.col_weights`.
    """
    n = len(db.genomes)
    distinct = np.zeros(n, dtype=np.int64)
    totals = np.zeros(n, dtype=np.int64)
    state = {"spectrum": False, "block_bytes": _block_bytes(max_memory, threads)}
    for _, d, t, _ in _run_partitions(db, _weights_task, state, threads, progress, "weighing"):
        distinct += d
        totals += t
    return ColWeights(db.genomes, distinct, totals if db.config.counts else distinct.copy())


def spectrum(db, genome: str | None = None, threads: int | None = None, max_memory=None) -> dict[str, list[tuple[int, int]]]:
    """k-mer count histograms: label -> [(count, distinct k-mers with that count), ...].

    See :meth:`kmerdb.Database.spectrum`.
    """
    labels = db.genomes if genome is None else (db.genome(genome).label,)
    if not db.config.counts:
        return {label: [(int(c), int(n)) for c, n in db.genome(label).spectrum] for label in labels}
    n = len(db.genomes)
    dense = np.zeros((n, _HIST_CAP), dtype=np.int64)
    large: list[list[np.ndarray]] = [[] for _ in range(n)]
    state = {"spectrum": True, "block_bytes": _block_bytes(max_memory, threads)}
    for _, _, _, (d, big) in _run_partitions(db, _weights_task, state, threads, None, "spectrum"):
        dense += d
        for g in range(n):
            if big[g].size:
                large[g].append(big[g])
    col = {label: i for i, label in enumerate(db.genomes)}
    out = {}
    for label in labels:
        g = col[label]
        pairs = [(c, int(v)) for c, v in enumerate(dense[g].tolist()) if c > 0 and v > 0]
        if large[g]:
            s = np.sort(np.concatenate(large[g]))
            starts = np.flatnonzero(_boundaries(s))
            pairs += list(zip(s[starts].tolist(), np.diff(np.append(starts, s.size)).tolist()))
        out[label] = pairs
    return out


def intersections(db, threads: int | None = None, max_memory=None, progress: Progress | None = None) -> np.ndarray:
    """(G, G) int64 matrix of distinct k-mers shared by each pair of genomes (diagonal: each
    genome's distinct k-mers).  See :meth:`kmerdb.Database.intersections`."""
    table = colour_classes(db, threads=threads, max_memory=max_memory, progress=progress)
    return _gram_block(table, 0, table.n_genomes)


def _metric_block(metric: str, k: int, inter: np.ndarray, w_rows: np.ndarray, w_all: np.ndarray, mins=None, t_rows=None, t_all=None) -> np.ndarray:
    """The metric for rows (genomes of a block) against all genomes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "bray-curtis":
            den = (t_rows[:, None] + t_all[None, :]).astype(np.float64)
            return np.where(den > 0, 1.0 - 2.0 * mins / np.where(den > 0, den, 1), 0.0)
        if metric == "containment":
            return np.where(w_rows[:, None] > 0, inter / np.where(w_rows > 0, w_rows, 1)[:, None], 1.0)
        union = w_rows[:, None] + w_all[None, :] - inter
        j = np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)
        if metric == "jaccard":
            return j
        if metric == "jaccard-distance":
            return 1.0 - j
        # mash: -1/k ln(2J/(1+J)); J = 0 gives 1 (as Mash reports it)
        d = np.where(j > 0, -np.log(np.where(j > 0, 2.0 * j / (1.0 + j), 1.0)) / k, 1.0)
        return np.maximum(d, 0.0) + 0.0  # no -0.0


class _Comparer:
    """Blocks of a metric computed from the class tables of an index."""

    def __init__(self, db, metric: str, threads, max_memory, progress) -> None:
        _check_metric(db, metric)
        self.metric = metric
        self.k = db.config.k
        self.labels = db.genomes
        if metric == "bray-curtis":
            self.counts = colour_classes(db, counts=True, threads=threads, max_memory=max_memory, progress=progress)
            self.totals = _weighted_colsum(self.counts)
        else:
            self.presence = colour_classes(db, threads=threads, max_memory=max_memory, progress=progress)
            self.weights = _weighted_colsum(self.presence)

    def block(self, lo: int, hi: int) -> np.ndarray:
        if self.metric == "bray-curtis":
            mins = _min_block(self.counts, lo, hi)
            return _metric_block(self.metric, self.k, None, None, None, mins, self.totals[lo:hi], self.totals)
        inter = _gram_block(self.presence, lo, hi)
        return _metric_block(self.metric, self.k, inter, self.weights[lo:hi], self.weights)


def _weighted_colsum(table: ClassTable) -> np.ndarray:
    """``sum_c w[c] * X[c, :]``: distinct k-mers (presence) or occurrences (counts) per genome."""
    out = np.zeros(table.n_genomes, dtype=np.int64)
    step = max(1, _GRAM_BYTES // (8 * max(1, table.n_genomes)))
    for a in range(0, table.n_classes, step):
        out += (table.rows(a, a + step).astype(np.int64) * table.weights[a : a + step, None]).sum(axis=0)
    return out


def distance(db, metric: str = "jaccard", threads: int | None = None, max_memory=None, progress: Progress | None = None) -> DistanceMatrix:
    """A labelled matrix of a metric between every pair of genomes.

    See :meth:`kmerdb.Database.distance`.
    """
    cmp = _Comparer(db, metric, threads, max_memory, progress)
    g = len(cmp.labels)
    matrix = cmp.block(0, g) if g else np.zeros((0, 0))
    return DistanceMatrix(metric, cmp.labels, np.asarray(matrix, dtype=np.float64))


def iter_distances(
    db,
    metric: str = "jaccard-distance",
    max_distance: float | None = None,
    nearest: int | None = None,
    threads: int | None = None,
    max_memory=None,
    block: int | None = None,
    progress: Progress | None = None,
) -> Iterator[tuple[str, str, float]]:
    """Stream the pairs of a metric without holding a dense matrix.

    Rows are computed a block of genomes at a time.  With ``max_distance``, a pair is
    kept when its distance (``1 - x`` for the similarities ``jaccard`` and
    ``containment``) is at most ``max_distance``; with ``nearest``, only the ``nearest``
    closest other genomes of each genome are kept (ties broken by column order).  Both
    may be combined.  A symmetric metric yields each unordered pair once (``a`` before
    ``b`` in column order) unless ``nearest`` is given; ``containment`` yields ordered
    pairs.  A genome is never paired with itself.

    Yields
    ------
    (label_a, label_b, value)
        ``value`` in the metric as named (a similarity for ``jaccard``/``containment``).
    """
    if max_distance is None and nearest is None:
        raise InvalidParameterError("max_distance", None, "give max_distance and/or nearest for a sparse output")
    if nearest is not None and (not isinstance(nearest, int) or isinstance(nearest, bool) or nearest < 1):
        raise InvalidParameterError("nearest", nearest, "must be an integer >= 1")
    if max_distance is not None and not (max_distance >= 0):
        raise InvalidParameterError("max_distance", max_distance, "must be >= 0")
    cmp = _Comparer(db, metric, threads, max_memory, progress)
    labels = cmp.labels
    g = len(labels)
    similarity, symmetric, _ = METRICS[metric]
    if block is None:
        block = max(1, min(g, (64 << 20) // (8 * 4 * max(1, g))))
    for lo in range(0, g, block):
        hi = min(g, lo + block)
        values = cmp.block(lo, hi)
        dist = 1.0 - values if similarity else values
        rows = np.arange(lo, hi)
        dist[rows - lo, rows] = np.inf  # never itself
        if nearest is None and symmetric:
            dist[np.arange(hi - lo)[:, None] >= (np.arange(g)[None, :] - lo)] = np.inf  # keep j > i
        keep = np.isfinite(dist)
        if max_distance is not None:
            keep &= dist <= max_distance
        for r in range(hi - lo):
            cand = np.flatnonzero(keep[r])
            if nearest is not None and cand.size:
                order = np.lexsort((cand, dist[r, cand]))[:nearest]
                cand = cand[order]
            for j in cand.tolist():
                yield labels[lo + r], labels[j], float(values[r, j])
