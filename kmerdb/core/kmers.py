"""k-mer arithmetic on whole numpy arrays.

Encoding: A=0 C=1 G=2 T=3, first base in the most significant bits of a uint64;
any other byte (N, IUPAC codes, gaps) is code 4 and breaks k-mers: no k-mer spans it.
Lowercase is accepted.  The canonical k-mer is the smaller of a k-mer and its reverse
complement.  A k-mer's minimizer is the canonical m-mer inside it with the smallest
hash; the hash is a bijection on uint64, so equal minimizer hashes mean equal
minimizers.  A k-mer and its reverse complement share the minimizer, hence the partition.

Nothing here loops in Python over bases or k-mers: windows are built by doubling
(about log2(k) shift-or passes), reverse complements by bit reversal or, for every
window of a sequence, by the same doubling on complemented codes; sliding minima by
doubling.  Long inputs are cut into cache-sized blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast, overload

import numpy as np
import numpy.typing as npt

from kmerdb.core import kernels
from kmerdb.errors import InvalidParameterError

__all__ = [
    "INVALID",
    "BLOCK",
    "SUPERKMER_CAP",
    "encode",
    "decode",
    "kmer_windows",
    "kmer_window_pairs",
    "valid_windows",
    "reverse_complement",
    "canonical",
    "mix64",
    "minimizer_hashes",
    "kmer_minimizer_hashes",
    "minimizer_anchors",
    "window_minimizers",
    "partition_of",
    "sequence_kmers",
    "sequence_anchors",
    "Scratch",
    "AnchoredKmers",
    "superkmers",
    "kmers_from_strings",
    "kmers_to_strings",
]

#: Code of a byte that is not A, C, G or T (either case).
INVALID = 4

#: Positions per block for the windowed passes: small enough to stay in cache.
BLOCK = 1 << 16

#: A super-k-mer holds at most this many k-mers (long runs that share a minimizer,
#: such as low-complexity repeats, are cut), so its k-mer count fits in a uint16.
SUPERKMER_CAP = 1024

_CODE = np.full(256, INVALID, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i
    _CODE[ord(chr(_b).lower())] = _i
_LETTERS = np.frombuffer(b"ACGT", dtype=np.uint8)
# codes to themselves (anything beyond a base to INVALID): the table of coded input
_CODED = np.full(256, INVALID, dtype=np.uint8)
_CODED[:4] = np.arange(4)

_U64 = np.uint64
_M1 = _U64(0xFF51AFD7ED558CCD)
_M2 = _U64(0xC4CEB9FE1A85EC53)
_S33 = _U64(33)


def encode(seq: str | bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Map a sequence to 2-bit codes (uint8); non-ACGT bytes become :data:`INVALID`."""
    if isinstance(seq, str):
        seq = seq.encode("ascii", "replace")
    raw = seq if isinstance(seq, np.ndarray) else np.frombuffer(seq, dtype=np.uint8)
    return _CODE[raw]


def _mask(k: int) -> np.uint64:
    return _U64((1 << (2 * k)) - 1)


