"""Genome comparisons from the columns: weights, intersections, distances, spectra.

Everything here is computed from the column groups, partition by partition and layer by
layer, in forked worker processes, without listing k-mers.

Colour classes.  A block of slots of a layer is reduced to its *colour classes*: the
distinct rows (presence bits, or counts) and the number of slots that carry each.  Related
genomes share most of their k-mers, so a layer of millions of slots reduces to a few
percent as many classes.  Distinct rows are found by sorting, never with ``np.unique``: a
row of at most 8 bytes is read as one uint64 and plain-sorted; a wider row is read as
uint64 words (views on the memory-mapped rows, overlapping at the end when the width is
not a multiple of 8), hashed to 64 bits, and the block's row index is packed into the low
bits of the hash, so that one sort of uint64 gives both the groups and the permutation.
Every row is then compared with its predecessor in the sorted order, so a hash collision
is detected and the block is redone exactly (lexsort).

Pair counts.  With ``x[c]`` the presence bits and ``w[c]`` the weight of class ``c``, the
k-mers shared by genomes ``i`` and ``j`` are ``sum_c w[c] x[c, i] x[c, j]``.  Rows are bytes
of 8 genomes, so for every pair of byte columns ``(a, b)`` one weighted ``np.bincount`` of
``x[:, a] * 256 + x[:, b]`` (65536 bins) gives the joint histogram ``H`` of the two bytes,
and summing H over the rows and columns whose bit is set gives the 8 x 8 block of pair
counts.  The cost is one bincount per byte pair per class, about 16x less arithmetic than a
dense ``x.T @ diag(w) @ x`` with BLAS, and exact (integer sums far below 2**53).
Histograms of a worker's partitions are summed before the bit products are taken.

On counts, ``sum_c w[c] min(r[c, i], r[c, j])`` (Bray-Curtis) is the sum over the distinct
count values ``v`` of ``(v - v_prev)`` times the pair counts of ``r >= v``; once few rows
reach the next level, the rest is summed directly.

Memory is bounded by the row block a worker reduces at a time (:data:`BLOCK_BYTES` of
temporaries), the pair histograms (at most :data:`_HIST_BYTES`) and the class tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from kmerdb.engine.workers import forked_pool, imap
from kmerdb.errors import InvalidParameterError
from kmerdb.store.columns import PRESENCE, unpack_presence
from kmerdb.store.layer import Layer

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
    "format_value",
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

#: Bytes of temporaries a worker uses to reduce one block of rows (about 64 per row).
BLOCK_BYTES = 64 << 20
#: Largest number of rows of one block (the row index is packed into the low bits of a hash).
MAX_BLOCK_ROWS = 1 << 20
#: A class table that grew by this many rows since its last merge is merged again.
_MERGE_ROWS = 1 << 18
#: Pair histograms kept by a worker across its partitions, at most (else per layer).
_HIST_BYTES = 64 << 20
#: Classes per chunk of the pair counts (bounds their index temporaries).
_PAIR_CHUNK = 1 << 22
#: Below this many (rows x genomes x genomes), the rest of a min-sum is summed directly.
_DIRECT_CELLS = 1 << 25
#: Cells of one chunk of that direct sum.
_DIRECT_CHUNK = 1 << 21

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


def _hash_rows(cols: list[np.ndarray]) -> np.ndarray:
    """A 64-bit hash of rows given as uint64 columns (multiply-xor, then a finalizer)."""
    h = cols[0] * np.uint64(0x9E3779B97F4A7C15)
    for j in range(1, len(cols)):
        h ^= cols[j] * np.uint64(0xC2B2AE3D27D4EB4F + 2 * j)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(32)
    return h


def _columns(raw: np.ndarray) -> list[np.ndarray]:
    """(n, B) uint8 rows as uint64 columns covering every byte (strided views when B >= 8)."""
    n, b = raw.shape
    if b < 8 or not raw.flags.c_contiguous:
        out = np.zeros((n, ((b + 7) // 8) * 8), dtype=np.uint8)
        out[:, :b] = raw
        return [out.view(np.uint64)[:, j] for j in range(out.shape[1] // 8)]
    offsets = list(range(0, b - 7, 8))
    if b % 8:
        offsets.append(b - 8)  # overlaps the previous word: still covers every byte
    return [np.ndarray((n,), dtype=np.uint64, buffer=raw, offset=o, strides=(b,)) for o in offsets]


def _reduce(weights: np.ndarray | None, order: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    if weights is None:
        return np.diff(np.append(starts, n)).astype(np.int64)
    if not starts.size:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(weights[order].astype(np.int64, copy=False), starts)


def _distinct_index(cols: list[np.ndarray], weights: np.ndarray | None, exact: bool = False):
    """Representative row index and summed weight of every distinct row."""
    n = cols[0].size
    bits = max(1, (n - 1).bit_length())
    if not exact and bits <= 26:
        h = _hash_rows(cols)
        h >>= np.uint64(bits)
        h <<= np.uint64(bits)
        h |= np.arange(n, dtype=np.uint64)
        h.sort()
        order = (h & np.uint64((1 << bits) - 1)).view(np.int64)
        h >>= np.uint64(bits)
        first = _boundaries(h)
        del h
        same = True
        for col in cols:  # each row equals its predecessor within a group, or the hash collided
            g = col[order]
            if not np.all((g[1:] == g[:-1]) | first[1:]):
                same = False
                break
        if same:
            starts = np.flatnonzero(first)
            return order[starts], _reduce(weights, order, starts, n)
    order = np.lexsort(cols[::-1])
    first = np.zeros(n, dtype=bool)
    first[0] = True
    for col in cols:
        g = col[order]
        first[1:] |= g[1:] != g[:-1]
    starts = np.flatnonzero(first)
    return order[starts], _reduce(weights, order, starts, n)


def _distinct_bytes(raw: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of (n, B) uint8 and their summed weights (copies without weights)."""
    n, b = raw.shape
    if n == 0:
        return raw[:0].copy(), np.zeros(0, dtype=np.int64)
    if b == 0:
        return raw[:1].copy(), np.array([n if weights is None else int(weights.sum())], dtype=np.int64)
    cols = _columns(raw)
    if len(cols) == 1 and weights is None:
        s = np.sort(cols[0])
        starts = np.flatnonzero(_boundaries(s))
        rows = np.ascontiguousarray(s[starts]).view(np.uint8).reshape(-1, 8)[:, :b]
        return np.ascontiguousarray(rows), np.diff(np.append(starts, n)).astype(np.int64)
    # contiguous copies: a sequential pass, then the sorted-order gathers run 2-3x faster
    idx, counts = _distinct_index([np.ascontiguousarray(c) for c in cols], weights)
    return raw[idx], counts


