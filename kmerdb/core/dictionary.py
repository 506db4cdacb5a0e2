"""The minimizer dictionary: exact membership and unitig order of a layer's k-mers.

A layer keeps its k-mers once, as unitigs (:mod:`kmerdb.core.unitigs`).  The dictionary
finds a key among them through its minimizer, the way SSHash does, instead of hashing
every k-mer to a slot and checking per-slot evidence:

- each k-mer of the layer contains its minimizer (the canonical m-mer of smallest hash,
  see :mod:`kmerdb.core.kmers`) at one place of the unitig sequence, its *anchor*;
  consecutive k-mers of a unitig share it, so there are about as many anchors as unitigs
  (one per 10 k-mers at k = 31, m = 13; one per 9 at m = 15);
- a minimal perfect hash function over the minimizer hashes of the layer maps a key's
  minimizer to its *bucket*: the anchors of that minimizer (nearly always one);
- a key's own anchor (the offset p of the minimizer inside it and its orientation there,
  :func:`~kmerdb.core.kmers.minimizer_anchors`) and an anchor of its bucket give the one
  place where the key can start in the unitigs; the k bases there are decoded and
  compared with the key, so the answer is exact (no false positives, no misses).

A found key's answer is its *unitig order*: the rank of its k-mer in the unitig sequence,
which is the row of the layer's column groups.

A minimizer that occurs in many unitigs (a core region of many related genomes, where every
variant nearby makes a branch of the graph) has a bucket of many anchors.  Buckets of up to
:data:`MAX_BUCKET` anchors are scanned; the k-mers of larger ones are looked up in the *skew
index*, as SSHash does: a minimal perfect hash function over those k-mers and, per k-mer, which
anchor of its bucket holds it (a few bits).  Where the skew index holds a large share of the
k-mers (version 2), that function is a :class:`~kmerdb.core.pilots.PilotMPHF`: one probe per
key.  Two kinds of k-mer do not go through buckets and are kept, with their unitig order,
behind an MPHF of their own (the *overflow*): k-mers whose minimizer occurs twice inside them
(they have no single anchor), and k-mers of buckets of more than :data:`MAX_SKEW` anchors
(low-complexity minimizers).

Anchor values are ``2 * a + o``: ``a`` is the minimizer's first base as a unitig order
(its base minus ``u * (k - 1)`` for its unitig u, so that ``a - offset`` is the order of
the k-mer that starts ``offset`` bases before it), ``o`` is 1 when the minimizer reads as
its canonical form there.

Serialized layout: one 1-D little-endian uint64 array (one ``.npy`` file)::

    word  field
    0     MAGIC ("kmerDICT" as little-endian bytes)
    1     VERSION
    2     n, the layer's k-mers
    3     k
    4     m
    5     B, buckets (distinct minimizers with anchors)
    6     anchor width, bits
    7     M, buckets of more than one anchor
    8     E, anchors beyond the first of such buckets
    9     width of the extra-anchor starts, bits
    10    L, the most anchors of a bucket that is scanned (larger ones use the skew index)
    11    S, k-mers in the skew index
    12    width of a skew entry (an anchor's index in its bucket), bits
    13    F, overflow k-mers
    14    width of an overflow k-mer's unitig order, bits
    15    start of the buckets' MPHF (words), 16 its length
    17    start of the first anchors: B fields in bucket order
    18    start of the flags of buckets of more than one anchor: B bits
    19    start of the extra-anchor starts: M + 1 fields
    20    start of the extra anchors: E fields
    21    start of the skew MPHF (an MPHF or, version 2, a pilot MPHF: its magic says), 22 its length
    23    start of the skew entries: S fields in skew-slot order
    24    start of the overflow MPHF, 25 its length
    26    start of the overflow unitig orders: F fields in overflow-slot order
    27    total length, in words
"""

from __future__ import annotations

import numpy as np

from kmerdb.core import bits, kernels
from kmerdb.core.colours import segment_positions
from kmerdb.core.kmers import (
    Scratch,
    canonical,
    minimizer_anchors,
    reverse_complement,
    window_minimizers,
)
from kmerdb.core.mphf import MPHF, HashFunction
from kmerdb.core.pilots import MAGIC as PILOT_MAGIC
from kmerdb.core.pilots import PilotMPHF
from kmerdb.core.unitigs import UnitigSet
from kmerdb.errors import CorruptDatabaseError, InvalidParameterError