class Scratch:
    """Named work arrays, reused from block to block of one call, or from call to call by an
    owner that keeps one (the query engine keeps one per thread).

    A fresh temporary per numpy step costs page faults whenever the allocator has given
    the memory back to the system (measured: half the time of the window passes of a
    query); a block loop that takes its temporaries from here allocates once.  An array
    returned by :meth:`get` stays valid until the next :meth:`get` of the same name.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        """Bytes of the work arrays held."""
        return sum(arr.nbytes for arr in self._arrays.values())

    def get(self, name: str, size: int, dtype: npt.DTypeLike = np.uint64) -> np.ndarray:
        """Work array ``name`` of ``size`` items of ``dtype`` (contents undefined)."""
        arr = self._arrays.get(name)
        if arr is None or arr.size < size or arr.dtype != dtype:
            arr = self._arrays[name] = np.empty(size, dtype=dtype)
        return arr[:size]


def _doubled(values: np.ndarray, span: int, reverse: bool = False, scratch: Scratch | None = None) -> np.ndarray:
    """Windows of ``span`` (a power of two) 2-bit values, L -> L-span+1, by doubling.

    A window of 2a values is two windows of a side by side: the first one shifted up
    (``reverse``: the second one, which builds reverse complements from complemented codes).
    The result is a fresh array, or (with ``scratch``) one of its work arrays.
    """
    cur, a, turn = values, 1, 0
    tag = "rc" if reverse else "fwd"
    while a < span:
        n = cur.size - a
        nxt = scratch.get(f"{tag}{turn}", n) if scratch is not None else np.empty(n, dtype=np.uint64)
        high, low = (cur[a:], cur[:n]) if reverse else (cur[:n], cur[a:])
        np.left_shift(high, _U64(2 * a), out=nxt)
        nxt |= low
        cur, a, turn = nxt, a * 2, turn ^ 1
    return cur


def _padded_values(codes: np.ndarray, k: int, scratch: Scratch | None = None) -> tuple[np.ndarray, int, int]:
    """Codes as uint64 (invalid ones as A), padded for windows of the power of two >= k."""
    span = 1 << (k - 1).bit_length()
    pad = span - k
    size = codes.size + pad
    values = scratch.get("values", size) if scratch is not None else np.empty(size, dtype=np.uint64)
    np.bitwise_and(codes, np.uint8(3), out=values[: codes.size], casting="unsafe")
    values[codes.size :] = 0
    return values, span, pad


def kmer_windows(codes: np.ndarray, k: int) -> np.ndarray:
    """Forward k-mer values of every window of ``codes`` (length L -> L-k+1).

    Invalid codes are treated as A here; combine with :func:`valid_windows`.
    Built by doubling windows of a power of two >= k (log2 of it shift-or passes), then
    shifting the extra bases out.
    """
    n = codes.size - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    values, span, pad = _padded_values(codes, k)
    fwd = _doubled(values, span)[:n]
    if pad:
        fwd >>= _U64(2 * pad)
    return fwd


def kmer_window_pairs(
    codes: np.ndarray, k: int, scratch: Scratch | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Forward k-mers and their reverse complements for every window of ``codes``.

    The reverse complements come from the complemented codes by the same doubling,
    read backwards: cheaper than reversing the bits of each forward k-mer.  With
    ``scratch`` the results are work arrays of it, valid until its next use.
    """
    n = codes.size - k + 1
    if n <= 0:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty.copy()
    values, span, pad = _padded_values(codes, k, scratch)
    fwd = _doubled(values, span, scratch=scratch)[:n]
    if pad:
        fwd >>= _U64(2 * pad)
    if span == 1:
        values = values.copy()  # fwd is ``values`` itself
    values ^= _U64(3)
    rc = _doubled(values, span, reverse=True, scratch=scratch)[:n]
    if pad:  # the top 2*pad bits hold the complements of the padding
        rc &= _mask(k)
    return fwd, rc


