"""Pair counts and min-sums over colour classes.

With ``x[c]`` the presence bits and ``w[c]`` the weight of class ``c``, the k-mers shared by
genomes ``i`` and ``j`` are ``sum_c w[c] x[c, i] x[c, j]``.  Rows are bytes of 8 genomes, so
for every pair of byte columns ``(a, b)`` one weighted ``np.bincount`` of
``x[:, a] * 256 + x[:, b]`` (65536 bins) gives the joint histogram ``H`` of the two bytes,
and summing H over the rows and columns whose bit is set gives the 8 x 8 block of pair
counts.  The cost is one bincount per byte pair per class, about 16x less arithmetic than a
dense ``x.T @ diag(w) @ x`` with BLAS, and exact (integer sums far below 2**53).
Histograms of a worker's partitions are summed before the bit products are taken.

On counts, ``sum_c w[c] min(r[c, i], r[c, j])`` (Bray-Curtis) is the sum over the distinct
count values ``v`` of ``(v - v_prev)`` times the pair counts of ``r >= v``; once few rows
reach the next level, the rest is summed directly.

With many genomes (at least :data:`GEMM_GENOMES`) the byte-pair histograms cost
``C x (G / 8)**2`` bincount entries, far more than a matrix product: the classes are unpacked
into dense 0/1 blocks and ``X.T @ (w * X)`` is taken in float32, a chunk of classes at a time
whose weights sum below ``2**24``, so that every partial sum is an integer float32 holds
exactly; chunks are summed in float64 (exact below ``2**53``).  A class of ``2**24`` k-mers or
more goes alone through a float64 product.

Memory: the pair histograms take at most :data:`_HIST_BYTES`; a product chunk about
:data:`_GEMM_BYTES`.
"""

from __future__ import annotations

import numpy as np

from kmerdb.analysis.classes import ClassTable, boundaries

__all__ = ["PairCounts", "GEMM_GENOMES", "add_min_sums", "pair_rows", "min_rows", "weighted_colsum"]

#: Pair histograms kept by a worker across its partitions, at most (else per layer).
_HIST_BYTES = 64 << 20
#: Classes per chunk of the pair counts (bounds their index temporaries).
_PAIR_CHUNK = 1 << 22
#: Below this many (rows x genomes x genomes), the rest of a min-sum is summed directly.
_DIRECT_CELLS = 1 << 25
#: Cells of one chunk of that direct sum.
_DIRECT_CHUNK = 1 << 21
#: From this many genomes on, pair counts are matrix products (see the module notes).
GEMM_GENOMES = 32
#: Bytes of the dense float32 blocks of one product chunk.
_GEMM_BYTES = 64 << 20
#: Genomes of a block of the symmetric product (blocks on and above the diagonal are taken;
#: large blocks: few calls, which threaded BLAS on a busy host needs).
_GEMM_BLOCK = 512
#: Largest summed weight of a float32 product chunk: every partial sum stays an exact integer.
_F32_EXACT = 1 << 24