__all__ = ["MinimizerDictionary", "build_dictionary", "MAX_BUCKET", "MAX_SKEW", "MAGIC", "VERSION"]

MAGIC = int.from_bytes(b"kmerDICT", "little")
# Version 2's skew index may hash by pilots (PilotMPHF, one probe); version 1's hashes by levels
# (MPHF), still read.
VERSION = 2
VERSIONS = (1, 2)
HEADER_WORDS = 28
#: A bucket of more anchors than this finds its k-mers' anchors through the skew index.
MAX_BUCKET = 8
#: A minimizer with more anchors than this sends its k-mers to the overflow.
MAX_SKEW = 1024
# The largest scan limit a header may give (any bucket of more anchors is a skew bucket).
_MAX_SCAN_LIMIT = 1 << 32
# Overflow orders checked at a time when a dictionary is opened.
_CHECK_BLOCK = 1 << 20
# Keys of skewed buckets have their skew slots looked up ahead, in batches of this many, where
# at least 1 / _SKEW_AHEAD of the k-mers lie in skewed buckets.  At 1,000 related genomes
# (56% of k-mers skewed) batches cut a find from 77 to 62 ns per key; with 0.6% skewed (three
# genomes) the extra pass over the keys cost more than it saved.
_SKEW_BATCH = 1024
_SKEW_AHEAD = 8
# A skew index of at least 1 / _PILOT_SHARE of the k-mers is hashed by pilots (version 2): one
# probe per key where most keys go through it (1,000 related genomes' finds: 32.1 -> 30.3 ns per
# k-mer).  A smaller one keeps the MPHF of levels, eight times faster to build, whose lookups are
# rare (three genomes: 0.6% of the k-mers), and a build loads no pilot kernel (0.1 s a process).
_PILOT_SHARE = 8

_U64 = np.uint64


def _section(words: list[np.ndarray], array: np.ndarray) -> tuple[int, int]:
    """Append ``array`` to the sections and return its (start, length) in words."""
    start = HEADER_WORDS + sum(w.size for w in words)
    words.append(np.asarray(array, dtype=np.uint64))
    return start, int(array.size)


def _firsts(values: np.ndarray) -> np.ndarray:
    """Index of the first of each run of equal values."""
    if not values.size:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.append(True, values[1:] != values[:-1]))