def valid_windows(codes: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask over the L-k+1 windows: True where the window holds only ACGT."""
    n = codes.size - k + 1
    if n <= 0:
        return np.zeros(0, dtype=bool)
    bad = np.zeros(codes.size + 1, dtype=np.int32)
    np.cumsum(codes == INVALID, out=bad[1:])
    return bad[k:] == bad[:n]


def reverse_complement(kmers: np.ndarray, k: int) -> np.ndarray:
    """Reverse complements of 2-bit k-mer codes, by complement and 2-bit group reversal."""
    x = np.bitwise_xor(kmers, _mask(k), dtype=np.uint64)
    x = ((x >> _U64(2)) & _U64(0x3333333333333333)) | ((x & _U64(0x3333333333333333)) << _U64(2))
    x = ((x >> _U64(4)) & _U64(0x0F0F0F0F0F0F0F0F)) | ((x & _U64(0x0F0F0F0F0F0F0F0F)) << _U64(4))
    x = x.byteswap()
    return x >> _U64(64 - 2 * k)


def canonical(kmers: np.ndarray, k: int) -> np.ndarray:
    """Canonical form (min of k-mer and reverse complement) of 2-bit k-mer codes."""
    return np.minimum(kmers, reverse_complement(kmers, k))


def mix64(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """A bijective 64-bit mixer (murmur3's fmix64 after xoring a seed)."""
    h = np.bitwise_xor(x, _U64(seed & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    return _fmix64(h, np.empty_like(h))


def _fmix64(h: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """murmur3's fmix64 of ``h`` in place (``tmp``: a work array of the same size)."""
    for mult in (_M1, _M2, None):
        np.right_shift(h, _S33, out=tmp)
        h ^= tmp
        if mult is not None:
            h *= mult
    return h


# Minimizer order is the mixer applied to the canonical m-mer with this seed.
_MINIMIZER_SEED = kernels.MINIMIZER_SEED


def _sliding_min(values: np.ndarray, w: int, scratch: Scratch | None = None) -> np.ndarray:
    """Minimum of every run of ``w`` consecutive values (L -> L-w+1).

    By doubling: after j passes ``cur[i]`` is the minimum of ``2**j`` values from i; a window
    of w is then two overlapping spans.  log2(w) + 1 contiguous passes, no transposes.
    """
    n = values.size - w + 1
    cur, span, turn = values, 1, 0
    while span * 2 <= w:
        size = cur.size - span
        nxt = scratch.get(f"min{turn}", size) if scratch is not None else np.empty(size, dtype=values.dtype)
        np.minimum(cur[:-span], cur[span:], out=nxt)
        cur, span, turn = nxt, span * 2, turn ^ 1
    out = scratch.get(f"min{turn}", n) if scratch is not None else np.empty(n, dtype=values.dtype)
    return np.minimum(cur[:n], cur[w - span : w - span + n], out=out)


def minimizer_hashes(codes: np.ndarray, k: int, m: int) -> np.ndarray:
    """Hash of the canonical minimizer of every k-mer window of ``codes`` (L -> L-k+1).

    Windows that are not valid k-mers get meaningless values; mask them with
    :func:`valid_windows`.
    """
    mmers = kmer_windows(codes, m)
    hashes = mix64(canonical(mmers, m), _MINIMIZER_SEED)
    return _sliding_min(hashes, k - m + 1)


def kmer_minimizer_hashes(kmers: np.ndarray, k: int, m: int) -> np.ndarray:
    """Minimizer hashes of standalone k-mers (uint64 codes); equals :func:`minimizer_hashes`."""
    return minimizer_anchors(kmers, k, m)[0]


def partition_of(min_hashes: np.ndarray, n_partitions: int, dtype: npt.DTypeLike = np.int64) -> np.ndarray:
    """Partition of each k-mer from its minimizer hash (``hash % n_partitions``)."""
    if n_partitions & (n_partitions - 1) == 0:
        # a power of two: the same value by a mask, ~10x faster than a uint64 modulo
        return (min_hashes & _U64(n_partitions - 1)).astype(dtype)
    return (min_hashes % _U64(n_partitions)).astype(dtype)


_LOW32 = _U64(0xFFFFFFFF)
_HIGH32 = _U64(0xFFFFFFFF00000000)


def window_minimizers(
    codes: np.ndarray, k: int, m: int, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The minimizer of the k-mer windows of ``codes`` (all ACGT) that begin at ``starts``
    (ascending), block by block.

    Returns
    -------
    hashes : ndarray of uint64
        The minimizer hash of each window wherever ``alone``; elsewhere the hash of the m-mer
        at ``places``, which may not be the smallest.
    places : ndarray of int64
        Where its minimizer starts: the leftmost m-mer of the smallest top 32 bits of hash
        (the minimizer itself wherever ``alone``).
    alone : ndarray of bool
        Whether that m-mer alone holds the smallest top half in the window and has an
        orientation (is not its own reverse complement): then it is the window's one
        minimizer.  Elsewhere the window holds its minimizer twice (or shares the top half
        of its hash, about w**2 / 2**33 of the windows).
    forward : ndarray of bool
        Whether the m-mer at ``places`` reads as its canonical form.

    Two sliding minima of the top halves of the hashes, with the index (or its complement)
    in the low halves, give the leftmost and the rightmost place; they agree where alone.
    """
    n = max(codes.size - k + 1, 0)
    w = k - m + 1
    starts = np.asarray(starts, dtype=np.int64)
    hashes = np.empty(starts.size, dtype=np.uint64)
    places = np.empty(starts.size, dtype=np.int64)
    alone = np.empty(starts.size, dtype=bool)
    forward = np.empty(starts.size, dtype=bool)
    scratch = Scratch()
    cuts = np.searchsorted(starts, np.arange(0, n + BLOCK, BLOCK))
    for b, start in enumerate(range(0, n, BLOCK)):
        lo, hi = int(cuts[b]), int(cuts[b + 1])
        if lo == hi:
            continue
        stop = min(start + BLOCK, n)
        fw, rc = kmer_window_pairs(codes[start : stop + k - 1], m, scratch)
        mm = np.minimum(fw, rc, out=scratch.get("mm", fw.size))
        mm ^= _U64(_MINIMIZER_SEED)
        _fmix64(mm, scratch.get("mix", mm.size))
        index = np.arange(mm.size, dtype=np.uint64)
        packed = np.bitwise_and(mm, _HIGH32, out=scratch.get("packed", mm.size))
        packed |= index
        at = starts[lo:hi] - start
        left = (_sliding_min(packed, w, scratch).take(at) & _LOW32).view(np.int64)
        np.bitwise_and(mm, _HIGH32, out=packed)
        index ^= _LOW32  # the complement of the index: the rightmost place wins
        packed |= index
        right = _LOW32 - (_sliding_min(packed, w, scratch).take(at) & _LOW32)
        np.take(mm, left, out=hashes[lo:hi])
        np.equal(left, right.view(np.int64), out=alone[lo:hi])
        fl, rl = fw.take(left), rc.take(left)
        np.less_equal(fl, rl, out=forward[lo:hi])
        if m % 2 == 0:  # an m-mer of odd length is never its own reverse complement
            alone[lo:hi] &= fl != rl
        np.add(left, start, out=places[lo:hi])
    return hashes, places, alone, forward


def minimizer_anchors(kmers: np.ndarray, k: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimizer hash and anchor of canonical k-mers (uint64 codes).

    The anchor of a canonical k-mer is ``2 * p + b`` (uint8): p is the offset of its
    minimizer inside it (the leftmost m-mer of the smallest hash), b is 1 when the m-mer at
    p reads as its canonical form.  With the minimizer's place in a unitig, it says where
    the k-mer starts there (:mod:`kmerdb.core.dictionary`).  The hashes equal
    :func:`kmer_minimizer_hashes`.
    """
    kmers = np.ascontiguousarray(kmers, dtype=np.uint64)
    hashes = np.empty(kmers.size, dtype=np.uint64)
    anchors = np.empty(kmers.size, dtype=np.uint8)
    # one compiled pass (kernels.kmer_anchors): 284 -> 27 ns per k-mer at k = 31, m = 13, against
    # a numpy pass per offset; `verify` of 1,000 genomes 7.9 -> 4.1 s
    kernels.kmer_anchors(kmers.ravel(), k, m, hashes, anchors)
    return hashes, anchors


@dataclass(frozen=True)
class AnchoredKmers:
    """The canonical k-mers of a coded sequence with what a minimizer dictionary looks them
    up by (:func:`sequence_anchors`).

    Attributes
    ----------
    positions : ndarray of int64
        Start of every valid k-mer.
    kmers : ndarray of uint64
        Its canonical code.
    others : ndarray of uint64
        The reverse complement of the canonical code.
    hashes : ndarray of uint64
        Its minimizer hash.
    anchors : ndarray of uint8
        Its anchor, as :func:`minimizer_anchors` defines it.
    """

    positions: np.ndarray
    kmers: np.ndarray
    others: np.ndarray
    hashes: np.ndarray
    anchors: np.ndarray


@overload
def sequence_kmers(codes: np.ndarray, k: int, m: None = None) -> tuple[np.ndarray, np.ndarray, None]: ...
@overload
def sequence_kmers(codes: np.ndarray, k: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def sequence_kmers(
    codes: np.ndarray, k: int, m: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Canonical k-mers of a coded sequence, block by block.

    Returns
    -------
    positions : ndarray of int64
        Start of every valid k-mer.
    kmers : ndarray of uint64
        Its canonical code.
    min_hashes : ndarray of uint64 or None
        Its minimizer hash (when ``m`` is given).
    """
    return _sequence_kmers(codes, k, m)


def sequence_anchors(
    codes: np.ndarray | bytes | memoryview, k: int, m: int, scratch: Scratch | None = None, coded: bool = True
) -> AnchoredKmers:
    """Canonical k-mers of a coded sequence with their reverse complements, minimizer
    hashes and anchors (:func:`minimizer_anchors`), in one compiled pass
    (:func:`kmerdb.core.kernels.anchored_kmers`).  With ``coded`` False, ``codes`` are the
    sequence's letters (bytes, as :func:`encode` takes them), coded in the same pass.  With
    ``scratch`` the arrays are its ``anchored.*`` work arrays (valid until its next call
    with the same scratch)."""
    if coded:
        codes, table = np.ascontiguousarray(codes, dtype=np.uint8), _CODED
    else:
        codes, table = np.frombuffer(codes, dtype=np.uint8), _CODE
    n = max(codes.size - k + 1, 0)
    space = scratch if scratch is not None else Scratch()
    positions = space.get("anchored.positions", n, np.int64)
    kmers = space.get("anchored.kmers", n, np.uint64)
    others = space.get("anchored.others", n, np.uint64)
    hashes = space.get("anchored.hashes", n, np.uint64)
    anchors = space.get("anchored.anchors", n, np.uint8)
    w = k - m + 1
    ring, facing = np.empty(w, dtype=np.uint64), np.empty(w, dtype=np.uint8)
    kept = kernels.anchored_kmers(codes, table, k, m, ring, facing, positions, kmers, others, hashes, anchors) if n else 0
    return AnchoredKmers(positions[:kept], kmers[:kept], others[:kept], hashes[:kept], anchors[:kept])


def _sequence_kmers(
    codes: np.ndarray, k: int, m: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """positions, canonical k-mers and minimizer hashes (with ``m``) of the valid k-mers of a
    coded sequence."""
    n = max(codes.size - k + 1, 0)
    # written block by block into arrays sized for every window, then cut to the valid ones
    positions = np.empty(n, dtype=np.int64)
    kmers = np.empty(n, dtype=np.uint64)
    hashes = np.empty(n, dtype=np.uint64) if m is not None else None
    scratch = Scratch()
    kept = 0
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        chunk = codes[start : stop + k - 1]
        idx = np.flatnonzero(valid_windows(chunk, k))
        end = kept + idx.size
        np.add(idx, start, out=positions[kept:end])
        fwd, rc = kmer_window_pairs(chunk, k, scratch)
        fwd_valid = np.take(fwd, idx, out=scratch.get("fwd_valid", idx.size))
        rc_valid = np.take(rc, idx, out=scratch.get("rc_valid", idx.size))
        np.minimum(fwd_valid, rc_valid, out=kmers[kept:end])
        if m is not None and hashes is not None:  # hashes exists exactly when m is given
            # The m-mer at a k-mer's start is its top 2m bits, and that m-mer's reverse
            # complement is the bottom 2m bits of the k-mer's reverse complement: no second
            # window pass.  Only the last k-m m-mers of the chunk need one, on k-1 bases.
            nw = stop - start
            mm = scratch.get("mmers", nw + k - m)
            low = scratch.get("low", nw + k - m)
            np.right_shift(fwd, _U64(2 * (k - m)), out=mm[:nw])
            np.bitwise_and(rc, _mask(m), out=low[:nw])
            tail = kmer_windows(chunk[nw:], m)
            mm[nw:] = tail
            low[nw:] = reverse_complement(tail, m)
            np.minimum(mm, low, out=mm)
            mm ^= _U64(_MINIMIZER_SEED)
            _fmix64(mm, scratch.get("mix", mm.size))
            np.take(_sliding_min(mm, k - m + 1, scratch), idx, out=hashes[kept:end])
        kept = end
    return positions[:kept], kmers[:kept], hashes[:kept] if hashes is not None else None


def superkmers(codes: np.ndarray, k: int, m: int, n_partitions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a coded sequence into super-k-mers: maximal runs of consecutive valid
    k-mers sharing one minimizer (cut at :data:`SUPERKMER_CAP` k-mers).

    Returns
    -------
    starts : ndarray of int64
        Position of each super-k-mer's first base in ``codes``.
    n_kmers : ndarray of int64
        Number of k-mers in it (its length is ``n_kmers + k - 1`` bases).
    partitions : ndarray of int64
        Its partition.
    """
    start_parts, len_parts, part_parts = [], [], []
    n = codes.size - k + 1
    for start in range(0, max(n, 0), BLOCK):
        stop = min(start + BLOCK, n)
        chunk = codes[start : stop + k - 1]
        valid = valid_windows(chunk, k)
        if not valid.any():
            continue
        hashes = minimizer_hashes(chunk, k, m)
        boundary = np.empty(valid.size, dtype=bool)
        boundary[0] = True
        np.not_equal(hashes[1:], hashes[:-1], out=boundary[1:])
        boundary[1:] |= ~valid[:-1]
        boundary &= valid
        firsts = np.flatnonzero(boundary)
        # a run ends at the next boundary or at the first invalid window after it
        ends = np.flatnonzero(valid[:-1] & ~valid[1:]) + 1
        if valid[-1]:
            ends = np.append(ends, valid.size)
        run_end = ends[np.searchsorted(ends, firsts, side="right")]
        next_first = np.append(firsts[1:], valid.size)
        lengths = np.minimum(run_end, next_first) - firsts
        if lengths.max() > SUPERKMER_CAP:
            firsts, lengths = _cut_runs(firsts, lengths)
        start_parts.append(firsts + start)
        len_parts.append(lengths)
        part_parts.append(partition_of(hashes[firsts], n_partitions))
    if not start_parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    return np.concatenate(start_parts), np.concatenate(len_parts), np.concatenate(part_parts)


def _cut_runs(firsts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut runs longer than the cap into pieces of at most SUPERKMER_CAP k-mers."""
    pieces = -(-lengths // SUPERKMER_CAP)
    owner = np.repeat(np.arange(firsts.size), pieces)
    piece_no = np.arange(owner.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    new_firsts = firsts[owner] + piece_no * SUPERKMER_CAP
    new_lengths = np.minimum(lengths[owner] - piece_no * SUPERKMER_CAP, SUPERKMER_CAP)
    return new_firsts, new_lengths


def kmers_from_strings(kmers: Iterable[str | bytes], k: int) -> np.ndarray:
    """Encode k-mer strings to canonical uint64 codes.

    Raises
    ------
    kmerdb.errors.InvalidParameterError
        If a string is not of length ``k`` or holds a base other than ACGT.
    """
    items = kmers if isinstance(kmers, list) else list(kmers)
    if not items:
        return np.zeros(0, dtype=np.uint64)
    kinds = set(map(type, items))
    # all str or all bytes: joined in one call (a str encodes one byte per character, "?" for
    # any other than ASCII, so lengths hold); else item by item
    if kinds == {str}:
        joined = "".join(cast(list[str], items)).encode("ascii", "replace")
    elif kinds == {bytes}:
        joined = b"".join(cast(list[bytes], items))
    else:
        items = [s.encode("ascii", "replace") if isinstance(s, str) else bytes(s) for s in items]
        joined = b"".join(cast(list[bytes], items))
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    if len(joined) != k * len(items) or (lengths != k).any():
        bad = items[int(np.argmax(lengths != k))]
        shown = bad.decode("ascii", "replace") if isinstance(bad, bytes) else bad
        raise InvalidParameterError("kmers", shown, f"length is not k={k}")
    codes = encode(joined).reshape(len(items), k)
    bad_base = (codes == INVALID).any(axis=1)
    if bad_base.any():
        bad = items[int(np.argmax(bad_base))]
        shown = bad.decode("ascii", "replace") if isinstance(bad, bytes) else bad
        raise InvalidParameterError("kmers", shown, "holds a base other than A, C, G, T")
    # four bases to a byte, eight bytes to a big-endian word (16 ns per k-mer against 66 for a
    # shift per base and an or-reduction)
    padded = np.zeros((len(items), 32), dtype=np.uint8)
    padded[:, 32 - k :] = codes
    quads = (padded[:, 0::4] << 6) | (padded[:, 1::4] << 4) | (padded[:, 2::4] << 2) | padded[:, 3::4]
    values = quads.view(">u8").ravel().astype(np.uint64)
    return canonical(values, k)


# letters of the 4 bases packed in each byte value, most significant first
_BYTE_LETTERS = _LETTERS[(np.arange(256)[:, None] >> np.array([6, 4, 2, 0])) & 3].astype(np.uint8)


def kmers_to_strings(kmers: np.ndarray, k: int) -> np.ndarray:
    """Decode uint64 codes to an (n, k) uint8 array of ASCII letters.

    Each byte of a code holds 4 bases: one table lookup per byte instead of k shifts.
    """
    big_endian = np.asarray(kmers, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)
    return _BYTE_LETTERS[big_endian].reshape(-1, 32)[:, 32 - k :]


def decode(kmers: np.ndarray, k: int) -> list[str]:
    """Decode uint64 codes to a list of k-mer strings."""
    letters = kmers_to_strings(kmers, k)
    return [bytes(row).decode("ascii") for row in letters] if letters.size else [""] * len(kmers)
