"""Colour classes: the distinct rows of genome columns and how many k-mers carry each.

A block of slots of a layer is reduced to its *colour classes*: the distinct rows (presence
bits, or counts) and the number of slots that carry each.  Related genomes share most of
their k-mers, so a layer of millions of slots reduces to a few percent as many classes.
Distinct rows are found by sorting, never with ``np.unique``: a row of at most 8 bytes is
read as one uint64 and plain-sorted; a wider row is read as uint64 words (views on the
memory-mapped rows, overlapping at the end when the width is not a multiple of 8), hashed
to 64 bits, and the block's row index is packed into the low bits of the hash, so that one
sort of uint64 gives both the groups and the permutation.  Every row is then compared with
its predecessor in the sorted order, so a hash collision is detected and the block is redone
exactly (lexsort).

Layers are read through their column encodings (:mod:`kmerdb.store.encodings`): each
group gives its rows of a block as bytes in the presence layout (packed bits) or the counts
layout (one integer per genome), and the classes are put in the database's column order.
Memory is bounded by the row block reduced at a time (``block_bytes`` of temporaries).

A layer with colour-class groups is not read row by row: its slots' class ids (and the
packed rows of small dense groups beside them, after appends) are combined into one integer
per slot, the distinct combinations counted, and only those decoded (:func:`_coded_classes`);
for counts, the few slots where a genome counts two or more are read as rows
(:func:`layer_count_parts`).  The cost follows the classes, not k-mers x genomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from kmerdb.core.colours import SparseRows
from kmerdb.store.encodings import ColumnEncoding, unpack_presence
from kmerdb.store.layer import Layer

__all__ = [
    "BLOCK_BYTES",
    "MAX_BLOCK_ROWS",
    "ClassTable",
    "ClassAccumulator",
    "SpreadAccumulator",
    "distinct_rows",
    "distinct_bytes",
    "boundaries",
    "empty_rows",
    "layer_classes",
    "layer_count_parts",
    "pack_rows",
]

#: Bytes of temporaries a worker uses to reduce one block of rows (about 64 per row).
BLOCK_BYTES = 64 << 20
#: Largest number of rows of one block (the row index is packed into the low bits of a hash).
MAX_BLOCK_ROWS = 1 << 20
#: A class table that grew by this many rows since its last merge is merged again.
_MERGE_ROWS = 1 << 18
#: Rows of at most this many bytes are copied column by column before they are reduced.
_COPY_BYTES = 128 << 20

# --------------------------------------------------------------------------------------
# distinct rows
# --------------------------------------------------------------------------------------
def boundaries(sorted_values: np.ndarray) -> np.ndarray:
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
        first = boundaries(h)
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


def distinct_bytes(raw: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of (n, B) uint8 and their summed weights (copies without weights)."""
    n, b = raw.shape
    if n == 0:
        return raw[:0].copy(), np.zeros(0, dtype=np.int64)
    if b == 0:
        return raw[:1].copy(), np.array([n if weights is None else int(weights.sum())], dtype=np.int64)
    cols = _columns(raw)
    if len(cols) == 1 and weights is None:
        s = np.sort(cols[0])
        starts = np.flatnonzero(boundaries(s))
        rows = np.ascontiguousarray(s[starts]).view(np.uint8).reshape(-1, 8)[:, :b]
        return np.ascontiguousarray(rows), np.diff(np.append(starts, n)).astype(np.int64)
    # contiguous copies: a sequential pass, then the sorted-order gathers run 2-3x faster;
    # a large table is read through its strided views instead (no second copy of it)
    if raw.nbytes <= _COPY_BYTES:
        cols = [np.ascontiguousarray(c) for c in cols]
    idx, counts = _distinct_index(cols, weights)
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


