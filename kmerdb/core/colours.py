"""Sparse genome rows and their colour classes, in memory.

A k-mer's *colour* is the set of genomes that hold it.  :class:`SparseRows` keeps the colours
of many k-mers the way a CSR matrix does: row ``i`` holds the columns
``columns[indptr[i]:indptr[i + 1]]`` (ascending), and with counts the occurrences of the k-mer
in each of them, aligned.  Memory is proportional to the (k-mer, genome) occurrences, never to
k-mers x genomes: this is what every operation that moves genome columns (build, append,
merge, compact, set operations) hands to the column encodings that write them.

:meth:`SparseRows.classes` reduces rows to their distinct colours (the *colour classes*) and
gives each row its class id.  Rows are hashed as sets (a sum of mixed column ids, so no sort
is needed beyond the rows' own order), classes are the distinct hashes, and every row is then
compared element by element with its class's first row: a hash collision is detected and the
reduction is redone with another seed, so classes are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kmerdb.core.kmers import mix64

__all__ = ["SparseRows", "segment_positions"]

_U32_MAX = np.iinfo(np.uint32).max
# occurrences hashed or compared at a time (bounds the temporaries of a class reduction)
_CHUNK = 1 << 22
# Rows of at most this many columns find their colours by bitmask (a table of 2**columns masks).
_BITMASK_COLUMNS = 16
# distinct seeds of the set hash tried before giving up (a collision at 64 bits is ~n^2/2^65)
_SEEDS = (0x5851F42D4C957F2D, 0x14057B7EF767814F, 0x2545F4914F6CDD1D, 0x9E3779B97F4A7C15)


def segment_positions(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Indices ``starts[i], starts[i] + 1, ..., starts[i] + sizes[i] - 1`` for every i, concatenated."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(sizes)
    # a run of +1 steps, with a jump to the next segment's start where each segment begins
    step = np.ones(total, dtype=np.int64)
    nonempty = sizes > 0
    s = np.asarray(starts, dtype=np.int64)[nonempty]
    first = (ends - sizes)[nonempty]
    step[first] = s
    step[first[1:]] -= s[:-1] + sizes[nonempty][:-1] - 1
    return np.cumsum(step)


@dataclass(frozen=True, eq=False)
class SparseRows:
    """Genome columns of ``n`` rows, sparse.

    Attributes
    ----------
    indptr : ndarray of int64, shape (n + 1,)
        Row ``i`` is ``columns[indptr[i]:indptr[i + 1]]``.
    columns : ndarray of int32
        Column of every occurrence, ascending within a row.
    counts : ndarray of uint32 or None
        Occurrences aligned with ``columns`` (None: presence only).
    n_columns : int
        Columns of the space the rows live in.
    """

    indptr: np.ndarray
    columns: np.ndarray
    counts: np.ndarray | None
    n_columns: int

    # -- construction --------------------------------------------------------------------
    @classmethod
    def empty(cls, n: int, n_columns: int, counts: bool = False) -> SparseRows:
        """``n`` rows without any column."""
        return cls(
            np.zeros(n + 1, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.uint32) if counts else None,
            int(n_columns),
        )

    @classmethod
    def from_pairs(
        cls,
        rows: np.ndarray,
        columns: np.ndarray,
        n_rows: int,
        n_columns: int,
        counts: np.ndarray | None = None,
        ordered: bool = False,
    ) -> SparseRows:
        """Rows from (row, column[, count]) occurrences, each pair at most once.

        ``ordered``: the pairs are sorted by row, then column, already.
        """
        rows = np.asarray(rows, dtype=np.int64)
        columns = np.asarray(columns)
        if not ordered and rows.size:
            order = np.argsort(rows * np.int64(max(1, n_columns)) + columns.astype(np.int64), kind="stable")
            rows, columns = rows[order], columns[order]
            if counts is not None:
                counts = np.asarray(counts)[order]
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return cls(indptr, columns.astype(np.int32, copy=False), _counts(counts), int(n_columns))

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> SparseRows:
        """Rows of a (n, g) matrix: booleans (presence) or integer counts (0 = absent)."""
        matrix = np.asarray(matrix)
        n, g = matrix.shape
        r, c = np.nonzero(matrix)
        counts = None if matrix.dtype == bool else matrix[r, c]
        return cls.from_pairs(r, c, n, g, counts, ordered=True)

    @classmethod
    def hstack(cls, parts: Sequence[tuple[SparseRows, int]], n_columns: int) -> SparseRows:
        """Rows of equal count side by side: ``parts`` are (rows, first column) pairs."""
        n = parts[0][0].n if parts else 0
        with_counts = any(p.counts is not None for p, _ in parts)
        rows = np.concatenate([np.repeat(np.arange(n, dtype=np.int64), p.sizes) for p, _ in parts]) if parts else None
        if rows is None:
            return cls.empty(n, n_columns, with_counts)
        cols = np.concatenate([p.columns.astype(np.int64) + off for p, off in parts])
        counts = np.concatenate([p.value_counts() for p, _ in parts]) if with_counts else None
        return cls.from_pairs(rows, cols, n, n_columns, counts)

    @classmethod
    def vstack(cls, parts: Sequence[SparseRows], n_columns: int) -> SparseRows:
        """Rows of ``parts`` one after the other, in one column space."""
        if not parts:
            return cls.empty(0, n_columns)
        with_counts = any(p.counts is not None for p in parts)
        sizes = np.concatenate([p.sizes for p in parts])
        indptr = np.zeros(sizes.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        columns = np.concatenate([p.columns for p in parts]).astype(np.int32, copy=False)
        counts = np.concatenate([p.value_counts() for p in parts]) if with_counts else None
        return cls(indptr, columns, counts, int(n_columns))

    # -- properties ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.indptr.size - 1)

    @property
    def nnz(self) -> int:
        """Number of (row, column) occurrences."""
        return int(self.indptr[-1])

    @property
    def sizes(self) -> np.ndarray:
        """Columns of each row (int64)."""
        return np.diff(self.indptr)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return int(self.indptr.nbytes + self.columns.nbytes + (self.counts.nbytes if self.counts is not None else 0))

    def row_of(self) -> np.ndarray:
        """The row of every occurrence (int64)."""
        return np.repeat(np.arange(self.n, dtype=np.int64), self.sizes)

    def value_counts(self) -> np.ndarray:
        """Counts of the occurrences (1 for each of a presence-only row)."""
        if self.counts is not None:
            return self.counts
        return np.ones(self.nnz, dtype=np.uint32)

    # -- transformations -----------------------------------------------------------------
    def take(self, rows: np.ndarray) -> SparseRows:
        """Rows ``rows`` (indices, in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        sizes = self.sizes[rows]
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        starts = self.indptr[rows]
        columns = np.empty(int(indptr[-1]), dtype=self.columns.dtype)
        counts = np.empty(columns.size, dtype=self.counts.dtype) if self.counts is not None else None
        # gathered in blocks of rows: the index of a block's cells stays in cache, where one
        # index of all of them (8 bytes a cell, fresh pages) cost 10x more (many-genome classes)
        for lo, hi in _row_blocks(indptr, _CHUNK // 4):
            a, b = int(indptr[lo]), int(indptr[hi])
            at = segment_positions(starts[lo:hi], sizes[lo:hi])
            np.take(self.columns, at, out=columns[a:b])
            if counts is not None and self.counts is not None:
                np.take(self.counts, at, out=counts[a:b])
        return SparseRows(indptr, columns, counts, self.n_columns)

    def remap(self, column_map: np.ndarray, n_columns: int) -> SparseRows:
        """Columns renamed through ``column_map`` (old column -> new, -1 drops it)."""
        column_map = np.asarray(column_map, dtype=np.int64)
        # gathered as int32 (the columns' own type): no second pass to convert them
        new = column_map.astype(np.int32)[self.columns] if self.nnz else np.zeros(0, dtype=np.int32)
        keep = new >= 0
        mapped = column_map[column_map >= 0]
        monotone = bool(mapped.size < 2 or (np.diff(mapped) > 0).all())
        if keep.all() and monotone:
            return SparseRows(self.indptr, new, self.counts, int(n_columns))
        rows = self.row_of()[keep]
        counts = self.counts[keep] if self.counts is not None else None
        return SparseRows.from_pairs(rows, new[keep], self.n, n_columns, counts, ordered=monotone)

    def in_slot_order(self, slots: np.ndarray) -> SparseRows:
        """The rows reordered so that row ``slots[i]`` of the result is row ``i`` (``slots`` a
        permutation of ``0..n-1``, such as the MPHF slot of each key).  Rows already in slot
        order (``slots`` is ``0..n-1``) are returned as they are."""
        slots = np.asarray(slots, dtype=np.int64)
        identity = np.arange(self.n, dtype=np.int64)
        if np.array_equal(slots, identity):
            return self
        order = np.empty(self.n, dtype=np.int64)
        order[slots] = identity
        return self.take(order)

    def presence(self) -> SparseRows:
        """The same rows without counts."""
        return SparseRows(self.indptr, self.columns, None, self.n_columns)

    def drop_empty(self) -> tuple[SparseRows, np.ndarray]:
        """Rows with at least one column, and their indices."""
        keep = np.flatnonzero(self.sizes > 0)
        if keep.size == self.n:
            return self, keep
        return self.take(keep), keep

    def to_dense(self, dtype=bool) -> np.ndarray:
        """(n, n_columns) matrix: presence, or counts (saturating) for an integer dtype."""
        out = np.zeros((self.n, self.n_columns), dtype=dtype)
        if self.nnz:
            rows = self.row_of()
            if np.dtype(dtype) == bool:
                out[rows, self.columns] = True
            else:
                top = np.iinfo(dtype).max if np.dtype(dtype).kind in "ui" else None
                vals = self.value_counts()
                if top is not None and top < _U32_MAX:
                    vals = np.minimum(vals, top)
                out[rows, self.columns] = vals
        return out

    def packed(self) -> np.ndarray:
        """(n, ceil(n_columns / 8)) uint8: presence bits, column i at bit ``7 - i % 8`` of byte ``i // 8``."""
        nb = (self.n_columns + 7) // 8
        out = np.zeros((self.n, nb), dtype=np.uint8)
        step = max(1, (16 << 20) // max(1, self.n_columns))
        for first, last in _row_blocks(self.indptr, _CHUNK // 2):  # a bounded index of cells
            for lo in range(first, last, step):  # dense blocks of bounded size
                hi = min(last, lo + step)
                a, b = int(self.indptr[lo]), int(self.indptr[hi])
                block = np.zeros((hi - lo, self.n_columns), dtype=bool)
                block[np.repeat(np.arange(hi - lo, dtype=np.int32), self.sizes[lo:hi]), self.columns[a:b]] = True
                out[lo:hi] = np.packbits(block, axis=1)
        return out

    # -- colour classes ------------------------------------------------------------------
    def classes(self) -> tuple[np.ndarray, SparseRows]:
        """The distinct colours of the rows (presence: counts are ignored).

        Returns
        -------
        class_of : ndarray of int64, shape (n,)
            Class id of every row.
        table : SparseRows
            One row per class (its columns, ascending; no counts), ids ``0..C-1`` ordered by
            decreasing number of rows (ties by first row), so small ids are the common ones.
        """
        n = self.n
        if n == 0:
            return np.zeros(0, dtype=np.int64), SparseRows.empty(0, self.n_columns)
        if self.n_columns <= _BITMASK_COLUMNS:
            inverse, first = self._bitmask_colours()
        else:
            inverse, first = self._hashed_colours()
        # ids by decreasing weight, ties by first row
        weights = np.bincount(inverse, minlength=first.size)
        order = np.lexsort((first, -weights))
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        class_of = rank[inverse]
        table = self.take(first[order]).presence()
        return class_of, table

    def _bitmask_colours(self) -> tuple[np.ndarray, np.ndarray]:
        """(colour of each row, first row of each colour) where a row's genomes fit a small
        bitmask: the mask is the colour, counted in a table of every mask (no hash, no sort)."""
        n = self.n
        masks = np.zeros(n, dtype=np.int64)
        if self.nnz:
            bit = np.left_shift(1, self.columns.astype(np.int64))
            nonempty = np.flatnonzero(self.sizes > 0)
            masks[nonempty] = np.add.reduceat(bit, self.indptr[nonempty])  # a row's columns are distinct
        first = np.full(1 << self.n_columns, n, dtype=np.int64)
        np.minimum.at(first, masks, np.arange(n, dtype=np.int64))
        used = np.flatnonzero(first < n)
        colour = np.empty(first.size, dtype=np.int64)
        colour[used] = np.arange(used.size)
        return colour.take(masks), first[used]

    def _hashed_colours(self) -> tuple[np.ndarray, np.ndarray]:
        """(colour of each row, first row of each colour) through a set hash of each row,
        checked against the rows (another seed on a collision)."""
        n = self.n
        sizes = self.sizes
        for seed in _SEEDS:
            h = np.zeros(n, dtype=np.uint64)
            if self.nnz:
                # a set hash: the sum of its members' mixed ids (a gather from a table of one
                # value per column, in cache, rather than a mix per occurrence)
                per_column = mix64(np.arange(self.n_columns, dtype=np.uint64), seed)
                for lo, hi in _row_blocks(self.indptr, _CHUNK):
                    a = int(self.indptr[lo])
                    mixed = per_column.take(self.columns[a : int(self.indptr[hi])])
                    nonempty = lo + np.flatnonzero(sizes[lo:hi] > 0)
                    if nonempty.size:
                        h[nonempty] = np.add.reduceat(mixed, self.indptr[nonempty] - a)
            h ^= mix64(sizes.astype(np.uint64), seed ^ 0xFF)
            _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
            del h
            rep = first[inverse]
            if self._same_as(rep):
                return inverse, first
        raise RuntimeError("colour classes: hash collisions with every seed")  # pragma: no cover

    def _same_as(self, rep: np.ndarray) -> bool:
        """Whether every row equals row ``rep[row]``, element by element."""
        sizes = self.sizes
        if not np.array_equal(sizes[rep], sizes):
            return False
        if not self.nnz:
            return True
        # occurrence j of row r sits at the same offset in row rep[r]: j + (indptr[rep[r]] - indptr[r]);
        # compared in blocks of rows, so temporaries stay near _CHUNK occurrences
        delta = self.indptr[rep] - self.indptr[:-1]
        for lo, hi in _row_blocks(self.indptr, _CHUNK):
            a, b = int(self.indptr[lo]), int(self.indptr[hi])
            shift = np.repeat(delta[lo:hi], sizes[lo:hi])
            shift += np.arange(a, b, dtype=np.int64)
            if not np.array_equal(self.columns.take(shift), self.columns[a:b]):
                return False
        return True


def _row_blocks(indptr: np.ndarray, chunk: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of about ``chunk`` occurrences each (a row is never split)."""
    n = indptr.size - 1
    if n <= 0:
        return []
    cuts = np.searchsorted(indptr, np.arange(chunk, int(indptr[-1]), chunk), side="right") - 1
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, n), [n]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _counts(counts: np.ndarray | None) -> np.ndarray | None:
    if counts is None:
        return None
    counts = np.asarray(counts)
    if counts.dtype == np.uint32:
        return counts
    if counts.size and counts.dtype.kind in "iu" and int(counts.max()) > _U32_MAX:
        counts = np.minimum(counts, _U32_MAX)
    return counts.astype(np.uint32)