def _anchor_places(unitigs: UnitigSet, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimizer hash, anchor value and "no single anchor" flag of every k-mer of ``unitigs``,
    in unitig order."""
    k, n = unitigs.k, unitigs.n
    starts = unitigs.positions()
    hashes, q, alone, forward = window_minimizers(unitigs.codes(), k, m, starts)
    # the k-mer of order r starts at base r + u (k - 1): the same shift maps the minimizer
    a = q - (starts - np.arange(n, dtype=np.int64))
    values = (a.astype(np.uint64) << _U64(1)) | forward.astype(np.uint64)
    return hashes, values, ~alone


def build_dictionary(
    unitig_array: np.ndarray, m: int, max_bucket: int = MAX_BUCKET, max_skew: int = MAX_SKEW, version: int | None = None
) -> np.ndarray:
    """The dictionary array of a layer's unitigs (a serialized :class:`UnitigSet`).

    Parameters
    ----------
    unitig_array : ndarray of uint64
        The layer's unitigs, as :func:`~kmerdb.core.unitigs.build_unitigs` writes them.
    m : int
        Minimizer length (the index configuration's).
    max_bucket : int
        Most anchors of a bucket that lookups scan; the k-mers of larger buckets go to the skew
        index.
    max_skew : int
        Most anchors a minimizer keeps; the k-mers of a minimizer with more go to the overflow.
    version : int, optional
        The format written (default :data:`VERSION`): 2, or 1 (a skew index always hashed by
        levels, :class:`MPHF`) for readers of version 1.
    """
    version = VERSION if version is None else version
    if version not in VERSIONS:
        raise InvalidParameterError("version", version, f"must be one of {VERSIONS}")
    unitigs = UnitigSet(unitig_array)
    k, n = unitigs.k, unitigs.n
    words: list[np.ndarray] = []
    anchor_width = bits.width_for(2 * (n + k))
    if n:
        hashes, values, over = _anchor_places(unitigs, m)
        # neighbours in a unitig share their anchor: one candidate per run, then distinct pairs
        head = np.empty(n, dtype=bool)
        head[0] = True
        np.not_equal(hashes[1:], hashes[:-1], out=head[1:])
        head[1:] |= values[1:] != values[:-1]
        head[1:] |= over[:-1]  # a run resumes after a k-mer of the overflow
        head &= ~over
        hk, vk = hashes[head], values[head]
        order = np.lexsort((vk, hk))
        hk, vk = hk.take(order), vk.take(order)
        distinct = np.ones(hk.size, dtype=bool)
        distinct[1:] = (hk[1:] != hk[:-1]) | (vk[1:] != vk[:-1])
        hk, vk = hk[distinct], vk[distinct]
        first = _firsts(hk)
        sizes = np.diff(np.append(first, hk.size))
        huge = hk.take(first[sizes > max_skew])
        if huge.size:  # sorted, and few: a search beats a set test of every k-mer
            over |= _member(huge, hashes)
            light = np.repeat(sizes <= max_skew, sizes)
            hk, vk = hk[light], vk[light]
            first = _firsts(hk)
            sizes = np.diff(np.append(first, hk.size))
        keys = hk.take(first)
    else:
        keys = np.zeros(0, dtype=np.uint64)
        over = np.zeros(0, dtype=bool)
        hashes = values = hk = vk = first = sizes = np.zeros(0, dtype=np.uint64)
    mphf, slot = MPHF.build_with_slots(keys)
    n_buckets = keys.size
    firsts = np.zeros(n_buckets, dtype=np.uint64)
    multi = np.zeros(n_buckets, dtype=bool)
    extra_starts = np.zeros(1, dtype=np.uint64)
    extras = np.zeros(0, dtype=np.uint64)
    if n_buckets:
        firsts[slot] = vk.take(first)
        multi[slot] = sizes > 1
        # the extra anchors of multi-anchor buckets, bucket by bucket in slot order
        by_slot = np.empty(n_buckets, dtype=np.int64)
        by_slot[slot] = np.arange(n_buckets)
        many = by_slot[multi]
        counts = sizes.take(many) - 1
        extra_starts = np.zeros(many.size + 1, dtype=np.uint64)
        np.cumsum(counts, out=extra_starts[1:])
        # anchors 1 .. size-1 of each such bucket, in order
        extras = vk.take(segment_positions(first.take(many) + 1, counts))
    n_extra = extras.size
    extra_width = bits.width_for(n_extra)
    skew_mphf, skew_entries, skew_width = _skew_index(
        unitigs, hashes, values, over, keys, vk, first, sizes, max_bucket, version >= 2
    )
    overflow = np.flatnonzero(over)
    over_mphf, ordinals = _keyed(unitigs, overflow)
    order_width = bits.width_for(max(n - 1, 0))
    mphf_at = _section(words, mphf.to_array())
    anchors_at = _section(words, bits.pack(firsts, anchor_width))
    flags_at = _section(words, bits.pack_flags(multi))
    starts_at = _section(words, bits.pack(extra_starts, extra_width))
    extras_at = _section(words, bits.pack(extras, anchor_width))
    skew_at = _section(words, skew_mphf.to_array())
    entries_at = _section(words, bits.pack(skew_entries, skew_width))
    over_at = _section(words, over_mphf.to_array())
    orders_at = _section(words, bits.pack(ordinals, order_width))
    total = HEADER_WORDS + sum(w.size for w in words)
    header = [
        MAGIC, version, n, k, m, n_buckets, anchor_width, int(multi.sum()), n_extra, extra_width,
        max_bucket, int(skew_entries.size), skew_width, int(overflow.size), order_width,
        mphf_at[0], mphf_at[1], anchors_at[0], flags_at[0], starts_at[0], extras_at[0],
        skew_at[0], skew_at[1], entries_at[0], over_at[0], over_at[1], orders_at[0], total,
    ]
    out = np.empty(total, dtype="<u8")
    out[:HEADER_WORDS] = header
    out[HEADER_WORDS:] = np.concatenate(words) if words else []
    return out


def _member(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in the (non-empty, sorted) ``sorted_values``."""
    at = np.minimum(np.searchsorted(sorted_values, values), sorted_values.size - 1)
    return sorted_values.take(at) == values


def _keyed(
    unitigs: UnitigSet, ordinals: np.ndarray, kind: type[MPHF] | type[PilotMPHF] = MPHF
) -> tuple[HashFunction, np.ndarray]:
    """A minimal perfect hash function (of ``kind``) over the canonical k-mers of unitig orders
    ``ordinals`` and, by its slot, their index in ``ordinals``."""
    if not ordinals.size:
        return kind.build(np.zeros(0, dtype=np.uint64)), np.zeros(0, dtype=np.uint64)
    keys = canonical(unitigs.kmer_at(unitigs.base_of(ordinals)), unitigs.k)
    mphf, slots = kind.build_with_slots(keys)
    out = np.empty(ordinals.size, dtype=np.uint64)
    out[slots] = ordinals
    return mphf, out


def _skew_index(
    unitigs: UnitigSet,
    hashes: np.ndarray,
    values: np.ndarray,
    over: np.ndarray,
    keys: np.ndarray,
    vk: np.ndarray,
    first: np.ndarray,
    sizes: np.ndarray,
    max_bucket: int,
    pilots: bool,
) -> tuple[HashFunction, np.ndarray, int]:
    """The skew index: a minimal perfect hash function over the k-mers of buckets of more than
    ``max_bucket`` anchors and, by its slot, the index of each one's anchor in its bucket
    (buckets: sorted ``keys``, their anchors ``vk[first[b]:first[b] + sizes[b]]``, sorted).  With
    ``pilots``, a :class:`PilotMPHF` where the index holds a large share of the k-mers."""
    large = keys.take(np.flatnonzero(sizes > max_bucket))
    if not large.size:
        return MPHF.build(np.zeros(0, dtype=np.uint64)), np.zeros(0, dtype=np.uint64), 1
    member = np.flatnonzero(_member(large, hashes) & ~over)  # unitig orders of their k-mers
    kind: type[MPHF] | type[PilotMPHF] = PilotMPHF if pilots and member.size * _PILOT_SHARE >= unitigs.n else MPHF
    h, v = hashes.take(member), values.take(member)
    # neighbours in a unitig share their anchor: one search per run of them
    run = np.empty(member.size, dtype=bool)
    run[0] = True
    run[1:] = (member[1:] != member[:-1] + 1) | (h[1:] != h[:-1]) | (v[1:] != v[:-1])
    heads = np.flatnonzero(run)
    b = np.searchsorted(keys, h.take(heads))
    v = v.take(heads)
    # a binary search of each run's anchor among its bucket's (sorted) anchors
    lo = first.take(b).astype(np.int64)
    hi = lo + sizes.take(b).astype(np.int64)
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) >> 1
        mid_v = vk.take(np.minimum(mid, vk.size - 1))
        right = open_ & (mid_v < v)
        left = open_ & ~right
        lo = np.where(right, mid + 1, lo)
        hi = np.where(left, mid, hi)
    index = np.repeat((lo - first.take(b)).astype(np.uint64), np.diff(np.append(heads, member.size)))
    mphf, ordinals = _keyed(unitigs, member, kind)
    # ordinals[slot] is the unitig order of the slot's k-mer: its entry is that k-mer's index
    entry_of = np.empty(unitigs.n, dtype=np.uint64)
    entry_of[member] = index
    return mphf, entry_of.take(ordinals.astype(np.int64)), bits.width_for(int(sizes.max()) - 1)


class MinimizerDictionary:
    """A layer's dictionary, read from its array (memory-mapped) beside its unitigs.

    Parameters
    ----------
    array : ndarray of uint64
        What :func:`build_dictionary` wrote.
    unitigs : UnitigSet
        The layer's unitigs, which the dictionary points into.
    source : str
        Names the file in errors.

    Raises
    ------
    CorruptDatabaseError
        The header is not a dictionary's, disagrees with the unitigs, or sizes sections that
        do not fit the array; the extra-anchor starts or overflow orders are out of range.
    """

    def __init__(self, array: np.ndarray, unitigs: UnitigSet, source: str = "<dictionary>") -> None:
        arr, head = bits.read_header(array, HEADER_WORDS, MAGIC, VERSIONS, source, "a k-mer dictionary")
        self.source = source
        self.unitigs = unitigs
        self._array = arr
        (
            _, self.version, self.n, self.k, self.m, self.n_buckets, self._aw, self.n_multi, self.n_extra, self._ew,
            self.scan_limit, self.n_skew, self._sw, self.n_overflow, self._ow, mphf_at, mphf_len, anchors_at,
            flags_at, starts_at, extras_at, skew_at, skew_len, entries_at, over_at, over_len, orders_at, total,
        ) = head
        if total != arr.size:
            raise CorruptDatabaseError(source, f"a k-mer dictionary of {total} words in an array of {arr.size}")
        if self.n != unitigs.n or self.k != unitigs.k:
            raise CorruptDatabaseError(source, "the dictionary does not describe the layer's unitigs")
        if (
            not 1 <= self.m <= self.k or self.n_multi > self.n_buckets or self.n_overflow > self.n
            or self.n_skew > self.n or not 1 <= self.scan_limit <= _MAX_SCAN_LIMIT
        ):
            raise CorruptDatabaseError(source, "k-mer dictionary header out of range")
        bits.check_fields(
            arr.size,
            [(self.n_buckets, self._aw), (self.n_buckets, 1), (self.n_multi + 1, self._ew), (self.n_extra, self._aw),
             (self.n_skew, self._sw), (self.n_overflow, self._ow)],
            source,
            "k-mer dictionary",
        )
        sections = [
            (mphf_at, mphf_len), (anchors_at, bits.n_words(self.n_buckets, self._aw)),
            (flags_at, bits.n_words(self.n_buckets, 1)), (starts_at, bits.n_words(self.n_multi + 1, self._ew)),
            (extras_at, bits.n_words(self.n_extra, self._aw)), (skew_at, skew_len),
            (entries_at, bits.n_words(self.n_skew, self._sw)), (over_at, over_len),
            (orders_at, bits.n_words(self.n_overflow, self._ow)),
        ]
        at = HEADER_WORDS
        for start, length in sections:  # back to back, in order, filling the array
            if start != at or length < 0:
                raise CorruptDatabaseError(source, "k-mer dictionary sections out of place")
            at += length
        if at != total:
            raise CorruptDatabaseError(source, "k-mer dictionary sections out of place")
        base = arr.view(np.ndarray)
        self._mphf = MPHF.from_array(base[mphf_at : mphf_at + mphf_len], source=source)
        self._flags = base[flags_at:starts_at]
        self._starts = bits.unpack(base[starts_at:extras_at], self.n_multi + 1, self._ew).astype(np.int64)
        # version 2's skew index may be a pilot MPHF (its magic says so), version 1's is not
        pilots = self.version >= 2 and skew_len > 0 and int(base[skew_at]) == PILOT_MAGIC
        skew_kind: type[MPHF] | type[PilotMPHF] = PilotMPHF if pilots else MPHF
        self._skew: HashFunction = skew_kind.from_array(base[skew_at : skew_at + skew_len], source=source)
        self._over = MPHF.from_array(base[over_at : over_at + over_len], source=source)
        self._orders = base[orders_at:total]  # checked at open block by block; lookups read it in place
        if self._mphf.n != self.n_buckets or self._over.n != self.n_overflow or self._skew.n != self.n_skew:
            raise CorruptDatabaseError(source, "a k-mer dictionary's hash function does not match its header")
        if (
            self._starts[0] != 0 or self._starts[-1] != self.n_extra or np.any(np.diff(self._starts) < 1)
            or self._orders_beyond_n()
        ):
            raise CorruptDatabaseError(source, "k-mer dictionary entries out of range")
        before = np.zeros(self._flags.size, dtype=np.int64)
        np.cumsum(np.bitwise_count(self._flags[:-1]), out=before[1:])
        if int(before[-1] + np.bitwise_count(self._flags[-1])) != self.n_multi:
            raise CorruptDatabaseError(source, "k-mer dictionary bucket flags disagree with its header")
        self._before = before
        # the fields the compiled lookup reads, by kmerdb.core.kernels' D_* index
        fields = {
            kernels.D_N: self.n, kernels.D_K: self.k, kernels.D_M: self.m, kernels.D_BUCKETS: self.n_buckets,
            kernels.D_ANCHOR_WIDTH: self._aw, kernels.D_SCAN: self.scan_limit,
            kernels.D_SKEW: self.n_skew, kernels.D_SKEW_WIDTH: self._sw, kernels.D_OVERFLOW: self.n_overflow,
            kernels.D_ORDER_WIDTH: self._ow, kernels.D_ANCHORS: anchors_at, kernels.D_FLAGS: flags_at,
            kernels.D_EXTRAS: extras_at, kernels.D_ENTRIES: entries_at, kernels.D_ORDERS: orders_at,
            kernels.D_BASES: unitigs.n_bases, kernels.D_SKEW_PILOTS: int(pilots),
        }
        self._plan = np.zeros(kernels.DICTIONARY_PLAN, dtype=np.int64)
        for at, value in fields.items():
            self._plan[at] = value
        self._words = base
        self._skew_ahead = self.n_skew * _SKEW_AHEAD >= self.n > 0

    def _orders_beyond_n(self) -> bool:
        """Whether an overflow k-mer's unitig order is n or more (read in blocks)."""
        for lo in range(0, self.n_overflow, _CHECK_BLOCK):
            index = np.arange(lo, min(lo + _CHECK_BLOCK, self.n_overflow), dtype=np.uint64)
            if int(bits.unpack(self._orders, self.n_overflow, self._ow, index).max()) >= self.n:
                return True
        return False

    @property
    def nbytes(self) -> int:
        """Bytes of the dictionary's array."""
        return int(self._array.nbytes)

    def find(
        self,
        keys: np.ndarray,
        hashes: np.ndarray | None = None,
        anchors: np.ndarray | None = None,
        others: np.ndarray | None = None,
        scratch: Scratch | None = None,
        out: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Membership and unitig order of canonical k-mers.

        Parameters
        ----------
        keys : ndarray of uint64
            Canonical k-mers.
        hashes, anchors, others : ndarray, optional
            Their minimizer hashes, anchors and reverse complements when the caller has them
            (:func:`~kmerdb.core.kmers.sequence_anchors`); computed otherwise.  Keys from a
            sequence come in runs that share a minimizer: the buckets are looked up once per
            run.
        scratch : Scratch, optional
            Where the lookup's work arrays come from (``find.*``; else fresh ones).  A caller
            that looks many batches up keeps one: fresh arrays of this size cost their page
            faults whenever the allocator has given memory back.
        out : (ndarray of bool, ndarray of int64), optional
            Arrays of ``len(keys)`` that receive ``found`` and ``orders`` (returned).

        Returns
        -------
        found : ndarray of bool
        orders : ndarray of int64
            The unitig order of each found key (meaningless where not found).
        """
        keys = np.asarray(keys, dtype=np.uint64)
        if not self.n or not keys.size:
            return np.zeros(keys.size, dtype=bool), np.zeros(keys.size, dtype=np.int64)
        if hashes is None or anchors is None:
            hashes, anchors = minimizer_anchors(keys, self.k, self.m)
        if others is None:
            others = reverse_complement(keys, self.k)
        keys = np.ascontiguousarray(keys)
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        anchors = np.ascontiguousarray(anchors, dtype=np.uint8)
        others = np.ascontiguousarray(others, dtype=np.uint64)
        n = keys.size
        found, orders = out if out is not None else (np.empty(n, dtype=bool), np.empty(n, dtype=np.int64))
        space = scratch if scratch is not None else Scratch()
        walk = self.unitigs.walk()
        if kernels.sweep_pays(n, self.n):  # most of the lines would be missed one by one
            # the words hold the MPHFs, anchors and skew entries; then the unitigs
            kernels.sweep(self._words, walk.seq, walk.flags, walk.ranks, walk.ranks[:0])
        status = kernels.dictionary_find(
            keys, hashes, anchors, others, self._plan, self._words, self._before, self._starts,
            *self._mphf.lookup_arrays(), *self._skew.lookup_arrays(), *self._over.lookup_arrays(),
            walk.seq, walk.flags, walk.ranks, walk.offsets, found, orders,
            space.get("find.work", 4 * n, np.int64).reshape(4, n), space.get("find.runs", n), self._skew_ahead,
            space.get("find.batch_hashes", _SKEW_BATCH), space.get("find.batch_pending", _SKEW_BATCH, np.int64),
        )
        if status != kernels.OK:
            raise CorruptDatabaseError(self.unitigs.source, "a k-mer of the dictionary lies past the unitig bases")
        return found, orders

    def stats(self) -> dict:
        """Counts of the dictionary's parts."""
        return {
            "buckets": self.n_buckets,
            "multi_buckets": self.n_multi,
            "extra_anchors": self.n_extra,
            "skew_kmers": self.n_skew,
            "overflow_kmers": self.n_overflow,
        }