def distinct_rows(words: np.ndarray, weights: np.ndarray | None = None, *, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D uint64 array and their multiplicities.

    Parameters
    ----------
    words : ndarray of uint64, shape (n, W)
        Rows to reduce; rows are equal when all their words are.
    weights : ndarray of int, shape (n,), optional
        Weight of each row (default 1): a distinct row's multiplicity is the sum of the
        weights of its copies.
    exact : bool
        Skip the hashed path and sort rows lexicographically.

    Returns
    -------
    rows : ndarray of uint64, shape (C, W)
        The distinct rows, in no particular order.
    counts : ndarray of int64, shape (C,)
        Summed weights.
    """
    words = np.asarray(words, dtype=np.uint64)
    n, width = words.shape
    if n == 0:
        return words[:0].copy(), np.zeros(0, dtype=np.int64)
    if width == 0:
        return words[:1].copy(), np.array([n if weights is None else int(np.sum(weights))], dtype=np.int64)
    idx, counts = _distinct_index([np.ascontiguousarray(words[:, j]) for j in range(width)], weights, exact)
    return words[idx], counts


# --------------------------------------------------------------------------------------
# class tables
# --------------------------------------------------------------------------------------
@dataclass
class ClassTable:
    """Colour classes: distinct rows over the genomes of an index and their weights.

    Attributes
    ----------
    mode : {"presence", "counts"}
        ``presence``: rows are presence bits packed with ``np.packbits`` (genome ``i`` at
        bit ``7 - i % 8`` of byte ``i // 8``); ``counts``: rows are uint32 counts.
    n_genomes : int
        Genomes (columns) of a row, in the database's column order.
    raw : ndarray of uint8, shape (C, B)
        The distinct rows as bytes.
    weights : ndarray of int64, shape (C,)
        Number of k-mers (slots) with each row.
    """

    mode: str
    n_genomes: int
    raw: np.ndarray
    weights: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.weights.size)

    def rows(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows ``lo:hi`` as (n, n_genomes): bool presence or uint32 counts."""
        raw = self.raw[lo:hi]
        if self.mode == "presence":
            return unpack_presence(raw, self.n_genomes)
        return np.ascontiguousarray(raw).view(np.uint32)

    def presence_bytes(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows ``lo:hi`` as packed presence bytes."""
        if self.mode == "presence":
            return self.raw[lo:hi]
        return np.packbits(self.rows(lo, hi) > 0, axis=1)


def _empty_raw(mode: str, n_genomes: int) -> np.ndarray:
    return np.zeros((0, (n_genomes + 7) // 8 if mode == "presence" else 4 * n_genomes), dtype=np.uint8)


class _Accumulator:
    """Collects (raw rows, weights) tables of one layout and merges them as they grow."""

    def __init__(self, empty: np.ndarray) -> None:
        self.empty = empty
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        self.rows = 0
        self.merged_rows = 0

    def add(self, raw: np.ndarray, weights: np.ndarray) -> None:
        if not weights.size:
            return
        self.tables.append((raw, weights))
        self.rows += weights.size
        if self.rows - self.merged_rows > max(_MERGE_ROWS, self.merged_rows):
            self._merge()

    def _merge(self) -> None:
        if len(self.tables) > 1:
            raw = np.concatenate([t[0] for t in self.tables])
            weights = np.concatenate([t[1] for t in self.tables])
            self.tables = [_distinct_bytes(raw, weights)]
        self.rows = self.merged_rows = sum(t[1].size for t in self.tables)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.tables:
            return self.empty, np.zeros(0, dtype=np.int64)
        self._merge()
        return self.tables[0]


def _layer_block(layer: Layer, lo: int, hi: int, mode: str):
    """Row bytes of slots lo:hi of a layer, and the segments that say how to decode them."""
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
    return np.ascontiguousarray(raw), segments


def _canonical(raw: np.ndarray, segments, n_genomes: int, mode: str) -> np.ndarray:
    """Class rows in a layer's layout -> rows in database column order (ClassTable bytes)."""
    if mode == "presence" and len(segments) == 1 and segments[0][3] is None:
        cols = segments[0][2]
        if cols.size == n_genomes and np.array_equal(cols, np.arange(n_genomes)):
            return raw  # already packed bits in column order
    c = raw.shape[0]
    out = np.zeros((c, n_genomes), dtype=bool if mode == "presence" else np.uint32)
    for off, nbytes, cols, dtype in segments:
        part = raw[:, off : off + nbytes]
        if dtype is None:
            out[:, cols] = unpack_presence(part, cols.size)
        else:
            out[:, cols] = np.ascontiguousarray(part).view(dtype)
    if mode == "presence":
        return np.packbits(out, axis=1)
    return out.view(np.uint8).reshape(c, -1)


def _layer_classes(layer: Layer, mode: str, n_genomes: int, block_bytes: int):
    """The colour classes of one layer: (ClassTable bytes, weights), all-absent rows dropped."""
    per_row = 64
    for _, data, cols, _ in layer.groups:
        if cols.size:
            per_row += 2 * data.shape[1] * data.dtype.itemsize
    step = int(max(1024, min(MAX_BLOCK_ROWS, block_bytes // per_row)))
    acc = None
    segments = None
    for lo in range(0, layer.n, step):
        raw, segments = _layer_block(layer, lo, min(layer.n, lo + step), mode)
        if raw is None:
            return _empty_raw(mode, n_genomes), np.zeros(0, dtype=np.int64)
        if acc is None:
            acc = _Accumulator(raw[:0])
        acc.add(*_distinct_bytes(raw))
    if acc is None:
        return _empty_raw(mode, n_genomes), np.zeros(0, dtype=np.int64)
    raw, weights = acc.result()
    raw = _canonical(raw, segments, n_genomes, mode)
    held = raw.any(axis=1)  # slots no current genome holds (after a removal)
    if not held.all():
        raw, weights = raw[held], weights[held]
    return raw, weights


# --------------------------------------------------------------------------------------
# pair counts
# --------------------------------------------------------------------------------------
class _PairCounts:
    """``sum_c w[c] x[c, i] x[c, j]`` for genomes i in ``lo:hi`` and all j, from packed bits.

    Joint byte histograms are summed over everything added and turned into pair counts at
    :meth:`result`, when they fit in :data:`_HIST_BYTES`; else at every :meth:`add`.
    """

    def __init__(self, n_genomes: int, lo: int = 0, hi: int | None = None) -> None:
        self.g = n_genomes
        self.lo, self.hi = lo, n_genomes if hi is None else hi
        self.nb = (n_genomes + 7) // 8
        self.a0, self.a1 = self.lo // 8, (self.hi + 7) // 8
        self.pairs = [(a, b) for a in range(self.a0, self.a1) for b in range(self.nb) if not (self.a0 <= b < a)]
        self.keep = len(self.pairs) * 65536 * 8 <= _HIST_BYTES
        self.hists = {p: np.zeros(256 if p[0] == p[1] else 65536, dtype=np.float64) for p in self.pairs} if self.keep else None
        self.out = np.zeros((8 * (self.a1 - self.a0), 8 * self.nb), dtype=np.float64)

    def add(self, packed: np.ndarray, weights: np.ndarray) -> None:
        if not weights.size or self.g == 0:
            return
        wf = weights.astype(np.float64)
        for c0 in range(0, weights.size, _PAIR_CHUNK):
            cols = [np.ascontiguousarray(packed[c0 : c0 + _PAIR_CHUNK, j]) for j in range(self.nb)]
            w = wf[c0 : c0 + _PAIR_CHUNK]
            hists = self.hists if self.keep else {}
            for a in range(self.a0, self.a1):
                high = cols[a].astype(np.intp) << 8
                for b in range(self.nb):
                    if self.a0 <= b < a:
                        continue
                    if a == b:
                        h = np.bincount(cols[a], weights=w, minlength=256)
                    else:
                        high_b = high | cols[b]
                        h = np.bincount(high_b, weights=w, minlength=65536)
                    if self.keep:
                        hists[(a, b)] += h
                    else:
                        hists[(a, b)] = h
            if not self.keep:
                self._fold(hists)

    def _fold(self, hists: dict) -> None:
        for (a, b), h in hists.items():
            blk = _fold_diagonal(h) if a == b else _fold_pair(h.reshape(256, 256))
            ra = 8 * (a - self.a0)
            self.out[ra : ra + 8, 8 * b : 8 * b + 8] += blk
            if self.a0 <= b < self.a1 and b != a:
                rb = 8 * (b - self.a0)
                self.out[rb : rb + 8, 8 * a : 8 * a + 8] += blk.T

    def result(self) -> np.ndarray:
        """(hi - lo, n_genomes) int64."""
        if self.keep:
            self._fold(self.hists)
            for h in self.hists.values():
                h[:] = 0
        out = np.rint(self.out).astype(np.int64)
        self.out[:] = 0
        r = self.lo - 8 * self.a0
        return out[r : r + (self.hi - self.lo), : self.g]


def _fold_pair(h: np.ndarray) -> np.ndarray:
    """``BITS.T @ h @ BITS`` for a (256, 256) joint byte histogram, by halving sums
    (exact, and free of BLAS threads, which are slow on busy hosts for such small products)."""
    hv = np.empty((256, 8), dtype=np.float64)
    for t in range(8):  # genomes of the second byte: sum the columns whose bit t is set
        hv[:, t] = h.reshape(256, 1 << t, 2, 1 << (7 - t))[:, :, 1, :].reshape(256, -1).sum(axis=1)
    out = np.empty((8, 8), dtype=np.float64)
    for s in range(8):  # genomes of the first byte
        out[s] = hv.reshape(1 << s, 2, 1 << (7 - s), 8)[:, 1].reshape(-1, 8).sum(axis=0)
    return out


def _fold_diagonal(h: np.ndarray) -> np.ndarray:
    """``BITS.T @ diag(h) @ BITS`` for a 256-bin byte histogram."""
    return _fold_pair(np.diag(h))


def _count_levels(counts: np.ndarray) -> np.ndarray:
    s = np.sort(counts[counts > 0])
    return s[_boundaries(s)]


def _add_min_sums(pc: _PairCounts, out: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> None:
    """``out += sum_c w[c] min(r[c, i], r[c, j])`` for i in pc's rows, on (C, G) count rows."""
    lo, hi = pc.lo, pc.hi
    prev = 0
    rows, w = counts, weights
    for v in _count_levels(counts).tolist():
        sel = rows.max(axis=1) >= v
        if not sel.all():
            rows, w = rows[sel], w[sel]
        if rows.shape[0] * (hi - lo) * pc.g <= _DIRECT_CELLS:
            # few rows left: sum max(0, min(a, b) - prev) directly
            step = max(1, _DIRECT_CHUNK // max(1, (hi - lo) * pc.g))
            for c0 in range(0, rows.shape[0], step):
                r = rows[c0 : c0 + step].astype(np.int64)
                m = np.minimum(r[:, lo:hi, None], r[:, None, :]) - prev
                np.maximum(m, 0, out=m)
                out += np.einsum("c,cij->ij", w[c0 : c0 + step], m)
            return
        pc.add(np.packbits(rows >= v, axis=1), w)
        out += (v - prev) * pc.result()
        prev = v


# --------------------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------------------
# Set in the parent before workers fork; workers read their copy.
_STATE: dict = {}


def _open_partition(state: dict, p: int) -> list[Layer]:
    return [Layer(state["root"], rec, state["column_of"]) for rec in state["partitions"][p]]


def _compare_job(partitions: list[int]):
    """Worker: reduce some partitions to pair counts (``reduce``) or to a class table.

    Pair counts of presence are summed layer by layer when the pair histograms fit in
    :data:`_HIST_BYTES`; otherwise (and for count min-sums) the job's class tables are
    merged first and reduced once.
    """
    st = _STATE
    mode, g, reduce = st["mode"], st["n_genomes"], st["reduce"]
    acc = _Accumulator(_empty_raw(mode, g))
    pc = _PairCounts(g) if reduce else None
    by_layer = reduce and mode == "presence" and pc.keep
    for p in partitions:
        for layer in _open_partition(st, p):
            if layer.n == 0:
                continue
            raw, weights = _layer_classes(layer, mode, g, st["block_bytes"])
            if by_layer:
                pc.add(raw, weights)
            else:
                acc.add(raw, weights)
    if not reduce:
        return len(partitions), acc.result()
    if by_layer:
        return len(partitions), pc.result()
    raw, weights = acc.result()
    if mode == "presence":
        pc.add(raw, weights)
        return len(partitions), pc.result()
    counts = np.ascontiguousarray(raw).view(np.uint32)
    colsum = (counts.astype(np.int64) * weights[:, None]).sum(axis=0) if weights.size else np.zeros(g, dtype=np.int64)
    mins = np.zeros((g, g), dtype=np.int64)
    _add_min_sums(pc, mins, counts, weights)
    return len(partitions), (mins, colsum)


def _jobs(snap, n_threads: int) -> list[list[int]]:
    """Partitions with k-mers in balanced lists, a few per worker (largest first)."""
    sizes = {p: sum(rec.n_kmers for rec in layers) for p, layers in enumerate(snap.partitions)}
    todo = sorted((p for p, s in sizes.items() if s), key=lambda p: -sizes[p])
    n_jobs = min(len(todo), 4 * n_threads) if n_threads > 1 else min(len(todo), 1)
    jobs: list[list[int]] = [[] for _ in range(n_jobs)]
    load = [0] * n_jobs
    for p in todo:
        j = load.index(min(load))
        jobs[j].append(p)
        load[j] += sizes[p]
    return [j for j in jobs if j]


def _run(db, task, jobs: list, state: dict, threads: int | None, progress: Progress | None, phase: str) -> Iterator:
    """Run ``task(job)`` for every job in forked workers; yield the results as they come."""
    from kmerdb.params import resolve_threads

    n_threads = resolve_threads(threads)
    snap = db.snapshot
    total = sum(len(j) for j in jobs)
    with forked_pool(
        n_threads,
        len(jobs),
        _STATE,
        **state,
        root=db.path,
        partitions=snap.partitions,
        column_of={g.id: i for i, g in enumerate(snap.genomes)},
        n_genomes=len(snap.genomes),
    ) as pool:
        done = 0
        for result in imap(pool, task, jobs):
            done += result[0]
            if progress is not None:
                progress(phase, done, total)
            yield result


def _threads(threads: int | None) -> int:
    from kmerdb.params import resolve_threads

    return resolve_threads(threads)


def _block_bytes(max_memory, threads: int | None) -> int:
    from kmerdb.params import parse_size, resolve_threads

    budget = parse_size(max_memory)
    if budget is None:
        return BLOCK_BYTES
    n = resolve_threads(threads)
    return int(max(1 << 20, min(BLOCK_BYTES, budget // (4 * (n + 1)))))


def _compare(db, mode: str, reduce: bool, threads, max_memory, progress):
    from kmerdb.params import resolve_threads

    jobs = _jobs(db.snapshot, resolve_threads(threads))
    state = {"mode": mode, "reduce": reduce, "block_bytes": _block_bytes(max_memory, threads)}
    return _run(db, _compare_job, jobs, state, threads, progress, "comparing")


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
        Bounds the row blocks the workers reduce at once, e.g. ``"512M"``.
    progress : callable, optional
        ``progress(phase, partitions done, partitions)``.

    Returns
    -------
    ClassTable
        Rows of k-mers held by no genome of the index (after a removal) are left out.
    """
    mode = "counts" if counts else "presence"
    if counts and not db.config.counts:
        raise InvalidParameterError("counts", True, "this index keeps presence only (build it with counts)")
    n_genomes = len(db.genomes)
    acc = _Accumulator(_empty_raw(mode, n_genomes))
    for _, (raw, weights) in _compare(db, mode, False, threads, max_memory, progress):
        acc.add(raw, weights)
    raw, weights = acc.result()
    return ClassTable(mode, n_genomes, raw, weights)


def _pair_rows(table: ClassTable, lo: int, hi: int) -> np.ndarray:
    """Pair counts of genomes lo:hi against all, from a class table."""
    pc = _PairCounts(table.n_genomes, lo, hi)
    step = _PAIR_CHUNK
    for c0 in range(0, table.n_classes, step):
        pc.add(table.presence_bytes(c0, c0 + step), table.weights[c0 : c0 + step])
    return pc.result()


def _min_rows(table: ClassTable, lo: int, hi: int) -> np.ndarray:
    """Min-sums of genomes lo:hi against all, from a count class table."""
    pc = _PairCounts(table.n_genomes, lo, hi)
    out = np.zeros((hi - lo, table.n_genomes), dtype=np.int64)
    _add_min_sums(pc, out, table.rows(), table.weights)
    return out


def _weighted_colsum(table: ClassTable) -> np.ndarray:
    """``sum_c w[c] * X[c, :]``: distinct k-mers (presence) or occurrences (counts) per genome."""
    out = np.zeros(table.n_genomes, dtype=np.int64)
    step = max(1, (32 << 20) // (8 * max(1, table.n_genomes)))
    for a in range(0, table.n_classes, step):
        out += (table.rows(a, a + step).astype(np.int64) * table.weights[a : a + step, None]).sum(axis=0)
    return out


#: Counts below this are histogrammed densely; larger ones are kept as values.
_HIST_CAP = 4096


def _weights_job(partitions: list[int]):
    """Worker: distinct k-mers, occurrences (and count histograms) per genome of some partitions."""
    st = _STATE
    n_genomes, want_spectrum = st["n_genomes"], st["spectrum"]
    distinct = np.zeros(n_genomes, dtype=np.int64)
    totals = np.zeros(n_genomes, dtype=np.int64)
    dense = np.zeros((n_genomes, _HIST_CAP), dtype=np.int64) if want_spectrum else None
    large: list[list[np.ndarray]] = [[] for _ in range(n_genomes)] if want_spectrum else []
    byte_bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.int64)  # (256, 8)
    layers = [layer for p in partitions for layer in _open_partition(st, p)]
    for layer in layers:
        if layer.n == 0:
            continue
        width = sum(data.shape[1] * data.dtype.itemsize for _, data, cols, _ in layer.groups if cols.size)
        step = int(max(1024, st["block_bytes"] // (16 * max(1, width))))
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
    return len(partitions), (distinct, totals, (dense, large))



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
        from kmerdb.errors import GenomeNotFoundError

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
            lines.append("\t".join([label] + [format_value(v) for v in row.tolist()]))
        return "\n".join(lines) + "\n"

    def to_phylip(self) -> str:
        """Square (relaxed) PHYLIP: the count, then per row the label padded to 10 characters,
        a space and the values; whitespace in labels becomes ``_``."""
        lines = [f"{len(self.labels)}"]
        for label, row in zip(self.labels, self.matrix):
            name = "_".join(label.split()) or "_"
            lines.append(f"{name:<10} " + " ".join(format_value(v) for v in row.tolist()))
        return "\n".join(lines) + "\n"

    def as_distance(self) -> np.ndarray:
        """The matrix as distances (``1 - x`` for a similarity)."""
        return 1.0 - self.matrix if self.is_similarity else self.matrix.copy()

    def tree(self, method: str = "nj") -> str:
        """A Newick tree of the genomes (``nj`` or ``upgma``); see :mod:`kmerdb.phylo`."""
        from kmerdb.analysis.phylo import tree_from_matrix

        if not METRICS[self.metric][1]:
            raise InvalidParameterError("metric", self.metric, f"a tree needs a symmetric metric: {', '.join(TREE_METRICS)}")
        return tree_from_matrix(self.as_distance(), self.labels, method)


def format_value(v: float) -> str:
    """A matrix value as text: integers without a fraction, floats in full (shortest round trip)."""
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
    for _, (d, t, _) in _run(db, _weights_job, _jobs(db.snapshot, _threads(threads)), state, threads, progress, "weighing"):
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
    for _, (_, _, (d, big)) in _run(db, _weights_job, _jobs(db.snapshot, _threads(threads)), state, threads, None, "spectrum"):
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
    g = len(db.genomes)
    out = np.zeros((g, g), dtype=np.int64)
    for _, part in _compare(db, "presence", True, threads, max_memory, progress):
        out += part
    return out


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
    """A metric computed from the columns: dense in one pass (pair counts summed over
    partitions), or a block of genomes at a time from the class table (sparse streams)."""

    def __init__(self, db, metric: str, threads, max_memory, progress, dense: bool) -> None:
        _check_metric(db, metric)
        self.metric = metric
        self.k = db.config.k
        self.labels = db.genomes
        g = len(self.labels)
        counts = metric == "bray-curtis"
        self.table = None
        if dense:
            if counts:
                self.mins = np.zeros((g, g), dtype=np.int64)
                self.sums = np.zeros(g, dtype=np.int64)
                for _, (mins, colsum) in _compare(db, "counts", True, threads, max_memory, progress):
                    self.mins += mins
                    self.sums += colsum
            else:
                self.inter = intersections(db, threads, max_memory, progress)
                self.sums = np.diag(self.inter).copy()
        else:
            self.table = colour_classes(db, counts=counts, threads=threads, max_memory=max_memory, progress=progress)
            self.sums = _weighted_colsum(self.table)

    def block(self, lo: int, hi: int) -> np.ndarray:
        if self.metric == "bray-curtis":
            mins = self.mins[lo:hi] if self.table is None else _min_rows(self.table, lo, hi)
            return _metric_block(self.metric, self.k, None, None, None, mins, self.sums[lo:hi], self.sums)
        inter = self.inter[lo:hi] if self.table is None else _pair_rows(self.table, lo, hi)
        return _metric_block(self.metric, self.k, inter, self.sums[lo:hi], self.sums)


def distance(db, metric: str = "jaccard", threads: int | None = None, max_memory=None, progress: Progress | None = None) -> DistanceMatrix:
    """A labelled matrix of a metric between every pair of genomes.

    See :meth:`kmerdb.Database.distance`.
    """
    cmp = _Comparer(db, metric, threads, max_memory, progress, dense=True)
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
    cmp = _Comparer(db, metric, threads, max_memory, progress, dense=False)
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
