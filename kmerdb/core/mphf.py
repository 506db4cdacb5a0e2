"""A minimal perfect hash function (MPHF) over uint64 keys.

The construction follows BBHash (Limasset et al. 2017): a cascade of bit
arrays.  Level ``i`` hashes each key still unplaced into a bit array of
``size_i ~ gamma * m_i`` bits (``m_i`` keys reach the level); a position hit by
exactly one key gets a 1 bit and that key is placed, the others fall through to
the next level.  The slot of a key is the number of 1 bits before its bit over
the concatenation of all levels (a rank query), so slots are ``[0, n - F)``.
The ``F`` keys left after the last level sit in a sorted fallback table whose
entry ``j`` owns slot ``n - F + j``.

Hashing.  Every key is first mixed once by a seeded splitmix64 finalizer
(``h0``), a bijection on uint64, so distinct keys never share ``h0``; the
fallback table therefore stores ``h0`` values and duplicate keys show up as
equal entries there.  Level 0 maps the top 32 bits of ``h0`` to a position by
multiply-shift, ``((h >> 32) * size) >> 32``; level ``i > 0`` first multiplies
``h0 ^ salt_i`` by an odd per-level constant (both derived from the seed), which
makes the levels' collisions independent.

Serialized layout.  :meth:`MPHF.to_array` returns one 1-D little-endian
``uint64`` array (saved as one ``.npy`` file)::

    word   field
    0      MAGIC ("kmerMPHF" as little-endian bytes)
    1      VERSION
    2      n, the number of keys
    3      seed
    4      L, the number of levels
    5      F, the number of fallback entries
    6      W, the number of bit words (a multiple of 4; the padding is zero)
    7      gamma, as the bits of a float64 (informative only)
    8      bits_start    (word offset of the bit words)
    9      rank_start    (word offset of the rank table)
    10     fallback_start(word offset of the fallback table)
    11     total length of the array, in words
    12..   L level sizes in bits (each a multiple of 64; level offsets are
           their running sum)
    bits_start      W bit words, levels back to back; bit b of the
                    concatenation is bit (b & 63) of word (b >> 6)
    rank_start      ceil(W / 16) rank entries, one per 1024-bit block:
                    bits 0-31 = number of 1 bits before the block, and bits
                    32-41, 42-51, 52-61 = number of 1 bits in the first 4, 8,
                    12 words of the block
    fallback_start  F sorted ``h0`` values of the fallback keys

The rank directory costs 64 bits per 1024 (6.25 %) on disk.  Its 32-bit
absolute counts limit an MPHF to fewer than 2**32 keys, far above what one
partition layer holds.  A rank reads the block's entry, its quarter's count,
at most three words before the bit's and the bit's own word.

Build is whole-array numpy, level by level.  Lookup is compiled
(:mod:`kmerdb.core.kernels`): a batch of keys walks each level without a branch
per key, then each placed key's bit is ranked.

:meth:`MPHF.from_array` takes views (slices) of the array, so a read-only
``np.memmap`` from ``np.load(path, mmap_mode="r")`` is used in place.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod

import numpy as np

from kmerdb.core import bits, kernels
from kmerdb.errors import CorruptDatabaseError, InvalidParameterError

__all__ = ["HashFunction", "MPHF", "DEFAULT_GAMMA", "as_keys"]

#: Default ratio of bit-array size to the number of keys reaching a level.
#: 1.5 gives ~3.1 bits per key in total and places 51 % of the keys in level 0
#: (member keys walk 1.95 levels on average, other keys stop at the first 1 bit,
#: after ~2.9 levels).  Measured lookups were no faster at 2.0 (3.5 bits per key)
#: or 2.5 (4.0): the rank query, done once per key, dominates.
DEFAULT_GAMMA = 1.5

MAGIC = int.from_bytes(b"kmerMPHF", "little")
VERSION = 1
HEADER_WORDS = 12
MAX_LEVELS = 48
#: Below this many keys left, a level (a 64-bit word plus its header entry)
#: costs as much as fallback entries (64 bits each), so stop there.
FALLBACK_THRESHOLD = 4
#: Rank directory granularity: one uint64 per 16 bit words (1024 bits).
RANK_BLOCK_WORDS = bits.RANK_BLOCK_WORDS
MAX_KEYS = 2**32 - 1
# Keys a lookup walks level by level at a time (:func:`kmerdb.core.kernels.mphf_lookup`):
# measured within noise from 256 to 4096.
_BATCH = 1024
#: Block length of the element-wise hashing loops (fits in L2 with its temporaries).
_BLOCK = 1 << 16

_U64 = np.dtype("<u8")
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1
_S32 = np.uint64(32)
_S6 = np.uint64(6)
_B63 = np.uint64(63)
_ONE = np.uint64(1)


def _splitmix64(x: int) -> int:
    """Scalar splitmix64 step, used to derive per-level constants from the seed."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _level_constants(seed: int, n_levels: int) -> tuple[np.uint64, list[np.uint64], list[np.uint64]]:
    """The base-hash salt and, per level, an xor salt and an odd multiplier."""
    base = np.uint64(_splitmix64(seed & _MASK64))
    salts, mults = [], []
    state = int(base)
    for _ in range(n_levels):
        state = _splitmix64(state)
        salts.append(np.uint64(state))
        state = _splitmix64(state)
        mults.append(np.uint64(state | 1))
    return base, salts, mults