# --------------------------------------------------------------------------------------
# pair counts
# --------------------------------------------------------------------------------------
class PairCounts:
    """``sum_c w[c] x[c, i] x[c, j]`` for genomes i in ``lo:hi`` and all j, from packed bits.

    Joint byte histograms are summed over everything added and turned into pair counts at
    :meth:`result`, when they fit in :data:`_HIST_BYTES`; else at every :meth:`add`.
    """

    def __init__(self, n_genomes: int, lo: int = 0, hi: int | None = None) -> None:
        self.g = n_genomes
        self.lo, self.hi = lo, n_genomes if hi is None else hi
        #: matrix products instead of byte-pair histograms
        self.gemm = n_genomes >= GEMM_GENOMES
        self.hists: dict[tuple[int, int], np.ndarray] = {}
        if self.gemm:
            self.square = self.lo == 0 and self.hi == n_genomes
            step = _GEMM_BLOCK
            self.blocks = [(b, min(n_genomes, b + step)) for b in range(0, n_genomes, step)]
            self.keep = True
            self.pairs: list[tuple[int, int]] = []
            self.out = np.zeros((self.hi - self.lo, n_genomes), dtype=np.float64)
            return
        self.nb = (n_genomes + 7) // 8
        self.a0, self.a1 = self.lo // 8, (self.hi + 7) // 8
        self.pairs = [(a, b) for a in range(self.a0, self.a1) for b in range(self.nb) if not (self.a0 <= b < a)]
        self.keep = len(self.pairs) * 65536 * 8 <= _HIST_BYTES
        self.hists = (
            {p: np.zeros(256 if p[0] == p[1] else 65536, dtype=np.float64) for p in self.pairs} if self.keep else {}
        )
        self.out = np.zeros((8 * (self.a1 - self.a0), 8 * self.nb), dtype=np.float64)

    def add(self, packed: np.ndarray, weights: np.ndarray) -> None:
        if not weights.size or self.g == 0:
            return
        if self.gemm:
            self._add_gemm(packed, weights)
            return
        wf = weights.astype(np.float64)
        for c0 in range(0, weights.size, _PAIR_CHUNK):
            cols = [np.ascontiguousarray(packed[c0 : c0 + _PAIR_CHUNK, j]) for j in range(self.nb)]
            w = wf[c0 : c0 + _PAIR_CHUNK]
            hists: dict[tuple[int, int], np.ndarray] = self.hists if self.keep else {}
            for a in range(self.a0, self.a1):
                high = cols[a].astype(np.intp) << 8
                for b in range(self.nb):
                    if self.a0 <= b < a:
                        continue
                    h: np.ndarray
                    if a == b:
                        h = np.bincount(cols[a], weights=w, minlength=256)
                    else:
                        h = np.bincount(high | cols[b], weights=w, minlength=65536)
                    if self.keep:
                        hists[(a, b)] += h
                    else:
                        hists[(a, b)] = h
            if not self.keep:
                self._fold(hists)

    def _add_gemm(self, packed: np.ndarray, weights: np.ndarray) -> None:
        """``out += X[:, lo:hi].T @ (w * X)`` over chunks of classes (exact, see the module notes)."""
        weights = np.asarray(weights, dtype=np.int64)
        rows = max(1, _GEMM_BYTES // (8 * self.g))
        cum = np.cumsum(weights)
        c0, n = 0, weights.size
        while c0 < n:
            before = int(cum[c0 - 1]) if c0 else 0
            c1 = min(n, c0 + rows, int(np.searchsorted(cum, before + _F32_EXACT - 1, side="right")))
            dtype: type = np.float32
            if c1 <= c0:  # one class of 2**24 k-mers or more: float64
                c1, dtype = c0 + 1, np.float64
            x: np.ndarray = np.unpackbits(packed[c0:c1], axis=1, count=self.g).astype(dtype)
            xw = x * weights[c0:c1, None].astype(dtype)
            if self.square:
                # symmetric: the blocks on and above the diagonal only (mirrored in result)
                for a0, a1 in self.blocks:
                    for b0, b1 in self.blocks:
                        if b0 >= a0:
                            self.out[a0:a1, b0:b1] += x[:, a0:a1].T @ xw[:, b0:b1]
            else:
                self.out += x[:, self.lo : self.hi].T @ xw
            c0 = c1

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
        if self.gemm:
            if self.square:
                upper = np.triu(self.out)
                self.out = upper + np.triu(upper, 1).T
            out = np.rint(self.out).astype(np.int64)
            self.out[:] = 0
            return out
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
    return s[boundaries(s)]


def add_min_sums(pc: PairCounts, out: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> None:
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



def pair_rows(table: ClassTable, lo: int, hi: int) -> np.ndarray:
    """Pair counts of genomes lo:hi against all, from a class table."""
    pc = PairCounts(table.n_genomes, lo, hi)
    step = _PAIR_CHUNK
    for c0 in range(0, table.n_classes, step):
        pc.add(table.presence_bytes(c0, c0 + step), table.weights[c0 : c0 + step])
    return pc.result()


def min_rows(table: ClassTable, lo: int, hi: int) -> np.ndarray:
    """Min-sums of genomes lo:hi against all, from a count class table."""
    pc = PairCounts(table.n_genomes, lo, hi)
    out = np.zeros((hi - lo, table.n_genomes), dtype=np.int64)
    add_min_sums(pc, out, table.rows(), table.weights)
    return out


def weighted_colsum(table: ClassTable) -> np.ndarray:
    """``sum_c w[c] * X[c, :]``: distinct k-mers (presence) or occurrences (counts) per genome."""
    out = np.zeros(table.n_genomes, dtype=np.int64)
    step = max(1, (32 << 20) // (8 * max(1, table.n_genomes)))
    for a in range(0, table.n_classes, step):
        out += (table.rows(a, a + step).astype(np.int64) * table.weights[a : a + step, None]).sum(axis=0)
    return out