def empty_rows(mode: str, n_genomes: int) -> np.ndarray:
    return np.zeros((0, (n_genomes + 7) // 8 if mode == "presence" else 4 * n_genomes), dtype=np.uint8)


class ClassAccumulator:
    """Collects (raw rows, weights) tables of one layout and merges them as they grow."""

    def __init__(self, empty: np.ndarray, merge_rows: int = _MERGE_ROWS) -> None:
        self.empty = empty
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        self.rows = 0
        self.merged_rows = 0
        self.merge_rows = merge_rows

    def add(self, raw: np.ndarray, weights: np.ndarray) -> None:
        if not weights.size:
            return
        self.tables.append((raw, weights))
        self.rows += weights.size
        if self.rows - self.merged_rows > max(self.merge_rows, self.merged_rows):
            self._merge()

    def _merge(self) -> None:
        if len(self.tables) > 1:
            raw = np.concatenate([t[0] for t in self.tables])
            weights = np.concatenate([t[1] for t in self.tables])
            self.tables = [distinct_bytes(raw, weights)]
        self.rows = self.merged_rows = sum(t[1].size for t in self.tables)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.tables:
            return self.empty, np.zeros(0, dtype=np.int64)
        self._merge()
        return self.tables[0]


class SpreadAccumulator:
    """A :class:`ClassAccumulator` split in buckets by a hash of the rows.

    Equal rows meet in one bucket, so buckets merge alone: a merge copies one bucket, not
    the whole table, and the result is put together bucket by bucket, each freed once
    copied.  Meant for large tables (the classes of a whole index of many genomes), where
    a merge would otherwise hold the table several times over.
    """

    def __init__(self, empty: np.ndarray, buckets: int = 16) -> None:
        self.empty = empty
        self.parts: list[ClassAccumulator | None] = [ClassAccumulator(empty, _MERGE_ROWS // buckets) for _ in range(buckets)]

    def add(self, raw: np.ndarray, weights: np.ndarray) -> None:
        if not weights.size:
            return
        n_parts = len(self.parts)
        bucket = (_hash_rows(_columns(raw)) % np.uint64(n_parts)).astype(np.intp) if raw.shape[1] else np.zeros(weights.size, np.intp)
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(n_parts + 1))
        for b, part in enumerate(self.parts):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            if lo < hi and part is not None:
                part.add(raw[order[lo:hi]], weights[order[lo:hi]])

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        tables = [part.result() for part in self.parts if part is not None]
        self.parts = []
        total = sum(t[1].size for t in tables)
        if not total:
            return self.empty, np.zeros(0, dtype=np.int64)
        raw = np.empty((total, self.empty.shape[1]), dtype=np.uint8)
        weights = np.empty(total, dtype=np.int64)
        at = 0
        for i in range(len(tables)):
            part_raw, part_weights = tables[i]
            tables[i] = (self.empty, part_weights[:0])  # freed once copied
            raw[at : at + part_weights.size] = part_raw
            weights[at : at + part_weights.size] = part_weights
            at += part_weights.size
            del part_raw, part_weights
        return raw, weights


def _layer_block(layer: Layer, lo: int, hi: int, mode: str):
    """Row bytes of slots lo:hi of a layer, and the segments that say how to decode them.

    A segment is (byte offset, bytes, database columns, dtype): dtype None for packed
    presence bits, else the dtype of one value per genome.
    """
    parts, segments, off = [], [], 0
    for group in layer.groups:
        if not group.live:
            continue
        raw, dtype = group.class_block(lo, hi, mode == "counts")
        segments.append((off, raw.shape[1], group.cols, dtype))
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


def pack_rows(rows: SparseRows) -> np.ndarray:
    """Presence bits of sparse rows (ClassTable presence bytes), through dense blocks of
    bounded size (a scatter and ``np.packbits`` instead of a bitwise ``ufunc.at``)."""
    g = rows.n_columns
    out = np.zeros((rows.n, (g + 7) // 8), dtype=np.uint8)
    step = max(1, (16 << 20) // max(1, g))
    for lo in range(0, rows.n, step):
        part = rows.take(np.arange(lo, min(rows.n, lo + step)))
        out[lo : lo + part.n] = np.packbits(part.to_dense(bool), axis=1)
    return out


def _group_codes(group: ColumnEncoding, lo: int, hi: int) -> np.ndarray:
    """A code of each of slots lo:hi of a group: its class id, or its packed presence bytes
    (of a dense group of at most 56 genomes) read as one integer."""
    if group.family == "classes":
        return cast(Any, group).class_ids(np.arange(lo, hi, dtype=np.int64))
    raw, _ = group.class_block(lo, hi, False)
    code = np.zeros(raw.shape[0], dtype=np.int64)
    for b in range(raw.shape[1]):
        code = (code << 8) | raw[:, b]
    return code


def _group_radix(group: ColumnEncoding) -> int | None:
    """How many codes :func:`_group_codes` gives a group (None: too many to combine)."""
    if group.family == "classes":
        return max(1, int(cast(Any, group).n_classes))
    nbytes = (group.cols.size + 7) // 8
    return 1 << (8 * nbytes) if nbytes <= 7 else None


def _decode_codes(group: ColumnEncoding, codes: np.ndarray) -> SparseRows:
    """Rows over database columns of the distinct codes of a group."""
    if group.family == "classes":
        return cast(Any, group).members(codes)
    width = group.cols.size
    nbytes = (width + 7) // 8
    raw = np.stack([(codes >> (8 * (nbytes - 1 - b))) & 0xFF for b in range(nbytes)], axis=1).astype(np.uint8)
    r, c = np.nonzero(np.unpackbits(raw, axis=1, count=width))
    return SparseRows.from_pairs(r, group.cols[c], codes.size, group.n_db, ordered=bool(np.all(np.diff(group.cols) > 0)))


def _coded_classes(layer: Layer, n_genomes: int, block_bytes: int):
    """Presence classes of a layer from its groups' codes (class ids), without per-slot rows.

    Each slot's classes across the layer's groups are combined in one mixed-radix integer;
    the distinct combinations and their slot counts come from sorts (or, for a layer of one
    colour-class group, one bincount of class ids), and only the distinct ones are decoded.
    Returns None when a group cannot be coded (a dense group of many genomes) or the
    combination does not fit in 62 bits.
    """
    live = [g for g in layer.groups if g.live]
    if not live or not any(g.family == "classes" for g in live):
        return None
    radices = [_group_radix(g) for g in live]
    if any(r is None for r in radices) or math.prod(cast(list[int], radices)) >= 1 << 62:
        return None
    step = int(max(1024, min(MAX_BLOCK_ROWS * 8, block_bytes // 32)))
    if len(live) == 1:
        weights = np.zeros(cast(int, radices[0]), dtype=np.int64)
        for lo in range(0, layer.n, step):
            weights += np.bincount(_group_codes(live[0], lo, min(layer.n, lo + step)), minlength=weights.size)
        keys = np.flatnonzero(weights)
        weights = weights[keys]
    else:
        parts_k, parts_w = [], []
        for lo in range(0, layer.n, step):
            hi = min(layer.n, lo + step)
            key = np.zeros(hi - lo, dtype=np.int64)
            for group, radix in zip(live, radices):
                key = key * cast(int, radix) + _group_codes(group, lo, hi)
            key.sort()
            starts = np.flatnonzero(boundaries(key))
            parts_k.append(key[starts])
            parts_w.append(np.diff(np.append(starts, key.size)))
        keys = np.concatenate(parts_k)
        w = np.concatenate(parts_w)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(boundaries(keys))
        weights = np.add.reduceat(w[order], starts) if starts.size else np.zeros(0, dtype=np.int64)
        keys = keys[starts]
    only = live[0]
    in_order = only.full and only.cols.size == n_genomes and np.array_equal(only.cols, np.arange(n_genomes))
    if len(live) == 1 and only.family == "classes" and in_order:
        raw = cast(Any, only).local_packed(keys)  # group order is column order: its bits as stored
        held = raw.any(axis=1)
        return (raw, weights) if held.all() else (raw[held], weights[held])
    # decode each group's part of the distinct keys (last group = lowest digit)
    pairs_r, pairs_c = [], []
    rest = keys.copy()
    for group, radix in reversed(list(zip(live, radices))):
        digit = rest % cast(int, radix)
        rest //= cast(int, radix)
        used = np.sort(digit)
        used = used[boundaries(used)]
        rows = _decode_codes(group, used).take(np.searchsorted(used, digit))
        pairs_r.append(rows.row_of())
        pairs_c.append(rows.columns)
    rows = SparseRows.from_pairs(np.concatenate(pairs_r), np.concatenate(pairs_c), keys.size, n_genomes)
    held = rows.sizes > 0  # slots no current genome holds (after a removal)
    if not held.all():
        rows, weights = rows.take(np.flatnonzero(held)), weights[held]
    return pack_rows(rows), weights


def layer_classes(layer: Layer, mode: str, n_genomes: int, block_bytes: int):
    """The colour classes of one layer: (ClassTable bytes, weights), all-absent rows dropped.

    Presence classes of a layer with colour-class groups come from the class ids
    (:func:`_coded_classes`); other layers are reduced from their rows, a block at a time.
    """
    if mode == "presence":
        coded = _coded_classes(layer, n_genomes, block_bytes)
        if coded is not None:
            return coded
    per_row = 64 + sum(2 * group.row_nbytes for group in layer.groups if group.live)
    step = int(max(1024, min(MAX_BLOCK_ROWS, block_bytes // per_row)))
    acc = None
    segments = None
    for lo in range(0, layer.n, step):
        raw, segments = _layer_block(layer, lo, min(layer.n, lo + step), mode)
        if raw is None:
            return empty_rows(mode, n_genomes), np.zeros(0, dtype=np.int64)
        if acc is None:
            acc = ClassAccumulator(raw[:0])
        acc.add(*distinct_bytes(raw))
    if acc is None:
        return empty_rows(mode, n_genomes), np.zeros(0, dtype=np.int64)
    raw, weights = acc.result()
    raw = _canonical(raw, segments, n_genomes, mode)
    held = raw.any(axis=1)  # slots no current genome holds (after a removal)
    if not held.all():
        raw, weights = raw[held], weights[held]
    return raw, weights



def layer_count_parts(layer: Layer, n_genomes: int, block_bytes: int):
    """A layer's counts split in two tables: presence classes, and the distinct rows of the
    counts less one (``max(c - 1, 0)``) of the few slots where some genome counts two or more.

    ``min(a, b) = [a >= 1][b >= 1] + min(a - 1, b - 1)`` for counts ``a, b >= 0`` (the second
    term clipped at 0), so count min-sums are the presence pair counts plus the min-sums of
    the second table.  The presence classes come from class ids (:func:`_coded_classes`) and
    the second table from the slots :meth:`slots_counting` finds, so no per-slot rows of the
    whole layer are made.

    Returns
    -------
    ((raw, weights), (raw, weights)) or None
        ClassTable bytes of presence, and of counts (uint32 per genome); None when the layer
        has no colour-class group to code.
    """
    presence = _coded_classes(layer, n_genomes, block_bytes)
    if presence is None:
        return None
    live = [g for g in layer.groups if g.live]
    acc = ClassAccumulator(empty_rows("counts", n_genomes))
    step = int(max(1024, min(MAX_BLOCK_ROWS * 8, block_bytes // 16)))
    rows_at_once = max(1, block_bytes // (8 * max(1, n_genomes)))
    for lo in range(0, layer.n, step):
        hi = min(layer.n, lo + step)
        found = []
        for group in live:
            if not group.keeps_counts:
                continue
            if group.family == "classes":
                found.append(cast(Any, group).slots_counting(lo, hi, 2))
            else:
                values = group.count_values(lo, hi)
                if values is not None:
                    found.append(np.flatnonzero((values >= 2).any(axis=1)) + lo)
        if not found:
            continue
        slots = np.sort(np.concatenate(found))
        slots = slots[boundaries(slots)]
        for a in range(0, slots.size, rows_at_once):
            part = slots[a : a + rows_at_once]
            rows = _rows_of(live, part, n_genomes)
            less = rows.value_counts().astype(np.int64) - 1
            keep = less > 0
            reduced = SparseRows.from_pairs(rows.row_of()[keep], rows.columns[keep], part.size, n_genomes, less[keep])
            dense = reduced.to_dense(np.uint32)
            acc.add(*distinct_bytes(dense.view(np.uint8).reshape(part.size, -1)))
    return presence, acc.result()


def _rows_of(groups: list[ColumnEncoding], slots: np.ndarray, n_genomes: int) -> SparseRows:
    """Count rows of ``slots`` over the database's genomes, every group's columns together."""
    parts = [g.rows(slots) for g in groups]
    if len(parts) == 1:
        return parts[0]
    return SparseRows.from_pairs(
        np.concatenate([p.row_of() for p in parts]),
        np.concatenate([p.columns for p in parts]),
        slots.size,
        n_genomes,
        np.concatenate([p.value_counts() for p in parts]),
    )