def _base_hash(keys: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Seeded splitmix64 finalizer of each key: a bijection on uint64."""
    h = np.empty(len(keys), dtype=np.uint64)
    t = np.empty(min(len(keys), _BLOCK), dtype=np.uint64)
    # Block-wise and in place: whole-array temporaries of big inputs cost
    # page faults and cache misses that dominate the arithmetic.
    for start in range(0, len(keys), _BLOCK):
        x = h[start : start + _BLOCK]
        tx = t[: len(x)]
        np.bitwise_xor(keys[start : start + _BLOCK], salt, out=x)
        np.right_shift(x, np.uint64(30), out=tx)
        x ^= tx
        x *= _M1
        np.right_shift(x, np.uint64(27), out=tx)
        x ^= tx
        x *= _M2
        np.right_shift(x, np.uint64(31), out=tx)
        x ^= tx
    return h


def _level_pos(h0: np.ndarray, size: int, salt: np.uint64 | None, mult: np.uint64 | None) -> np.ndarray:
    """Position in ``[0, size)`` of each hashed key at one level (level 0: no salt).

    Returned as uint64; the values are < 2**63, so ``.view(np.intp)`` indexes with them.
    """
    pos = np.empty(len(h0), dtype=np.uint64)
    wide = size >= 2**32  # multiply-shift needs size < 2**32; a modulo is fine for such rare sizes
    for start in range(0, len(h0), _BLOCK):
        x = pos[start : start + _BLOCK]
        if salt is None or mult is None:  # level 0 (neither is given): h0 is already well mixed
            if wide:
                x[...] = h0[start : start + _BLOCK]
            else:
                np.right_shift(h0[start : start + _BLOCK], _S32, out=x)
        else:
            np.bitwise_xor(h0[start : start + _BLOCK], salt, out=x)
            x *= mult
            if not wide:
                x >>= _S32
        if wide:
            x ^= x >> _S32
            x %= np.uint64(size)
        else:
            x *= np.uint64(size)  # < 2**64 because both factors are < 2**32
            x >>= _S32
    return pos


def as_keys(keys: np.ndarray, argument: str) -> np.ndarray:
    """Validate and view ``keys`` as a 1-D uint64 array (copying only if needed)."""
    arr = np.asarray(keys)
    if arr.ndim != 1:
        raise InvalidParameterError(argument, f"array of shape {arr.shape}", "must be a 1-D array")
    if arr.dtype == _U64 or arr.dtype == np.uint64:
        return arr
    if arr.size == 0:
        return arr.astype(np.uint64)
    if arr.dtype.kind == "u":
        return arr.astype(np.uint64)
    if arr.dtype.kind == "i":
        if arr.min() < 0:
            raise InvalidParameterError(argument, f"array with minimum {arr.min()}", "keys must be >= 0")
        return arr.astype(np.uint64)
    raise InvalidParameterError(
        argument, f"array of dtype {arr.dtype}", "keys must be unsigned 64-bit integers"
    )


class HashFunction(ABC):
    """What every minimal perfect hash function of kmerdb is: one self-describing uint64 array
    (``_array``, and ``_base`` its plain-ndarray view), the number of keys ``n`` and the
    ``plan`` its compiled lookup reads (what the header implies)."""

    __slots__ = ("_array", "_base", "n", "plan")
    _array: np.ndarray
    _base: np.ndarray
    n: int
    plan: np.ndarray

    @abstractmethod
    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Slot of each key (int64): each build key its own in ``[0, n)``."""

    def to_array(self) -> np.ndarray:
        """The whole function as one self-describing 1-D little-endian uint64 array (save it
        with ``np.save``, load it back with ``from_array``)."""
        return self._array

    def lookup_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The array (a plain-ndarray view of :meth:`to_array`) and plan that the compiled
        lookup of :mod:`kmerdb.core.kernels` reads."""
        return self._base, self.plan

    @property
    def nbytes(self) -> int:
        """Size in bytes of :meth:`to_array` (everything the function needs)."""
        return int(self._array.nbytes)

    def bits_per_key(self) -> float:
        """Total size in bits divided by the number of keys (0 keys: total bits)."""
        return self.nbytes * 8 / max(self.n, 1)

    def __len__(self) -> int:
        return self.n


class MPHF(HashFunction):
    """A minimal perfect hash function from n distinct uint64 keys onto ``[0, n)``.

    Built with :meth:`build`, serialized with :meth:`to_array` into one
    self-describing uint64 array and loaded back (without copying) with
    :meth:`from_array`.  Keys outside the build set map to an arbitrary slot or
    to -1; callers confirm membership with their own evidence.

    Attributes
    ----------
    n : int
        Number of keys the function was built on.
    seed : int
        Seed of the hash functions.
    gamma : float
        Bit-array size factor used at build time.
    n_levels : int
        Number of bit-array levels.
    n_fallback : int
        Number of keys stored in the fallback table.
    """

    __slots__ = (
        "_base_salt",
        "_fallback",
        "_mults",
        "_offsets",
        "_rank",
        "_salts",
        "_sizes",
        "_words",
        "gamma",
        "n_fallback",
        "n_levels",
        "seed",
    )

    def __init__(self, array: np.ndarray, *, source: str = "<mphf>") -> None:
        """Wrap a serialized array (see :meth:`from_array`); validates the header."""
        self._array = array
        header = _parse_header(array, source)
        self.n = header["n"]
        self.seed = header["seed"]
        self.gamma = header["gamma"]
        self.n_levels = header["L"]
        self.n_fallback = header["F"]
        self._sizes = header["sizes"]
        self._offsets = header["offsets"]
        # Plain-ndarray views: no copy of a memmap, and results of take() on them
        # are ordinary arrays rather than memmap instances.
        base = array.view(np.ndarray)
        self._words = base[header["bits_start"] : header["rank_start"]]
        self._rank = base[header["rank_start"] : header["fallback_start"]]
        self._fallback = base[header["fallback_start"] : header["total"]]
        self._base = base
        self._base_salt, self._salts, self._mults = _level_constants(self.seed, self.n_levels)
        plan = [self.n, self.n_fallback, int(self._base_salt), header["bits_start"], header["rank_start"],
                header["fallback_start"], self.n_levels]
        for level in range(self.n_levels):
            salt, mult = (int(self._salts[level - 1]), int(self._mults[level - 1])) if level else (0, 0)
            plan += [self._sizes[level], self._offsets[level], salt, mult]
        self.plan = np.array(plan, dtype=np.uint64)

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, keys: np.ndarray, *, gamma: float = DEFAULT_GAMMA, seed: int = 0) -> MPHF:
        """Build the MPHF of a set of distinct keys.

        Parameters
        ----------
        keys : numpy.ndarray
            1-D array of distinct keys, uint64 (other non-negative integer
            dtypes are converted).
        gamma : float, optional
            Bit-array bits per key reaching a level, 1 <= gamma <= 16.  Larger
            means fewer levels and a bigger function; the default gives ~3.1
            bits per key.
        seed : int, optional
            Hash seed, 0 <= seed < 2**64.  The result is a pure function of
            keys, gamma and seed.

        Returns
        -------
        MPHF

        Raises
        ------
        InvalidParameterError
            If keys are not a 1-D integer array, contain negative values or
            duplicates, or hold 2**32 keys or more; if gamma or seed are out of range.

        Notes
        -----
        Peak memory is about 30 bytes per key besides ``keys`` (hashes, level-0
        positions and their ``np.bincount``).  Duplicates are found for free:
        equal keys collide at every level and end up side by side in the
        fallback table (or stall a level, which triggers a sort of the rest).
        """
        return cls._construct(keys, gamma, seed, False)[0]

    @classmethod
    def build_with_slots(cls, keys: np.ndarray, *, gamma: float = DEFAULT_GAMMA, seed: int = 0) -> tuple[MPHF, np.ndarray]:
        """:meth:`build`, and the slot of each key (int64, equal to ``lookup(keys)``), known from
        the construction: a build need not look its own keys up.  Costs 16 more bytes per key
        of peak memory than :meth:`build`."""
        mphf, slots = cls._construct(keys, gamma, seed, True)
        assert slots is not None
        return mphf, slots

    @classmethod
    def _construct(cls, keys: np.ndarray, gamma: float, seed: int, track: bool) -> tuple[MPHF, np.ndarray | None]:
        keys = as_keys(keys, "keys")
        if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 1.0 <= float(gamma) <= 16.0:
            raise InvalidParameterError("gamma", gamma, "must be a number between 1 and 16")
        gamma = float(gamma)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**64:
            raise InvalidParameterError("seed", seed, "must be an integer in [0, 2**64)")
        seed = int(seed)
        n = len(keys)
        if n > MAX_KEYS:
            raise InvalidParameterError("keys", f"{n} keys", f"an MPHF holds at most {MAX_KEYS} keys")
        base_salt, salts, mults = _level_constants(seed, MAX_LEVELS)

        sizes: list[int] = []
        level_words: list[np.ndarray] = []
        h = _base_hash(keys, base_salt) if n else np.empty(0, np.uint64)
        # with ``track``: the index of each key still in h, and the keys placed with their bits
        index = np.arange(n, dtype=np.int64) if track else None
        placed_keys: list[np.ndarray] = []
        placed_bits: list[np.ndarray] = []
        while len(h) > FALLBACK_THRESHOLD and len(sizes) < MAX_LEVELS:
            level = len(sizes)
            m = len(h)
            size = max(64, -(-math.ceil(gamma * m) // 64) * 64)
            salt, mult = (salts[level - 1], mults[level - 1]) if level else (None, None)
            pos = _level_pos(h, size, salt, mult).view(np.intp)
            # A position is kept only if exactly one key hashes to it.
            single = np.bincount(pos, minlength=size) == 1
            level_words.append(np.packbits(single, bitorder="little").view(_U64))
            placed = single.take(pos)
            if index is not None:
                at = np.flatnonzero(placed)
                placed_keys.append(index.take(at))
                placed_bits.append(pos.take(at) + sum(sizes))
                index = index.compress(~placed)
            del pos, single
            h = h.compress(~placed)  # ~5x faster than boolean-mask indexing
            del placed
            sizes.append(size)
            if len(h) > 0.9 * m and m >= 64:
                # gamma >= 1 places about a third or more of distinct keys per level;
                # placing almost none means the keys repeat.
                _check_distinct(h)
        order = np.argsort(h)
        fallback = h.take(order)
        _check_distinct(fallback, is_sorted=True)

        n_words = sum(sizes) // 64
        padded = -(-n_words // 4) * 4  # whole quarters, as the rank directory counts them
        L, F = len(sizes), len(fallback)
        bits_start = HEADER_WORDS + L
        rank_start = bits_start + padded
        fallback_start = rank_start + -(-padded // RANK_BLOCK_WORDS)
        total = fallback_start + F
        out = np.zeros(total, dtype=_U64)
        out[:HEADER_WORDS] = [
            MAGIC,
            VERSION,
            n,
            seed,
            L,
            F,
            padded,
            np.float64(gamma).view(np.uint64),
            bits_start,
            rank_start,
            fallback_start,
            total,
        ]
        out[HEADER_WORDS:bits_start] = sizes
        if level_words:
            np.concatenate(level_words, out=out[bits_start : bits_start + n_words])
        out[rank_start:fallback_start] = bits.rank_directory(out[bits_start:rank_start])
        out[fallback_start:] = fallback
        out.flags.writeable = False  # to_array() hands it out; nothing may change it
        if index is None:
            return cls(out), None
        slots = np.empty(n, dtype=np.int64)
        if placed_keys:
            # a placed key's slot is the rank of its bit: the 1 bits of the words before its
            # word and of its word below it
            words = out[bits_start:rank_start]
            before = np.zeros(words.size + 1, dtype=np.int64)
            np.cumsum(np.bitwise_count(words), out=before[1:])
            g = np.concatenate(placed_bits).astype(np.uint64)
            w = (g >> _S6).view(np.intp)
            below = words.take(w) & ((_ONE << (g & _B63)) - _ONE)
            slots[np.concatenate(placed_keys)] = before.take(w) + np.bitwise_count(below)
        slots[index.take(order)] = np.arange(n - F, n, dtype=np.int64)  # the fallback's slots
        return cls(out), slots

    # ----------------------------------------------------------------- lookup
    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Slot of each key.

        Parameters
        ----------
        keys : numpy.ndarray
            1-D array of uint64 keys (other non-negative integer dtypes are
            converted).

        Returns
        -------
        numpy.ndarray
            int64 array of the same length.  Each build key gets its own slot
            in ``[0, n)``; any other key gets a value in ``[0, n)`` or -1.
        """
        keys = as_keys(keys, "keys")
        out = np.empty(len(keys), dtype=np.int64)
        kernels.mphf_lookup(
            self._base, self.plan, np.ascontiguousarray(keys), out, np.empty(_BATCH, dtype=np.uint64),
            np.empty(_BATCH, dtype=np.int64),
        )
        return out

    # ---------------------------------------------------------- serialization
    @classmethod
    def from_array(cls, arr: np.ndarray, *, source: str = "<mphf>") -> MPHF:
        """Load an MPHF from the array made by :meth:`to_array`.

        The bit words, rank directory and fallback table are views of ``arr``:
        a read-only ``np.memmap`` is used in place, not copied.

        Parameters
        ----------
        arr : numpy.ndarray
            1-D uint64 array, e.g. ``np.load(path, mmap_mode="r")``.
        source : str, optional
            Name reported in errors (e.g. the file path).

        Returns
        -------
        MPHF

        Raises
        ------
        CorruptDatabaseError
            If the array is not an MPHF of a supported version or its header
            and length are inconsistent.
        """
        return cls(arr, source=source)

    def __repr__(self) -> str:
        return (
            f"MPHF(n={self.n}, levels={self.n_levels}, fallback={self.n_fallback}, "
            f"bits_per_key={self.bits_per_key():.3f})"
        )


def _check_distinct(h: np.ndarray, *, is_sorted: bool = False) -> None:
    """Raise if two base hashes are equal, i.e. the keys had a duplicate."""
    s = h if is_sorted else np.sort(h)
    n_equal = int(np.count_nonzero(s[1:] == s[:-1]))
    if n_equal:
        raise InvalidParameterError("keys", f"{n_equal} repeated entries", "keys must be distinct")


def _parse_header(arr: np.ndarray, source: str) -> dict:
    """Validate the header of a serialized MPHF against the array length."""

    def bad(reason: str) -> CorruptDatabaseError:
        return CorruptDatabaseError(source, f"not a valid MPHF array: {reason}")

    if not isinstance(arr, np.ndarray) or arr.ndim != 1:
        raise bad("expected a 1-D array")
    if arr.dtype != _U64:
        raise bad(f"dtype {arr.dtype}, expected little-endian uint64")
    if not arr.flags.c_contiguous:
        raise bad("array is not contiguous")
    if len(arr) < HEADER_WORDS:
        raise bad(f"{len(arr)} words is shorter than the {HEADER_WORDS}-word header")
    head = [int(v) for v in arr[:HEADER_WORDS]]
    magic, version, n, seed, L, F, W, gamma_bits, bits_start, rank_start, fallback_start, total = head
    if magic != MAGIC:
        raise bad("bad magic number")
    if version != VERSION:
        raise bad(f"format version {version}, this kmerdb reads version {VERSION}")
    if total != len(arr):
        raise bad(f"header says {total} words, array has {len(arr)}")
    if not (L <= MAX_LEVELS and F <= n <= MAX_KEYS and W % 4 == 0):
        raise bad("inconsistent counts in header")
    if (
        bits_start != HEADER_WORDS + L
        or rank_start != bits_start + W
        or fallback_start != rank_start + -(-W // RANK_BLOCK_WORDS)
        or total != fallback_start + F
    ):
        raise bad("section offsets do not match the header counts")
    sizes = np.array(arr[HEADER_WORDS:bits_start], dtype=np.int64)
    if len(sizes) and (np.any(sizes <= 0) or np.any(sizes % 64)):
        raise bad("level sizes must be positive multiples of 64")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if L else sizes
    if int(sizes.sum()) > W * 64 or W * 64 - int(sizes.sum()) >= 4 * 64:
        raise bad("level sizes do not match the number of bit words")
    if W:
        # The rank directory's last entry plus the last block's popcount must be n - F.
        last_block = (W - 1) // RANK_BLOCK_WORDS
        last = int(arr[rank_start + last_block]) & 0xFFFFFFFF
        last += int(np.bitwise_count(arr[bits_start + last_block * RANK_BLOCK_WORDS : rank_start]).sum())
        if last != n - F:
            raise bad(f"bit arrays hold {last} keys, header says {n - F}")
    elif n != F:
        raise bad("no bit arrays but keys outside the fallback")
    fallback = arr[fallback_start:total]
    if F > 1 and not np.all(fallback[1:] > fallback[:-1]):
        raise bad("fallback table is not strictly increasing")
    gamma = float(np.array(gamma_bits, dtype=np.uint64).view(np.float64))
    return {
        "n": n,
        "seed": seed,
        "L": L,
        "F": F,
        "gamma": gamma,
        "sizes": sizes.tolist(),
        "offsets": offsets.tolist(),
        "bits_start": bits_start,
        "rank_start": rank_start,
        "fallback_start": fallback_start,
        "total": total,
    }
