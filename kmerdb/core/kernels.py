"""Compiled loops of the lookup path: reads to anchored k-mers, MPHF slots, dictionary finds,
class runs and colour classes.

Whole-array numpy pays a pass over memory per step and a call per step: a lookup that walks
a bucket, an anchor, a rank and the k bases of a unitig costs a dozen passes, and numpy's
per-call cost over the 64 partitions of a query is a large share of the rest.  These
kernels do the same work key by key (or batch by batch) in one pass, compiled by numba at
the first call of any of them and cached beside this module (or in numba's user cache when
the package directory is read-only).

Every kernel is the only implementation of what it computes: :func:`anchored_kmers` is
:func:`kmerdb.core.kmers.sequence_anchors`, :func:`kmer_anchors` is
:func:`kmerdb.core.kmers.minimizer_anchors` (standalone k-mers), :func:`mphf_lookup` is
:meth:`kmerdb.core.mphf.MPHF.lookup`, :func:`dictionary_find` is
:meth:`kmerdb.core.dictionary.MinimizerDictionary.find`, :func:`run_classes`,
:func:`class_sizes`, :func:`class_members`, :func:`class_parents` and :func:`class_hits` read
the colour-class groups of :mod:`kmerdb.store.classes` (and :func:`class_forest` chooses the
classes its writer puts as differences), :func:`partition_scatter` groups a query's keys.
Those modules own the formats and the checks made when a file is opened; a kernel reads only
what they validated, and checks what validation cannot (a unitig read past the end of its
bases, a class's entries out of range), returning a status its owner turns into
:class:`~kmerdb.errors.CorruptDatabaseError`.

Integer discipline: numba turns a mix of uint64 and int64 into float64, so every uint64
expression below keeps both operands uint64 (the ``_U`` casts).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "MINIMIZER_SEED",
    "OK",
    "CORRUPT_UNITIGS",
    "anchored_kmers",
    "kmer_anchors",
    "kmer_reverse_complement",
    "mphf_lookup",
    "dictionary_find",
    "partition_scatter",
    "sweep",
    "sweep_pays",
    "SWEEP_SHARE",
    "byte_tally",
    "run_classes",
    "run_byte_tally",
    "class_hits",
    "class_sizes",
    "class_members",
    "class_forest",
    "class_parents",
    "CORRUPT_CLASSES",
    "MAX_CHAIN",
]

_U = np.uint64

# The kernels of this module, by name, in definition order (callees before callers).
_KERNELS: list[str] = []
# Kernels inlined into their callers at numba's level (:func:`_inlined`).
_INLINE: set[str] = set()
_LOADED = False
_LOAD_LOCK = threading.Lock()
# numba's count of leading zero bits (an intrinsic), bound by _load
_leading_zeros: Any = None
# a software prefetch of an array's item (an intrinsic), bound by _load
_prefetch: Any = None


class _Kernel:
    """A kernel before numba has compiled this module: the first call of any kernel imports
    numba and replaces every one of them in the module by its compiled dispatcher, so that
    commands that never look a key up or write colour classes (``info``, a dense build) do not
    import numba at all.  (Where they do, a process holds about 140 MiB more: numba and LLVM.)"""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any) -> Any:
        _load()
        return globals()[self.function.__name__](*args)


def _compiled(function: Callable[..., Any]) -> Any:
    """Mark ``function`` as a kernel (compiled by :func:`_load` at the first call of any)."""
    _KERNELS.append(function.__name__)
    return _Kernel(function)


def _inlined(function: Callable[..., Any]) -> Any:
    """A kernel that numba inlines into its callers (compiled alone as well, for direct calls).

    For helpers with array arguments called per item in a hot loop that LLVM would not
    inline for their size: a call passes every array as its fields (pointer, sizes, strides,
    ...), and the class expansion's two such calls cost about 240 of its 740 instructions per
    pair (cachegrind), and 11 of its 48 ns per k-mer of 1,000 genomes."""
    _INLINE.add(function.__name__)
    return _compiled(function)


def _load() -> None:
    """Compile every kernel in nopython mode, machine code cached on disk (beside this
    module, or in numba's user cache; compiled in each process where no cache is writable).

    Without numba's runtime (``_nrt=False``): the kernels allocate nothing, and with the
    runtime every array handed to a helper is reference-counted per call, atomically, which
    cost 20x the work of a bit-field read.
    """
    global _LOADED, _leading_zeros, _prefetch
    with _LOAD_LOCK:
        if _LOADED:
            return
        from numba import njit
        from numba.cpython.unsafe.numbers import leading_zeros

        _leading_zeros = leading_zeros
        _prefetch = _prefetch_intrinsic()

        for name in _KERNELS:
            function = globals()[name].function
            options: dict[str, Any] = {"_nrt": False}
            if name in _INLINE:
                options["inline"] = "always"
            try:
                globals()[name] = njit(cache=True, **options)(function)
            except RuntimeError:  # numba found no writable cache directory
                globals()[name] = njit(**options)(function)
        _LOADED = True


def _prefetch_intrinsic() -> Any:
    """An intrinsic ``(array, index) -> None``: LLVM's prefetch (read, high locality) of the
    item's cache line.  Harmless at any index: a prefetch never faults."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    def typer(typingctx: Any, array: Any, index: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            array_type = signature.args[0]
            view = context.make_array(array_type)(context, builder, args[0])
            item = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False)
            byte = builder.bitcast(item, ir.IntType(8).as_pointer())
            i32 = ir.IntType(32)
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [byte.type, i32, i32, i32]), "llvm.prefetch.p0i8"
            )
            builder.call(function, [byte, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(array, types.intp), codegen

    return intrinsic(typer)


#: The seed xored into a canonical m-mer before murmur3's fmix64 gives its minimizer order.
MINIMIZER_SEED = 0x9E3779B97F4A7C15

#: Status of :func:`dictionary_find`: every key answered.
OK = 0
#: Status of :func:`dictionary_find`: a unitig order led past the end of the unitig bases.
CORRUPT_UNITIGS = 1

_FM1 = _U(0xFF51AFD7ED558CCD)
_FM2 = _U(0xC4CEB9FE1A85EC53)
_SM1 = _U(0xBF58476D1CE4E5B9)
_SM2 = _U(0x94D049BB133111EB)
_SEED = _U(MINIMIZER_SEED)
_LOW32 = _U(0xFFFFFFFF)
_ALL = _U(0xFFFFFFFFFFFFFFFF)
# Byte lanes: the low seven bits of each, and the top bit.
_LANE_LOW = _U(0x7F7F7F7F7F7F7F7F)
_LANE_TOP = _U(0x8080808080808080)
#: Byte b of a bitmap (eight genomes, the first at the top bit) spread over the eight byte
#: lanes of a little-endian word (the first genome in the lowest byte): 1 where set.
_SPREAD = np.array(
    [sum(1 << (8 * i) for i in range(8) if (b >> (7 - i)) & 1) for b in range(256)], dtype=np.uint64
)


@_compiled
def popcount(x):
    """Number of 1 bits of a uint64 (LLVM turns this idiom into one instruction)."""
    x = x - ((x >> _U(1)) & _U(0x5555555555555555))
    x = (x & _U(0x3333333333333333)) + ((x >> _U(2)) & _U(0x3333333333333333))
    x = (x + (x >> _U(4))) & _U(0x0F0F0F0F0F0F0F0F)
    return (x * _U(0x0101010101010101)) >> _U(56)


@_compiled
def _finalized(h, s1, m1, s2, m2, s3):
    """The xorshift-multiply finalizer shared by murmur3's fmix64 and splitmix64 (their shifts
    and multipliers given): a bijection on uint64."""
    h ^= h >> _U(s1)
    h *= m1
    h ^= h >> _U(s2)
    h *= m2
    h ^= h >> _U(s3)
    return h


@_compiled
def minimizer_order(mmer):
    """murmur3's fmix64 of a canonical m-mer xored with the seed (the order of minimizers)."""
    return _finalized(mmer ^ _SEED, 33, _FM1, 33, _FM2, 33)


@_compiled
def kmer_reverse_complement(x, k):
    """Reverse complement of one 2-bit k-mer code (the first base most significant)."""
    x = x ^ (_ALL >> _U(64 - 2 * k))  # k <= 32: no shift by 64
    x = ((x >> _U(2)) & _U(0x3333333333333333)) | ((x & _U(0x3333333333333333)) << _U(2))
    x = ((x >> _U(4)) & _U(0x0F0F0F0F0F0F0F0F)) | ((x & _U(0x0F0F0F0F0F0F0F0F)) << _U(4))
    x = ((x >> _U(8)) & _U(0x00FF00FF00FF00FF)) | ((x & _U(0x00FF00FF00FF00FF)) << _U(8))
    x = ((x >> _U(16)) & _U(0x0000FFFF0000FFFF)) | ((x & _U(0x0000FFFF0000FFFF)) << _U(16))
    x = (x >> _U(32)) | (x << _U(32))
    return x >> _U(64 - 2 * k)


@_compiled
def kmer_anchors(kmers, k, m, hashes, anchors):
    """Minimizer hash (``hashes``) and anchor (``anchors``) of each standalone k-mer, as
    :func:`kmerdb.core.kmers.minimizer_anchors` defines them: of the k - m + 1 m-mers, the
    leftmost whose canonical form has the smallest :func:`minimizer_order`.  The m-mer at
    offset j of a k-mer reads reversed at offset k - m - j of its reverse complement, so both
    strands come from two shifts."""
    mmask = _ALL >> _U(64 - 2 * m)
    for i in range(kmers.size):
        x = kmers[i]
        r = kmer_reverse_complement(x, k)
        best = _ALL
        anchor = 0
        for j in range(k - m + 1):
            mmer = (x >> _U(2 * (k - m - j))) & mmask
            rc = (r >> _U(2 * j)) & mmask
            h = minimizer_order(min(mmer, rc))
            if h < best:
                best = h
                anchor = 2 * j + (1 if mmer <= rc else 0)
        hashes[i] = best
        anchors[i] = anchor


@_compiled
def field(words, start, bit, width):
    """``width`` bits (1..64) at bit ``bit`` of the words from ``start``, most significant
    first (the layout of :func:`kmerdb.core.bits.pack`)."""
    q = start + np.int64(bit >> _U(6))
    off = bit & _U(63)
    x = words[q] << off
    if off + _U(width) > _U(64):
        x |= words[q + 1] >> (_U(64) - off)
    return x >> _U(64 - width)


@_compiled
def field_select(words, start, bit, width):
    """:func:`field` with no branch: the next word is always read (the last word of
    ``words`` stands in for it at the end) and its bits shifted in, or out where the field
    lies in one word.  For fields whose crossing of a word boundary is random (the members
    and offsets of class tables, each read once): :func:`field`'s branch mispredicted often
    enough that the 1,000 genomes' class expansion took 61 ns per k-mer against 54.  Where
    fields follow each other in order (tallies of three genomes), the branch predicts well
    and costs less than the extra read."""
    q = start + np.int64(bit >> _U(6))
    off = bit & _U(63)
    x = words[q] << off
    # two shifts: a shift by 64 (off = 0) is undefined
    x |= (words[min(q + 1, words.size - 1)] >> (_U(63) - off)) >> _U(1)
    return x >> _U(64 - width)


# ---------------------------------------------------------------------------- reads


@_compiled
def anchored_kmers(codes, table, k, m, ring, facing, positions, kmers, others, hashes, anchors):
    """The valid k-mers of a sequence, streamed: start, canonical code, its reverse
    complement, minimizer hash and anchor (as :func:`kmerdb.core.kmers.minimizer_anchors`
    defines it, from the leftmost m-mer of the smallest hash along the sequence).

    Byte ``codes[i]`` is coded as ``table[codes[i]]`` (a base 0..3, anything else breaks
    k-mers): letters are coded here, in the same pass (a pass of its own cost 1.4 ns per
    k-mer of a query).

    ``ring`` (uint64) and ``facing`` (uint8) are work arrays of k - m + 1 entries.  Outputs
    are sized for every window; returns how many k-mers were written.
    """
    w = k - m + 1
    kmask = _ALL if k == 32 else (_U(1) << _U(2 * k)) - _U(1)
    mmask = (_U(1) << _U(2 * m)) - _U(1)
    kshift = _U(2 * (k - 1))
    mshift = _U(2 * (m - 1))
    # ring: the hashes of the last w m-mers; facing, bit 0: the m-mer reads as its canonical
    # form, bit 1: it is its own reverse complement
    fw = _U(0)
    rc = _U(0)
    fm = _U(0)
    rm = _U(0)
    run = 0  # valid bases in a row
    best = -1  # start of the window's leftmost smallest m-mer, -1 when unknown
    best_h = _U(0)
    best_at = 0  # its place in the ring
    # the ring's place of the m-mer starting at j is j mod w, kept by a counter (w is not a
    # power of two: a modulo per base was a division, about half the loop's time)
    slot = -1
    out = 0
    for i in range(codes.size):
        c = table[codes[i]]
        if c > 3:
            run = 0
            best = -1
            continue
        cu = _U(c)
        fw = ((fw << _U(2)) | cu) & kmask
        rc = (rc >> _U(2)) | ((_U(3) - cu) << kshift)
        fm = ((fm << _U(2)) | cu) & mmask
        rm = (rm >> _U(2)) | ((_U(3) - cu) << mshift)
        run += 1
        if run < m:
            continue
        j = i - m + 1  # this m-mer's start
        h = minimizer_order(min(fm, rm))
        slot = slot + 1 if slot + 1 < w else 0
        if run == m:  # a first m-mer after a break: places restart from j mod w
            slot = j % w
        ring[slot] = h
        facing[slot] = (1 if fm <= rm else 0) | (2 if fm == rm else 0)
        if best < 0 or h < best_h:  # strictly smaller: a tie keeps the leftmost
            best = j
            best_h = h
            best_at = slot
        if run < k:
            continue
        s = i - k + 1  # this k-mer's start; its m-mers start at s .. j
        if best < s:  # the minimum left the window: the leftmost smallest of the w m-mers
            at = slot + 1 if slot + 1 < w else 0  # s's place: the oldest of the ring
            best = s
            best_h = ring[at]
            best_at = at
            for t in range(s + 1, j + 1):
                at = at + 1 if at + 1 < w else 0
                v = ring[at]
                if v < best_h:
                    best = t
                    best_h = v
                    best_at = at
        # selects, not branches: which strand is canonical is a coin toss per k-mer
        flip = np.int64(fw > rc)
        positions[out] = s
        kmers[out] = min(fw, rc)
        others[out] = max(fw, rc)
        hashes[out] = best_h
        offset = best - s
        f = np.int64(facing[best_at])
        # the canonical k-mer may read the sequence backwards, and its minimizer with it
        # (an m-mer that is its own reverse complement faces both ways)
        b = ((f & 1) ^ flip) | (f >> 1)
        p = offset + flip * (k - m - 2 * offset)
        anchors[out] = np.uint8(2 * p + b)
        out += 1
    return out


# ----------------------------------------------------------------------------- MPHF
#
# An MPHF is its serialized array (see kmerdb.core.mphf) and a plan of what its header
# implies, as uint64: n, F, the base salt, the starts of the bit words, the rank entries and
# the fallback, L, then per level its size in bits, its first bit, its salt and multiplier.

_P_N, _P_F, _P_SALT, _P_BITS, _P_RANK, _P_FALLBACK, _P_LEVELS = 0, 1, 2, 3, 4, 5, 6
PLAN_HEAD = 7


@_compiled
def rank(arr, bits_at, rank_at, g):
    """1 bits before global bit ``g``: the block's entry, its quarter's count, the words of
    the quarter before g's and the bits of g's word below it (the three words before it
    always read and masked: no branch to mispredict)."""
    w = np.int64(g >> _U(6))
    e = arr[rank_at + (w >> 4)]
    quarter = (w >> 2) & 3
    # the quarter's count sits at bits 22 + 10 q (q >= 1); q = 0 reads bits 22-31, masked off
    ones = (e & _LOW32) + ((e >> _U(22 + 10 * quarter)) & _U(1023) & (_U(0) - _U(quarter != 0)))
    first = w - (w & 3)
    for t in range(3):
        word = arr[bits_at + min(first + t, w)]
        ones += popcount(word) & (_U(0) - _U(first + t < w))
    ones += popcount(arr[bits_at + w] & ((_U(1) << (g & _U(63))) - _U(1)))
    return np.int64(ones)


@_compiled
def _base_hash(plan, key):
    """The seeded splitmix64 finalizer of a key: a bijection on uint64."""
    return _finalized(key ^ plan[_P_SALT], 30, _SM1, 27, _SM2, 31)


@_compiled
def _level_bit(plan, level, h):
    """Global bit position of a hashed key at one level."""
    at = PLAN_HEAD + 4 * level
    size = plan[at]
    wide = size >= _U(1) << _U(32)  # multiply-shift needs size < 2**32: a modulo beyond
    if level == 0:
        x = h if wide else h >> _U(32)
    else:
        x = (h ^ plan[at + 2]) * plan[at + 3]
        if not wide:
            x >>= _U(32)
    if wide:
        x ^= x >> _U(32)
        x %= size
    else:
        x = (x * size) >> _U(32)
    return x + plan[at + 1]


@_compiled
def _fallback(arr, plan, h):
    """Slot of a hashed key in the fallback table, or -1."""
    n = np.int64(plan[_P_N])
    f = np.int64(plan[_P_F])
    lo = np.int64(plan[_P_FALLBACK])
    hi = lo + f
    first = lo
    while lo < hi:  # the sorted base hashes of the keys no level placed
        mid = (lo + hi) >> 1
        if arr[mid] < h:
            lo = mid + 1
        else:
            hi = mid
    if lo < first + f and arr[lo] == h:
        return n - f + (lo - first)
    return -1


@_compiled
def mphf_slot(arr, plan, key):
    """Slot of one key: in [0, n) for every build key, in [0, n) or -1 for any other."""
    if plan[_P_N] == _U(0):
        return -1
    bits_at = np.int64(plan[_P_BITS])
    h = _base_hash(plan, key)
    for level in range(np.int64(plan[_P_LEVELS])):
        g = _level_bit(plan, level, h)
        if (arr[bits_at + np.int64(g >> _U(6))] >> (g & _U(63))) & _U(1):
            return rank(arr, bits_at, np.int64(plan[_P_RANK]), g)
    return _fallback(arr, plan, h) if plan[_P_F] else -1


@_compiled
def mphf_lookup(arr, plan, keys, out, hashes, pending):
    """Slots of ``keys`` into ``out`` (int64), as :func:`mphf_slot`, in batches the size of the
    work arrays ``hashes`` (uint64) and ``pending`` (int64): each level is walked over the
    batch's keys still unplaced, which are kept without a branch (a key's level is random, so
    per-key branches would mispredict about once a level); ``out`` holds a placed key's bit
    until the ranks of the batch are taken."""
    if plan[_P_N] == _U(0):
        for i in range(keys.size):
            out[i] = -1
        return
    bits_at = np.int64(plan[_P_BITS])
    rank_at = np.int64(plan[_P_RANK])
    batch = hashes.size
    for start in range(0, keys.size, batch):
        stop = min(start + batch, keys.size)
        m = 0
        for i in range(start, stop):
            hashes[m] = _base_hash(plan, keys[i])
            pending[m] = i
            m += 1
        for level in range(np.int64(plan[_P_LEVELS])):
            kept = 0
            for t in range(m):
                h = hashes[t]
                g = _level_bit(plan, level, h)
                bit = int((arr[bits_at + np.int64(g >> _U(6))] >> (g & _U(63))) & _U(1))
                out[pending[t]] = np.int64(g)
                hashes[kept] = h
                pending[kept] = pending[t]
                kept += 1 - bit
            m = kept
        for t in range(m):  # no level placed these: the fallback's, or strangers
            out[pending[t]] = -2 - t
        for i in range(start, stop):
            g = out[i]
            if g >= 0:
                out[i] = rank(arr, bits_at, rank_at, _U(g))
        for t in range(m):
            out[pending[t]] = _fallback(arr, plan, hashes[t]) if plan[_P_F] else -1


# ----------------------------------------------------------------------- pilot MPHF
#
# A pilot MPHF (see kmerdb.core.pilots) is its array and a plan, uint64: the fields below.

(
    PILOT_N, PILOT_SEED, PILOT_BUCKETS, PILOT_DENSE, PILOT_SPLIT, PILOT_TABLE, PILOT_WIDTH, PILOT_AT,
    PILOT_FREE_WIDTH, PILOT_FREE_AT,
) = range(10)
PILOT_PLAN = 10
# The odd multiplier that spreads a pilot over 64 bits before it is mixed with a key's hash.
_PILOT_SPREAD = _U(0x9E3779B97F4A7C15)
#: Status of :func:`pilot_search`: a bucket found no pilot within the trials allowed.
PILOT_FAILED = -1


@_compiled
def pilot_hash(plan, key):
    """A key's seeded splitmix64 hash (a bijection on uint64)."""
    return _finalized(key ^ plan[PILOT_SEED], 30, _SM1, 27, _SM2, 31)


@_compiled
def pilot_bucket(plan, h):
    """Bucket of a hashed key: the low 32 bits send it to the dense buckets (below
    ``plan[PILOT_SPLIT]``) or the others, the high 32 bits pick one by multiply-shift."""
    hi = h >> _U(32)
    dense = plan[PILOT_DENSE]
    near = (hi * dense) >> _U(32)
    far = dense + ((hi * (plan[PILOT_BUCKETS] - dense)) >> _U(32))
    return near if (h & _LOW32) < plan[PILOT_SPLIT] else far


@_compiled
def pilot_position(plan, h, pilot):
    """Table position of a hashed key under its bucket's pilot."""
    x = _finalized(h ^ (pilot * _PILOT_SPREAD), 30, _SM1, 27, _SM2, 31)
    return ((x >> _U(32)) * plan[PILOT_TABLE]) >> _U(32)


@_inlined
def pilot_slot(arr, plan, key):
    """Slot of one key: in [0, n) for every build key and any other (or -1 when n = 0)."""
    if plan[PILOT_N] == _U(0):
        return -1
    h = pilot_hash(plan, key)
    b = pilot_bucket(plan, h)
    pilot = field_select(arr, np.int64(plan[PILOT_AT]), b * plan[PILOT_WIDTH], plan[PILOT_WIDTH])
    p = pilot_position(plan, h, pilot)
    if p >= plan[PILOT_N]:  # past n: the free slot below n that stands for it
        free_width = plan[PILOT_FREE_WIDTH]
        p = field_select(arr, np.int64(plan[PILOT_FREE_AT]), (p - plan[PILOT_N]) * free_width, free_width)
    return np.int64(p)


@_compiled
def pilot_lookup(arr, plan, keys, out):
    """Slots of ``keys`` into ``out`` (int64), as :func:`pilot_slot`; the pilot of the key
    :data:`_LOOK` ahead is prefetched."""
    n = keys.size
    width = plan[PILOT_WIDTH]
    at = np.int64(plan[PILOT_AT])
    for i in range(n):
        if i + _LOOK < n and plan[PILOT_N] != _U(0):
            b = pilot_bucket(plan, pilot_hash(plan, keys[i + _LOOK]))
            _prefetch(arr, at + np.int64((b * width) >> _U(6)))
        out[i] = pilot_slot(arr, plan, keys[i])


@_compiled
def pilot_buckets(plan, keys, hashes, buckets, starts):
    """Hash and bucket of each key, as :func:`pilot_slot` finds them: ``hashes`` (uint64) and
    ``buckets`` (int64) receive each key's, ``starts[b + 2]`` (int64, B + 2, zero) the number
    of keys of bucket b.  Returns the size of the largest bucket."""
    for i in range(keys.size):
        h = pilot_hash(plan, keys[i])
        hashes[i] = h
        b = np.int64(pilot_bucket(plan, h))
        buckets[i] = b
        starts[b + 2] += 1
    largest = 0
    for t in range(starts.size - 2):
        largest = max(largest, starts[t + 2])
    return largest


@_compiled
def pilot_group(buckets, starts, members, order, by_size):
    """The keys of each bucket and the buckets by size, by counting sorts (linear time).

    From :func:`pilot_buckets`' ``starts``, makes ``starts[b]`` the start of bucket b's keys in
    ``members`` (int64, one per key: key indexes by bucket, then ascending) and fills ``order``
    (int64, B) with the buckets by decreasing size, then increasing bucket.  ``by_size`` (int64,
    largest bucket + 2, zero) is work space."""
    n_buckets = order.size
    largest = by_size.size - 2
    for b in range(n_buckets):
        by_size[largest - starts[b + 2] + 1] += 1
    for t in range(largest + 1):
        by_size[t + 1] += by_size[t]
    for b in range(n_buckets):
        at = largest - starts[b + 2]
        order[by_size[at]] = b
        by_size[at] += 1
    for b in range(n_buckets):
        starts[b + 2] += starts[b + 1]
    for i in range(buckets.size):  # starts[b + 1]: where bucket b's next key goes
        b = buckets[i]
        members[starts[b + 1]] = i
        starts[b + 1] += 1


@_compiled
def pilot_search(plan, hashes, members, starts, order, taken, pilots, positions, max_trials):
    """Find each bucket's pilot, largest buckets first (PTHash's search).

    ``members[starts[b]:starts[b + 1]]`` index ``hashes`` of bucket b's keys; ``order`` lists
    the buckets by decreasing size.  A pilot is the first value from 0 that sends each of its
    bucket's keys to a table position no earlier bucket took and no other key of the bucket
    takes.  ``taken`` (uint64 bit words of the table positions, zero; a bit array stays in the
    first-level cache longer than bytes would) receives the positions taken, ``pilots``
    (uint64, one per bucket) the pilots; ``positions`` (uint64, at least the largest bucket)
    is work space.  Returns :data:`OK`, or :data:`PILOT_FAILED` when a bucket found no pilot
    in ``max_trials`` (then the caller tries another seed)."""
    for t in range(order.size):
        b = order[t]
        lo, hi = starts[b], starts[b + 1]
        if lo == hi:
            break  # the rest are empty too
        pilot = _U(0)
        placed = False
        for _trial in range(max_trials):
            ok = True
            for j in range(lo, hi):
                p = pilot_position(plan, hashes[members[j]], pilot)
                if (taken[p >> _U(6)] >> (p & _U(63))) & _U(1):
                    ok = False
                    break
                for u in range(j - lo):
                    if positions[u] == p:
                        ok = False
                        break
                if not ok:
                    break
                positions[j - lo] = p
            if ok:
                for j in range(hi - lo):
                    p = positions[j]
                    taken[p >> _U(6)] |= _U(1) << (p & _U(63))
                pilots[b] = pilot
                placed = True
                break
            pilot += _U(1)
        if not placed:
            return PILOT_FAILED
    return OK


# ----------------------------------------------------------------------- dictionary
#
# A dictionary is its array (see kmerdb.core.dictionary) and a plan, int64: the fields below.
# Its unitigs are their 2-bit bases, the start flags of unitig order (format 2: a k-mer that
# starts a unitig has its flag set, most significant bit first) with the flags set before
# each word less one, or the unitig offsets (format 1; then the flags are empty).

(
    D_N, D_K, D_M, D_BUCKETS, D_ANCHOR_WIDTH, D_SCAN, D_SKEW, D_SKEW_WIDTH,
    D_OVERFLOW, D_ORDER_WIDTH, D_ANCHORS, D_FLAGS, D_EXTRAS, D_ENTRIES, D_ORDERS, D_BASES, D_SKEW_PILOTS,
) = range(17)
DICTIONARY_PLAN = 17
# Skew keys ahead whose entries dictionary_find prefetches.
_LOOK = 16
# Runs ahead whose unitig bases dictionary_find prefetches (2 to 16 measured alike).
_RUNS_AHEAD = 4


@_compiled
def _spelt(plan, seq, flags, ranks, offsets, r):
    """(the k bases, as read along the unitig, of unitig order ``r`` < n; False when they
    would lie past the end of the bases, in a damaged unitig file)."""
    if offsets.size:
        lo, hi = 0, offsets.size
        while lo < hi:  # the last offset <= r
            mid = (lo + hi) >> 1
            if offsets[mid] <= r:
                lo = mid + 1
            else:
                hi = mid
        u = _U(lo - 1)
    else:
        word = r >> 6
        u = ranks[word] + popcount(flags[word] >> _U(63 - (r & 63)))
    k = plan[D_K]
    base = _U(r) + u * _U(k - 1)
    if base + _U(k) > _U(plan[D_BASES]):
        return _U(0), False
    return field_select(seq, 0, base * _U(2), 2 * k), True


@_compiled
def _spelt_word(plan, flags, ranks, offsets, r):
    """The word of the unitig bases where unitig order ``r`` starts (for a prefetch)."""
    if offsets.size:
        return np.int64(0)
    word = r >> 6
    u = ranks[word] + popcount(flags[word] >> _U(63 - (r & 63)))
    return np.int64(((_U(r) + u * _U(plan[D_K] - 1)) * _U(2)) >> _U(6))


@_compiled
def _place(plan, value, anchor, key, other, seq, flags, ranks, offsets):
    """Unitig order where the anchor ``value`` places a key of ``anchor``, if its k bases
    there are the key's; -1 if not, -2 if the unitigs are damaged."""
    # back = 1: the key reads backward along the unitig there.  Which strand is canonical is
    # a coin toss per key, so the two cases are chosen by arithmetic, not by a branch (a
    # mispredicted branch a key cost about 1.7 ns of three genomes' finds)
    back = _U(anchor & 1) ^ (value & _U(1))
    p = _U(anchor >> 1)
    # a negative order wraps around to a huge one: one comparison bounds both sides
    r = (value >> _U(1)) - (p + back * (_U(plan[D_K] - plan[D_M]) - _U(2) * p))
    if r >= _U(plan[D_N]):
        return -1
    spelt, ok = _spelt(plan, seq, flags, ranks, offsets, np.int64(r))
    if not ok:
        return -2
    if spelt == key ^ ((key ^ other) & (_U(0) - back)):
        return np.int64(r)
    return -1


@_compiled
def dictionary_find(
    keys, hashes, anchors, others, plan, words, before, starts,
    bucket_arr, bucket_plan, skew_arr, skew_plan, over_arr, over_plan,
    seq, flags, ranks, offsets, found, orders, work, run_hashes, skew_ahead, batch_hashes, batch_pending,
):
    """Membership (``found``) and unitig order (``orders``) of canonical keys given with their
    minimizer hashes, anchors and reverse complements.  Returns :data:`OK`, or
    :data:`CORRUPT_UNITIGS` (then the outputs are incomplete).

    A run of keys that share a minimizer looks its bucket up once.  A key goes to the run's
    current anchor, then (missed, in a bucket of several anchors) to each anchor of a bucket
    that is scanned or to the one the skew index names, then to the overflow.  An anchor
    that places a key serves the rest of the run.

    The runs' buckets are looked up first, in batches (:func:`mphf_lookup`; one by one, each
    run waited on the dependent misses of the MPHF), then their first anchors, and the unitig
    bases at the anchor of the run :data:`_RUNS_AHEAD` ahead are prefetched: three genomes'
    finds went from 20.6 to 16.7 ns per key.  Work space: ``work`` (int64, 4 x len(keys)),
    ``run_hashes`` (uint64, len(keys)), ``batch_hashes`` and ``batch_pending`` (the batch of
    :func:`mphf_lookup`).

    With ``skew_ahead``, the keys of skewed buckets have their skew slots looked up before
    they are placed, in batches too; the entry of the skew key 16 ahead is then prefetched.
    Worth it where many keys lie in skewed buckets (the minimizers that many genomes' variants
    share).
    """
    aw = plan[D_ANCHOR_WIDTH]
    n_buckets = plan[D_BUCKETS]
    n = keys.size
    # work[0]: the bucket of each run; work[1]: keys of skewed buckets; work[2]: their slots;
    # work[3]: the first anchor of each run's bucket
    n_runs = 0
    for i in range(n):
        if i == 0 or hashes[i] != hashes[i - 1]:
            run_hashes[n_runs] = hashes[i]
            n_runs += 1
    if n_buckets:
        mphf_lookup(bucket_arr, bucket_plan, run_hashes[:n_runs], work[0, :n_runs], batch_hashes, batch_pending)
    else:
        work[0, :n_runs] = -1
    # a minimizer outside the dictionary: a value past every order, which nothing matches
    nowhere = _U(2 * (plan[D_N] + plan[D_K])) << _U(1)
    for j in range(n_runs):
        slot = work[0, j]
        work[3, j] = np.int64(field_select(words, plan[D_ANCHORS], _U(slot) * _U(aw), aw)) if slot >= 0 else np.int64(nowhere)
    ahead = n_buckets and plan[D_SKEW] and skew_ahead
    skewed = 0
    if ahead:
        run = -1
        many = False
        for i in range(n):
            if i == 0 or hashes[i] != hashes[i - 1]:
                run += 1
                slot = work[0, run]
                many = False
                if slot >= 0:
                    word = slot >> 6
                    flag = words[plan[D_FLAGS] + word] >> _U(63 - (slot & 63))
                    if flag & _U(1):
                        j = before[word] + np.int64(popcount(flag)) - 1
                        many = starts[j + 1] - starts[j] >= plan[D_SCAN]
            if many:
                work[1, skewed] = np.int64(keys[i])
                skewed += 1
        if plan[D_SKEW_PILOTS]:
            pilot_lookup(skew_arr, skew_plan, work[1, :skewed].view(np.uint64), work[2, :skewed])
        else:
            mphf_lookup(skew_arr, skew_plan, work[1, :skewed].view(np.uint64), work[2, :skewed], batch_hashes, batch_pending)
    n_skewed = skewed
    skewed = 0
    run = -1
    prev = _U(0)
    first = nowhere
    current = nowhere
    multi = False
    skew = False
    lo = 0
    extra = 0
    for i in range(keys.size):
        h = hashes[i]
        if i == 0 or h != prev:
            prev = h
            run += 1
            slot = work[0, run]
            if run + _RUNS_AHEAD < n_runs:
                # the bases at a later run's anchor, fetched while this run is placed
                later = _U(work[3, run + _RUNS_AHEAD]) >> _U(1)
                if later < _U(plan[D_N]):
                    _prefetch(seq, _spelt_word(plan, flags, ranks, offsets, np.int64(later)))
            multi = False
            first = _U(work[3, run])
            if slot >= 0:
                word = slot >> 6
                flag = words[plan[D_FLAGS] + word] >> _U(63 - (slot & 63))
                if flag & _U(1):
                    multi = True
                    j = before[word] + np.int64(popcount(flag)) - 1
                    lo = starts[j]
                    extra = starts[j + 1] - lo
            skew = multi and extra >= plan[D_SCAN] and plan[D_SKEW] > 0
            current = first
        key = keys[i]
        other = others[i]
        a = anchors[i]
        # a skew key whose slot is looked up already goes straight to the anchor it names
        r = -1 if skew and ahead else _place(plan, current, a, key, other, seq, flags, ranks, offsets)
        s = -1
        if skew:
            if ahead:
                s = work[2, skewed]
                if skewed + _LOOK < n_skewed and work[2, skewed + _LOOK] >= 0:
                    # a later skew key's entry, fetched while this one is placed
                    at = (_U(work[2, skewed + _LOOK]) * _U(plan[D_SKEW_WIDTH])) >> _U(6)
                    _prefetch(words, plan[D_ENTRIES] + np.int64(at))
                skewed += 1
            elif r == -1:
                s = pilot_slot(skew_arr, skew_plan, key) if plan[D_SKEW_PILOTS] else mphf_slot(skew_arr, skew_plan, key)
        if r == -1 and multi:
            if extra < plan[D_SCAN]:  # extra anchors + the first <= the scan limit
                for t in range(extra + 1):
                    v = first if t == 0 else field_select(words, plan[D_EXTRAS], _U(lo + t - 1) * _U(aw), aw)
                    r = _place(plan, v, a, key, other, seq, flags, ranks, offsets)
                    if r != -1:
                        current = v
                        break
            elif s >= 0:
                # the skew index names the anchor; a stranger gets some index, which its check refuses
                e = np.int64(field_select(words, plan[D_ENTRIES], _U(s) * _U(plan[D_SKEW_WIDTH]), plan[D_SKEW_WIDTH]))
                if e <= extra:
                    v = first if e == 0 else field_select(words, plan[D_EXTRAS], _U(lo + e - 1) * _U(aw), aw)
                    r = _place(plan, v, a, key, other, seq, flags, ranks, offsets)
                    if r >= 0:
                        current = v
        if r == -1 and plan[D_OVERFLOW]:
            s = mphf_slot(over_arr, over_plan, key)
            if s >= 0:
                ow = plan[D_ORDER_WIDTH]
                q = np.int64(field_select(words, plan[D_ORDERS], _U(s) * _U(ow), ow))  # below n: checked at open
                spelt, ok = _spelt(plan, seq, flags, ranks, offsets, q)
                if not ok:
                    r = -2
                elif spelt in (key, other):
                    r = q
        if r == -2:
            return CORRUPT_UNITIGS
        found[i] = r >= 0
        orders[i] = r if r >= 0 else 0
    return OK


@_compiled
def _line_sum(x):
    """The sum of the first item of every 64 bytes of an integer array (as uint64)."""
    total = _U(0)
    for i in range(0, x.size, max(1, 64 // x.itemsize)):
        total += _U(x[i])
    return total


#: A lookup of at least 1 / SWEEP_SHARE as many keys as a structure holds items sweeps it first
#: (:func:`sweep_pays`).  Three genomes, 64 partitions, dictionary finds per key: 12.5 -> 10.1
#: ns with 1/6 of the k-mers as keys, 23 -> 19 ns with 1/61; 1/122 gained nothing and 1/244
#: lost 40%.
SWEEP_SHARE = 32


def sweep_pays(n_lookups: int, n_items: int) -> bool:
    """Whether ``n_lookups`` random lookups into a structure of ``n_items`` would meet most
    of its cache lines, so that reading it in order first (:func:`sweep`) is cheaper."""
    return n_lookups * SWEEP_SHARE >= n_items


@_compiled
def sweep(a, b, c, d, e):
    """Read every cache line of five integer arrays in order, and return the sum of an item
    of each (returned so that the reads are made).

    In order, the hardware prefetches ahead and the lines come at the memory's bandwidth;
    a lookup that needs most of them one by one waits for each.  A query of 20,000 reads
    against three genomes: dictionary finds 12.5 -> 10.1 ns per key with the partition's
    dictionary swept first, sweep included.
    """
    return _line_sum(a) + _line_sum(b) + _line_sum(c) + _line_sum(d) + _line_sum(e)


# ----------------------------------------------------------------------- partitions


@_compiled
def partition_scatter(hashes, n_parts, kmers, others, positions, starts, marks, out, out_marks, bounds, cursor, per_seq):
    """Group keys by partition (``hash % n_parts``), stably.

    Key i's fields go to the column of ``out`` (uint64, 4 x n: k-mer, reverse complement,
    hash, tag) and entry of ``out_marks`` where its partition's run has reached: ``kmers[i]``,
    ``others[i]``, ``hashes[i]``, its tag and ``marks[i]``.  With ``starts`` (the ascending
    starts of sequences in a buffer), a key's tag is the sequence that holds its position
    ``positions[i]`` (ascending too), and ``per_seq`` (zeroed, one entry per sequence) counts
    the keys of each sequence; without (empty ``starts``), the tag is i.  ``bounds``
    (n_parts + 1 entries) receives where each run starts and ends; ``cursor`` (n_parts
    entries) is a work array.
    """
    n = hashes.size
    mask = _U(n_parts - 1)
    power = n_parts & (n_parts - 1) == 0  # a mask instead of a (much slower) modulo
    n_seqs = starts.size
    for j in range(n_parts + 1):
        bounds[j] = 0
    for i in range(n):
        h = hashes[i]
        p = np.int64(h & mask) if power else np.int64(h % _U(n_parts))
        bounds[p + 1] += 1
    for j in range(n_parts):
        bounds[j + 1] += bounds[j]
        cursor[j] = bounds[j]
    seq = 0
    for i in range(n):
        h = hashes[i]
        p = np.int64(h & mask) if power else np.int64(h % _U(n_parts))
        at = cursor[p]
        cursor[p] = at + 1
        out[0, at] = kmers[i]
        out[1, at] = others[i]
        out[2, at] = h
        if n_seqs:
            while seq + 1 < n_seqs and starts[seq + 1] <= positions[i]:
                seq += 1
            per_seq[seq] += 1
            out[3, at] = _U(seq)
        else:
            out[3, at] = _U(i)
        out_marks[at] = marks[i]


@_compiled
def _count_cell(table, cell, count, x):
    """One more of table cell ``x``, after ``count`` of ``cell``: (cell, count) to carry on.

    Consecutive keys mostly share their cell (a run of a read's k-mers, one class), so a cell
    is counted in a register and added to the table when the next differs: an increment of
    the table per key waited on the one before.  :func:`_flush_cell` adds the last.
    """
    if x != cell:
        if count:
            table[cell] += count
        return x, 1
    return cell, count + 1


@_compiled
def _flush_cell(table, cell, count):
    """Add the cell :func:`_count_cell` carries to the table."""
    if count:
        table[cell] += count


@_compiled
def byte_tally(seqs, values, width, table):
    """Count each (sequence, byte value) pair: ``table[(seqs[i] << width) | (values[i] >> (8 -
    width))] += 1`` (the byte's ``width`` genomes in its top bits)."""
    down = 8 - width
    cell = -1
    count = 0
    for i in range(seqs.size):
        cell, count = _count_cell(table, cell, count, (seqs[i] << width) | (np.int64(values[i]) >> down))
    _flush_cell(table, cell, count)


# ---------------------------------------------------------------------------- gather

# Keys a block of pair_rows: 16 KiB, with their part of the directory.
_PAIR_BLOCK = 2048


@_compiled
def pack_superkmers(codes, starts, n_kmers, k, packed):
    """Pack super-k-mers of a coded sequence four bases to a byte, most significant first:
    super-k-mer i, the ``n_kmers[i] + k - 1`` bases of ``codes`` from ``starts[i]`` (each
    valid, 0-3), takes the next ``ceil(bases / 4)`` bytes of ``packed`` (uint8), its last
    byte's unused bases zero."""
    at = 0
    for i in range(starts.size):
        first = starts[i]
        n_bases = n_kmers[i] + k - 1
        for q in range(0, n_bases, 4):
            byte = 0
            for t in range(4):
                byte <<= 2
                if q + t < n_bases:
                    byte |= codes[first + q + t]
            packed[at] = byte
            at += 1


@_compiled
def superkmer_kmers(packed, n_kmers, k, out):
    """Canonical k-mers of packed super-k-mers into ``out`` (uint64), super-k-mer after
    super-k-mer, each one's in order.  Super-k-mer i has ``n_kmers[i]`` k-mers, so
    ``n_kmers[i] + k - 1`` bases, packed four to a byte (most significant first) from its
    first byte on; each one's bytes follow the last one's.  A k-mer and its reverse
    complement roll one base at a time; the canonical one is the smaller."""
    mask = _ALL >> _U(64 - 2 * k)
    top = _U(2 * (k - 1))
    byte = 0
    o = 0
    for i in range(n_kmers.size):
        n_bases = n_kmers[i] + k - 1
        forward = _U(0)
        backward = _U(0)
        for t in range(n_bases):
            code = (_U(packed[byte + (t >> 2)]) >> _U(6 - 2 * (t & 3))) & _U(3)
            forward = ((forward << _U(2)) | code) & mask
            backward = (backward >> _U(2)) | ((_U(3) - code) << top)
            if t >= k - 1:
                out[o] = min(forward, backward)
                o += 1
        byte += (n_bases + 3) >> 2


@_compiled
def pair_rows(keys, values, offsets, directory, shift, cursor, rows):
    """The row of every (genome, k-mer) pair: ``rows[j]`` (int32 or int64) receives the index
    in ``keys`` (sorted, distinct) of ``values[j]``, which is one of them.  ``values`` holds
    each genome's distinct k-mers, ascending, genome g's at ``offsets[g]:offsets[g + 1]``.

    ``directory[b]`` is the first key whose value shifted right by ``shift`` is b or more (one
    entry past the last b): a value's search starts at its few keys there and steps forward.
    The keys are taken :data:`_PAIR_BLOCK` at a time, every genome's values of a block in
    turn (``cursor``, int64 per genome, is where each genome is): the block's keys stay in
    cache across the genomes, where a genome's whole pass streamed them all from the
    last-level cache (1,000 genomes: 0.54 -> 0.18 s per partition of 23 million pairs)."""
    n_genomes = offsets.size - 1
    last = keys.size - 1  # a value past every key stops there (not a key: the caller's error)
    for g in range(n_genomes):
        cursor[g] = offsets[g]
    for first in range(0, keys.size, _PAIR_BLOCK):
        top = keys[min(first + _PAIR_BLOCK, keys.size) - 1]
        for g in range(n_genomes):
            j = cursor[g]
            end = offsets[g + 1]
            while j < end and values[j] <= top:
                x = values[j]
                at = directory[np.int64(x >> _U(shift))]
                while at < last and keys[at] < x:
                    at += 1
                rows[j] = at
                j += 1
            cursor[g] = j


@_compiled
def pair_columns(rows, offsets, fill, columns, counts, values):
    """Lay pairs out as rows: the pair ``j`` of genome g (``offsets[g] <= j < offsets[g + 1]``,
    genomes in order) goes to ``fill[rows[j]]``, the next free place of its row, which moves
    on; ``columns`` receives g there and, where ``values`` is not empty, ``values`` receives
    ``counts[j]``.  A row's columns come out ascending."""
    with_values = values.size > 0
    for g in range(offsets.size - 1):
        for j in range(offsets[g], offsets[g + 1]):
            r = rows[j]
            at = fill[r]
            columns[at] = g
            if with_values:
                values[at] = counts[j]
            fill[r] = at + 1


# ----------------------------------------------------------------------- class tables
#
# A class table (kmerdb.store.classes): per class a 2-bit form and a bit offset into the
# payload (offset_width bits each, c + 1 offsets); a list or complement is its entries of w
# bits (group positions), a bitmap is g bits, the group's first genome first; a difference
# is its parent's id (id_width bits), the number a of genomes it adds (aw bits), then the a
# genomes added and the genomes removed (w bits each, ascending).  The kernels take the
# table's numbers as ``plan``: offset width, payload bits, w, g, c, id width, aw.

_LIST, _COMPLEMENT, _BITMAP, _DIFF = 0, 1, 2, 3
# Pairs ahead whose class table words class_hits prefetches.
_AHEAD = 8
# Pairs ahead where class_hits looks for the next sequence's first pair and prefetches its row
# of hits: about two sequences' pairs in one partition (reads of 150 bases over 64
# partitions); 8, 16 and 32 measured alike (1,000 genomes: 98 -> 78 ns per k-mer, replayed).
_ROW_AHEAD = 16
#: Status of the class-table kernels: a class id, form, offsets, entries or chain of
#: differences out of range.
CORRUPT_CLASSES = 2
#: The longest chain of differences a reader follows (writers make at most
#: :data:`kmerdb.store.classes.DIFF_DEPTH`): a longer one, a cycle among them, is corrupt.
MAX_CHAIN = 64


@_inlined
def _class_place(forms, offsets, plan, class_id):
    """(form, first bit, last bit) of a class, or form -1 where they are out of range."""
    offset_width, payload_bits, w, g, c, id_width, aw = plan[0], plan[1], plan[2], plan[3], plan[4], plan[5], plan[6]
    if class_id < 0 or class_id >= c:
        return -1, _U(0), _U(0)
    i = _U(class_id)
    form = np.int64(field_select(forms, 0, i * _U(2), 2))
    lo = field_select(offsets, 0, i * _U(offset_width), offset_width)
    hi = field_select(offsets, 0, (i + _U(1)) * _U(offset_width), offset_width)
    if hi < lo or hi > _U(payload_bits):
        return -1, lo, hi
    if form == _BITMAP:
        if hi - lo != _U(g):
            return -1, lo, hi
    elif form == _DIFF:
        if hi - lo < _U(id_width + aw) or (hi - lo - _U(id_width + aw)) % _U(w):
            return -1, lo, hi
    elif (hi - lo) % _U(w):
        return -1, lo, hi
    return form, lo, hi


@_compiled
def _diff_head(payload, plan, lo, hi):
    """(parent, genomes added, genomes removed, bit of the first entry) of a difference at
    bits ``lo:hi``, or parent -1 where they are out of range."""
    w, c, id_width, aw = plan[2], plan[4], plan[5], plan[6]
    parent = np.int64(field_select(payload, 0, lo, id_width))
    added = np.int64(field_select(payload, 0, lo + _U(id_width), aw))
    first = lo + _U(id_width + aw)
    entries = np.int64((hi - first) // _U(w))
    if parent >= c or added > entries:
        return np.int64(-1), added, np.int64(0), first
    return parent, added, entries - added, first


@_inlined
def _bitmap_held(payload, lo, g):
    """Genomes set in the g-bit bitmap at bit ``lo`` of the payload."""
    held = 0
    for t in range(0, g, 64):
        held += int(popcount(field_select(payload, 0, lo + _U(t), min(64, g - t))))
    return held


@_compiled
def _bitmap_list(payload, lo, g, lacks, out, at):
    """The genomes set in the g-bit bitmap at bit ``lo`` of the payload (or, with ``lacks``,
    those not set), ascending, written to ``out`` from ``at`` on; returns the end."""
    for t in range(0, g, 64):
        width = min(64, g - t)
        x = field_select(payload, 0, lo + _U(t), width) << _U(64 - width)  # genome t at the top
        if lacks:
            x = ~x & (_ALL << _U(64 - width))
        while x:
            j = np.int64(_leading_zeros(x))
            out[at] = t + j
            at += 1
            x &= ~(_U(1) << _U(63 - j))
    return at


@_compiled
def _class_size(forms, offsets, payload, plan, class_id):
    """Genomes of a class, its chain of differences followed to its root, or -1 where the
    table is out of range."""
    w, g = plan[2], plan[3]
    x = class_id
    total = 0
    for _ in range(MAX_CHAIN + 1):
        form, lo, hi = _class_place(forms, offsets, plan, x)
        if form < 0:
            return -1
        if form == _DIFF:
            parent, added, removed, _first = _diff_head(payload, plan, lo, hi)
            if parent < 0:
                return -1
            total += added - removed
            x = parent
            continue
        if form == _BITMAP:
            total += _bitmap_held(payload, lo, g)
        elif form == _LIST:
            total += int((hi - lo) // _U(w))
        else:
            total += g - int((hi - lo) // _U(w))
        return total if 0 <= total <= g else -1
    return -1


@_compiled
def class_sizes(forms, offsets, payload, plan, ids, sizes, complement):
    """Of classes ``ids`` of a class table (``plan``: see above), the length of the shorter
    form: the members, or (``complement``) the genomes it lacks, which a complement class
    lists, a bitmap of more than half the genomes gives by its zeros and a difference of more
    than half the genomes gives through its chain.  Returns :data:`OK` or
    :data:`CORRUPT_CLASSES`."""
    g = plan[3]
    for i in range(ids.size):
        form, lo, hi = _class_place(forms, offsets, plan, ids[i])
        if form < 0:
            return CORRUPT_CLASSES
        if form < _BITMAP:  # a list or a complement
            complement[i] = form == _COMPLEMENT
            sizes[i] = np.int64((hi - lo) // _U(plan[2]))
            continue
        held = _bitmap_held(payload, lo, g) if form == _BITMAP else _class_size(forms, offsets, payload, plan, ids[i])
        if held < 0:
            return CORRUPT_CLASSES
        complement[i] = 2 * held > g
        sizes[i] = g - held if 2 * held > g else held
    return OK


@_compiled
def class_parents(forms, offsets, payload, plan, out):
    """The parent of every class written as a difference, -1 for one written whole.  Returns
    :data:`OK` or :data:`CORRUPT_CLASSES`."""
    for x in range(out.size):
        form, lo, hi = _class_place(forms, offsets, plan, x)
        if form < 0:
            return CORRUPT_CLASSES
        out[x] = -1
        if form == _DIFF:
            out[x], _added, _removed, _first = _diff_head(payload, plan, lo, hi)
            if out[x] < 0:
                return CORRUPT_CLASSES
    return OK


@_compiled
def _root_list(payload, plan, form, lo, hi, out):
    """A root class (list, complement or bitmap) as its shorter ascending list in ``out``:
    (length, whether it lists the genomes the class lacks), length -1 where out of range."""
    w, g = plan[2], plan[3]
    if form == _BITMAP:
        lacks = 2 * _bitmap_held(payload, lo, g) > g
        return _bitmap_list(payload, lo, g, lacks, out, 0), lacks
    n = int((hi - lo) // _U(w))
    for e in range(n):
        local = np.int64(field_select(payload, 0, lo + _U(e * w), w))
        if local >= g:
            return np.int64(-1), False
        out[e] = local
    return n, form == _COMPLEMENT


@_compiled
def _entry(payload, first, w, e):
    """Entry ``e`` (``w`` bits) of a list that starts at bit ``first`` of the payload."""
    return np.int64(field_select(payload, 0, first + _U(e * w), w))


@_compiled
def _apply_diff(payload, plan, first, added, removed, lacks, src, n, dst):
    """One difference applied to the ascending list ``src[:n]`` (the members, or where
    ``lacks`` the genomes lacked), written to ``dst``: its length, or -1 where the difference
    does not fit its parent (it adds a genome the parent holds, removes one it lacks, or its
    lists are not ascending) or leaves the group's genomes.  Members gain the genomes added and
    lose those removed; a list of genomes lacked gains the removed ones and loses the added
    ones."""
    w, g = plan[2], plan[3]
    # the entries the list gains (from bit gain) and those it loses
    gain, n_gain, lose, n_lose = first, added, first + _U(added * w), removed
    if lacks:
        gain, n_gain, lose, n_lose = lose, n_lose, gain, n_gain
    i = p = q = 0
    out = 0
    big = g + 1
    last_gain = -1
    while i < n or p < n_gain:
        x = src[i] if i < n else big
        y = _entry(payload, gain, w, p) if p < n_gain else big
        if y < big and (x == y or y >= g):
            return -1
        v = x if x <= y else y
        if x == v:
            i += 1
        else:
            if y <= last_gain:
                return -1
            last_gain = y
            p += 1
        if q < n_lose:
            z = _entry(payload, lose, w, q)
            if z < v:  # a genome removed that the list does not hold
                return -1
            if z == v:
                if v == y:  # added and removed at once
                    return -1
                q += 1
                continue
        if out >= g:
            return -1
        dst[out] = v
        out += 1
    return out if q == n_lose else -1


@_compiled
def class_members(forms, offsets, payload, plan, ids, complement, indptr, columns, work, chain):
    """The group positions of :func:`class_sizes`' forms, ascending, class i's at
    ``columns[indptr[i]:indptr[i + 1]]``.  ``work`` is (2, g) int64 and ``chain``
    :data:`MAX_CHAIN` int64, work space for differences.  Returns :data:`OK` or
    :data:`CORRUPT_CLASSES`."""
    w, g = plan[2], plan[3]
    for i in range(ids.size):
        form, lo, hi = _class_place(forms, offsets, plan, ids[i])
        if form < 0:
            return CORRUPT_CLASSES
        at = indptr[i]
        if form == _BITMAP:
            _bitmap_list(payload, lo, g, complement[i], columns, at)
            continue
        if form != _DIFF:
            for e in range(np.int64((hi - lo) // _U(w))):
                local = np.int64(field_select(payload, 0, lo + _U(e * w), w))
                if local >= g:
                    return CORRUPT_CLASSES
                columns[at] = local
                at += 1
            continue
        # a difference: its chain up to a root, then the differences applied root first
        depth = 0
        x = ids[i]
        while form == _DIFF:
            if depth >= MAX_CHAIN:
                return CORRUPT_CLASSES
            chain[depth] = x
            depth += 1
            x, _added, _removed, _first = _diff_head(payload, plan, lo, hi)
            if x < 0:
                return CORRUPT_CLASSES
            form, lo, hi = _class_place(forms, offsets, plan, x)
            if form < 0:
                return CORRUPT_CLASSES
        n, lacks = _root_list(payload, plan, form, lo, hi, work[0])
        if n < 0:
            return CORRUPT_CLASSES
        src, dst = work[0], work[1]
        for d in range(depth - 1, -1, -1):
            form, lo, hi = _class_place(forms, offsets, plan, chain[d])
            _parent, added, removed, first = _diff_head(payload, plan, lo, hi)
            n = _apply_diff(payload, plan, first, added, removed, lacks, src, n, dst)
            if n < 0:
                return CORRUPT_CLASSES
            src, dst = dst, src
        end = indptr[i + 1]
        if complement[i] == lacks:
            if n != end - at:
                return CORRUPT_CLASSES
            for e in range(n):
                columns[at + e] = src[e]
        else:
            if g - n != end - at:
                return CORRUPT_CLASSES
            e = 0
            for v in range(g):
                if e < n and src[e] == v:
                    e += 1
                else:
                    columns[at] = v
                    at += 1
    return OK


@_compiled
def _run_of(bounds, index, rank_at, r, x, near):
    """The run of unitig order ``x``: with ``near``, tried first at run ``r`` (the previous
    one); then the number of run starts up to x, less one, from the rank ``index`` or, where
    that is empty, a binary search of the bounds (see :func:`run_classes`)."""
    if near and np.int64(bounds[r]) <= x < np.int64(bounds[r + 1]):
        return r
    if index.size:
        return rank(index, 0, rank_at, _U(x + 1)) - 1
    lo, hi = 0, bounds.size - 1  # bounds[lo] <= x < bounds[hi]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if np.int64(bounds[mid]) <= x:
            lo = mid
        else:
            hi = mid
    return lo


@_compiled
def _run_prefetch(index, rank_at, at, i):
    """Prefetch the rank entry and bit word of ``at[i + 8]`` (see :func:`run_classes`)."""
    if i + 8 < at.size:
        word = (np.int64(at[i + 8]) + 1) >> 6
        _prefetch(index, rank_at + (word >> 4))
        _prefetch(index, word)


@_inlined
def _run_class(bounds, index, rank_at, at, runs, id_width, i, r, short):
    """(run, class) of unitig order ``at[i]`` (see :func:`run_classes`), ``r`` the run of the
    order before."""
    if short:
        _run_prefetch(index, rank_at, at, i)
    r = _run_of(bounds, index, rank_at, r, np.int64(at[i]), not short)
    return r, np.int64(field(runs, 0, _U(r) * _U(id_width), id_width))


@_compiled
def run_classes(bounds, index, rank_at, at, runs, id_width, n_classes, out, short):
    """The class of the run of each unitig order ``at[i]``: field ``id_width`` bits wide of
    ``runs`` at the last j with ``bounds[j] <= at[i]`` (``bounds`` ascending from 0 to n,
    ``at`` below n).  Returns :data:`OK`, or :data:`CORRUPT_CLASSES` where a run names a
    class of ``n_classes`` or more (then ``out`` is incomplete).

    With ``short`` runs (many genomes), ``index`` is the bit vector of the run starts (the
    bounds but the last) and its rank directory from word ``rank_at``
    (:func:`kmerdb.core.bits.rank_index`): the run of x is the rank of x + 1, less one, two
    cache lines of a structure of about a bit per k-mer, and the rank entry and bit word of the
    order 8 ahead are prefetched.  (A directory of the bounds and a walk forward took 16 ns per
    k-mer of 1,000 genomes' short runs, as the walks' lengths varied; the rank takes 4.)  Long
    runs (a few genomes) need no index, whose bit per k-mer would be more than their bounds:
    the previous run is tried first (a read's k-mers walk along them), then a binary search of
    the bounds (``index`` empty).
    """
    r = 0
    for i in range(at.size):
        r, c = _run_class(bounds, index, rank_at, at, runs, id_width, i, r, short)
        if c >= n_classes:
            return CORRUPT_CLASSES
        out[i] = c
    return OK


@_compiled
def run_byte_tally(bounds, index, rank_at, at, runs, id_width, n_classes, values, seqs, width, table, short):
    """:func:`run_classes` and :func:`byte_tally` in one pass, for classes of one byte of
    genomes: the class c of ``at[i]`` counts ``table[(seqs[i] << width) | (values[c] >> (8 -
    width))]``.  Returns :data:`OK` or :data:`CORRUPT_CLASSES` (then ``table`` is
    incomplete)."""
    down = 8 - width
    r = 0
    cell = -1
    count = 0
    for i in range(at.size):
        r, c = _run_class(bounds, index, rank_at, at, runs, id_width, i, r, short)
        if c >= n_classes:
            _flush_cell(table, cell, count)
            return CORRUPT_CLASSES
        cell, count = _count_cell(table, cell, count, (seqs[i] << width) | (np.int64(values[c]) >> down))
    _flush_cell(table, cell, count)
    return OK


@_compiled
def _lanes_add(lanes, row, lane, bitmap, a):
    """Add ``a`` (mod 256) to the byte lanes of word ``lane`` of row ``row`` of ``lanes``
    where the byte ``bitmap`` has its genomes: eight cells at once, with no carry between
    them (each wraps, as the narrow hits do)."""
    y = _SPREAD[bitmap] * _U(a & 255)
    x = lanes[row, lane]
    lanes[row, lane] = ((x & _LANE_LOW) + (y & _LANE_LOW)) ^ ((x ^ y) & _LANE_TOP)


@_inlined
def _expand(payload, plan, form, lo, hi, row, a, column_map, hits, everyone, lanes, lane_base):
    """Add ``a`` at the columns of the genomes of the class at payload bits ``lo:hi`` of form
    ``form`` in row ``row`` of ``hits``, or for a difference at those it adds, ``-a`` at those
    it removes.  With ``lane_base`` >= 0, ``lanes`` is ``hits`` (one byte a cell) as words and
    the group's genomes are its columns from ``8 * lane_base`` on: a bitmap is then added a
    byte at a time (:func:`_lanes_add`), with no branch per genome.  Returns OK or
    CORRUPT_CLASSES."""
    w, g = plan[2], plan[3]
    if form == _BITMAP and lane_base >= 0:
        # 1,000 genomes: 66 -> 58 ns per k-mer of class expansion, replayed (bitmaps are the
        # classes of middling size: a bit loop per genome mispredicted its exits)
        full = g >> 6
        for q in range(full):
            v = field_select(payload, 0, lo + _U(q << 6), 64)
            if v:
                for b in range(8):
                    _lanes_add(lanes, row, lane_base + 8 * q + b, (v >> _U(56 - 8 * b)) & _U(255), a)
        if g & 63:
            rest = g & 63
            v = field_select(payload, 0, lo + _U(full << 6), rest) << _U(64 - rest)
            for b in range((rest + 7) >> 3):
                _lanes_add(lanes, row, lane_base + 8 * full + b, (v >> _U(56 - 8 * b)) & _U(255), a)
        return OK
    if form == _DIFF:
        _parent, added, removed, first = _diff_head(payload, plan, lo, hi)
        for e in range(added + removed):
            local = _entry(payload, first, w, e)
            if local >= g:
                return CORRUPT_CLASSES
            col = column_map[local]
            if col >= 0:
                hits[row, col] += a if e < added else -a
        return OK
    if form == _BITMAP:
        lacks = 2 * _bitmap_held(payload, lo, g) > g
    else:
        lacks = form == _COMPLEMENT
    step = a
    if lacks:
        everyone[row] += a
        step = -a
    if form == _BITMAP:
        for t in range(0, g, 64):
            width = min(64, g - t)
            v = field_select(payload, 0, lo + _U(t), width) << _U(64 - width)  # genome t at the top
            if lacks:
                v = ~v & (_ALL << _U(64 - width))
            while v:
                j = np.int64(_leading_zeros(v))
                col = column_map[t + j]
                if col >= 0:
                    hits[row, col] += step
                v &= ~(_U(1) << _U(63 - j))
    else:
        for e in range(np.int64((hi - lo) // _U(w))):
            local = np.int64(field_select(payload, 0, lo + _U(e * w), w))
            if local >= g:
                return CORRUPT_CLASSES
            col = column_map[local]
            if col >= 0:
                hits[row, col] += step
    return OK


@_compiled
def class_hits(
    forms, offsets, payload, plan, ids, column_map, seq, amount, hits, rows, lanes, lane_base, everyone, state, visited
):
    """Add ``amount[i]`` to row ``seq[i]`` of ``hits`` at the columns (``column_map`` of the
    group positions, -1 left out) of the genomes of class ``ids[i]``, decoded from the class
    table in place.  A class of more than half the group's genomes adds its amount to
    ``everyone[seq[i]]`` instead (the caller adds it to every column of the group) and
    subtracts it where the class lacks a genome.

    A difference is its parent plus the genomes it adds less those it removes.  So the classes
    a run of pairs of one sequence reaches, its pairs' and their ancestors, are listed each
    once, ancestors before descendants; at the run's end, from the last, each class passes its
    amount on to its parent and is expanded once with it: a root in full, a difference by its
    few genomes.  Pairs may come in any order (a sequence's pairs together cost least).

    ``rows`` is ``hits`` as one flat array (or empty): the row of the sequence whose pairs
    start :data:`_ROW_AHEAD` pairs ahead is prefetched whole.  A group's pass visits every
    sequence's row in turn, so each row comes from the last-level cache once per group, and
    its expansions waited on it.  ``lanes`` and ``lane_base``: see :func:`_expand`.  Work space:
    ``state`` (c, 3) int64 zero, so again on return (per class its amount, its place in the
    list plus one, its parent plus one: one cache line), ``visited`` (c, 4) int64 (each listed
    class, its form and payload bits).  Returns :data:`OK` or :data:`CORRUPT_CLASSES` (then the
    hits are incomplete)."""
    c = plan[4]
    offset_width = plan[0]
    n_columns = hits.shape[1]
    line_items = max(1, 64 // rows.itemsize)
    n_visited = 0
    for i in range(ids.size):
        if i + _AHEAD < ids.size:
            # the class table words of a later pair are fetched while this one expands: the
            # expansion waited on them (class tables are most of a large index)
            later = ids[i + _AHEAD]
            if 0 <= later < c:
                start = field_select(offsets, 0, _U(later) * _U(offset_width), offset_width)
                q = np.int64(start >> _U(6))
                _prefetch(payload, q)
                _prefetch(payload, q + 8)
                _prefetch(state, later)  # its row
        ahead = i + _ROW_AHEAD
        if ahead < ids.size and rows.size and seq[ahead] != seq[ahead - 1]:
            first = seq[ahead] * n_columns
            for j in range(0, n_columns, line_items):
                _prefetch(rows, first + j)
        row = seq[i]
        x = ids[i]
        if x < 0 or x >= c:
            return CORRUPT_CLASSES
        if state[x, 1] == 0:
            # x and the ancestors this sequence has not reached, listed ancestors first
            top = n_visited
            y = x
            for depth in range(MAX_CHAIN + 2):
                form, lo, hi = _class_place(forms, offsets, plan, y)
                if form < 0 or depth > MAX_CHAIN:  # a root past MAX_CHAIN differences
                    return CORRUPT_CLASSES
                n_visited += 1
                state[y, 1] = n_visited
                visited[n_visited - 1, 0] = y
                visited[n_visited - 1, 1] = form
                visited[n_visited - 1, 2] = np.int64(lo)
                visited[n_visited - 1, 3] = np.int64(hi)
                if form != _DIFF:
                    state[y, 2] = 0
                    break
                p, _added, _removed, _first = _diff_head(payload, plan, lo, hi)
                if p < 0 or state[p, 1] > top:  # out of range, or a cycle
                    return CORRUPT_CLASSES
                state[y, 2] = p + 1
                if state[p, 1] > 0:
                    break
                y = p
            left, right = top, n_visited - 1
            while left < right:
                for f in range(4):
                    visited[left, f], visited[right, f] = visited[right, f], visited[left, f]
                left += 1
                right -= 1
        state[x, 0] += amount[i]
        if i + 1 == ids.size or seq[i + 1] != row:
            for v in range(n_visited - 1, -1, -1):
                x = visited[v, 0]
                a = state[x, 0]
                if state[x, 2] > 0:
                    state[state[x, 2] - 1, 0] += a
                status = _expand(
                    payload, plan, visited[v, 1], _U(visited[v, 2]), _U(visited[v, 3]), row, a, column_map, hits,
                    everyone, lanes, lane_base,
                )
                if status != OK:
                    return CORRUPT_CLASSES
                state[x, 0] = 0
                state[x, 1] = 0
                state[x, 2] = 0
            n_visited = 0
    return OK


@_compiled
def _union_root(link, x):
    """Root of ``x`` in the union-find forest ``link``, halving its path."""
    while link[x] != x:
        link[x] = link[link[x]]
        x = link[x]
    return x


@_compiled
def class_forest(a, b, order, by_cost, depth_cut, parent, link, head, after, to, queue, depth):
    """Parents of classes written as differences: a minimum spanning forest of the class
    pairs ``(a[e], b[e])`` taken in ``order`` (ascending weight), each tree rooted at its
    first class in ``by_cost`` (the cheapest written alone) and cut below every
    ``depth_cut`` levels, so no chain is longer.

    ``parent`` (c int64) receives each class's parent, -1 for a root.  ``link``, ``head``,
    ``queue`` and ``depth`` (c int64) and ``after`` and ``to`` (2c int64) are work space."""
    c = parent.size
    for x in range(c):
        link[x] = x
        head[x] = -1
        depth[x] = -1
        parent[x] = -1
    n_to = 0
    for t in range(order.size):
        e = order[t]
        ra, rb = _union_root(link, a[e]), _union_root(link, b[e])
        if ra == rb:
            continue
        link[ra] = rb
        # the edge, both ways, in linked lists of each end's edges
        to[n_to] = b[e]
        after[n_to] = head[a[e]]
        head[a[e]] = n_to
        n_to += 1
        to[n_to] = a[e]
        after[n_to] = head[b[e]]
        head[b[e]] = n_to
        n_to += 1
    for t in range(by_cost.size):
        r = by_cost[t]
        if depth[r] >= 0 or head[r] < 0:
            continue
        depth[r] = 0
        queue[0] = r
        n_queue, done = 1, 0
        while done < n_queue:
            x = queue[done]
            done += 1
            edge = head[x]
            while edge >= 0:
                y = to[edge]
                if depth[y] < 0:
                    if depth[x] < depth_cut:
                        parent[y] = x
                        depth[y] = depth[x] + 1
                    else:
                        depth[y] = 0  # a root again: chains stay short
                    queue[n_queue] = y
                    n_queue += 1
                edge = after[edge]
    return OK
