"""A minimal perfect hash function found by pilots (PTHash, Pibiri and Trani 2021).

Each key is hashed once and sent to a *bucket*; each bucket keeps a small number, its
*pilot*, chosen at build time so that its keys, hashed again with it, land on table positions
no other key takes.  A lookup is one hash, one pilot and one more hash: no levels to walk and
no rank to take, so it costs a third of :class:`~kmerdb.core.mphf.MPHF`'s (3.3 against 9.4 ns
per key over 300,000 keys, in random order), for about as many bits (3.5 against 3.1).  The
dictionary's skew index, looked up for most k-mers of a large collection, uses it.

Construction.  ``h`` is the seeded splitmix64 finalizer of a key.  Its low 32 bits send 60 %
of the keys to the first 30 % of the ``B = ceil(c n / log2 n)`` buckets (c = 5), its high 32
bits pick one there by multiply-shift: skewed buckets, as PTHash's, leave few keys for the
last buckets placed.  Buckets are placed largest first, each with the first pilot from 0 under
which its keys take free, distinct positions of a table of ``T = ceil(n / 0.99)``: a position
is the high 32 bits of ``splitmix64(h ^ pilot * 0x9E3779B97F4A7C15)`` times T, shifted down by
32.  A key whose position is n or more has its slot in a table of the positions below n left
free (``free[p - n]``), so slots are ``[0, n)``.  A bucket that finds no pilot in 65,536 trials
starts the build again with the next seed (duplicate keys never fit, and are reported).

Serialized layout: one 1-D little-endian uint64 array::

    word  field
    0     MAGIC ("kmerPILT" as little-endian bytes)
    1     VERSION
    2     n, the keys
    3     seed
    4     B, buckets
    5     dense buckets (those that take the keys whose low hash bits are below word 6)
    6     the split, a 32-bit threshold
    7     T, table positions (n <= T < 2**32)
    8     pilot width, bits
    9     free-slot width, bits
    10    start of the pilots: B fields
    11    total length, in words
    12..  the pilots, then the free slots: T - n fields, each below n
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from kmerdb.core import bits, kernels
from kmerdb.core.mphf import HashFunction, as_keys
from kmerdb.errors import CorruptDatabaseError, InvalidParameterError

__all__ = ["PilotMPHF", "MAGIC", "VERSION"]

MAGIC = int.from_bytes(b"kmerPILT", "little")
VERSION = 1
HEADER_WORDS = 12
#: Keys per bucket are log2(n) / _C on average.
_C = 5.0
#: Keys per table position.
_ALPHA = 0.99
# 60 % of the keys go to the first 30 % of the buckets.
_DENSE_KEYS = 0.6
_DENSE_BUCKETS = 0.3
_MAX_TRIALS = 1 << 16
_MAX_SEEDS = 16
#: A table position must fit 32 bits (multiply-shift).
MAX_KEYS = int(_ALPHA * (2**32 - 1))
_U64 = np.dtype("<u8")


def _shape(n: int) -> tuple[int, int, int, int]:
    """Buckets, dense buckets, split and table size for ``n`` keys."""
    if not n:
        return 0, 0, 0, 0
    n_buckets = max(1, math.ceil(_C * n / max(1.0, math.log2(n))))
    return n_buckets, int(n_buckets * _DENSE_BUCKETS), int(_DENSE_KEYS * 2**32), max(n, math.ceil(n / _ALPHA))


class PilotMPHF(HashFunction):
    """A minimal perfect hash function from n distinct uint64 keys onto ``[0, n)``, one probe
    per key.

    Built with :meth:`build`, serialized with :meth:`to_array`, loaded back without a copy
    with :meth:`from_array`.  Any other key maps to some slot in ``[0, n)``: callers confirm
    membership with their own evidence.

    Attributes
    ----------
    n : int
        Keys the function was built on.
    seed : int
        Seed of the hash.
    plan : ndarray of uint64
        What the compiled lookup reads (:data:`kmerdb.core.kernels.PILOT_PLAN` fields).
    """

    __slots__ = ("seed",)

    def __init__(self, array: np.ndarray, *, source: str = "<pilot mphf>") -> None:
        """Wrap a serialized array (see :meth:`from_array`); validates it."""
        arr, head = bits.read_header(array, HEADER_WORDS, MAGIC, VERSION, source, "a pilot hash function")
        _, _, n, seed, n_buckets, dense, split, size, width, free_width, pilots_at, total = head
        if total != arr.size or not arr.flags.c_contiguous or arr.dtype != _U64:
            raise CorruptDatabaseError(source, "a pilot hash function of the wrong length or layout")
        if (
            n > MAX_KEYS or (n > 0) != (n_buckets > 0) or not n <= size < 2**32 or n_buckets >= 2**32
            or dense > n_buckets or split >= 2**32 or pilots_at != HEADER_WORDS
        ):
            raise CorruptDatabaseError(source, "pilot hash function header out of range")
        bits.check_fields(arr.size, [(n_buckets, width), (size - n, free_width)], source, "pilot hash function")
        free_at = pilots_at + bits.n_words(n_buckets, width)
        if free_at + bits.n_words(size - n, free_width) != total:
            raise CorruptDatabaseError(source, "pilot hash function sections out of place")
        base = arr.view(np.ndarray)
        # a free slot is the slot itself: none may reach n (it would index past the caller's table)
        if size > n and int(bits.unpack(base[free_at:total], size - n, free_width).max()) >= n:
            raise CorruptDatabaseError(source, "a pilot hash function's free slot is out of range")
        self._array = arr
        self._base = base
        self.n = n
        self.seed = seed
        plan = np.zeros(kernels.PILOT_PLAN, dtype=np.uint64)
        for at, value in (
            (kernels.PILOT_N, n), (kernels.PILOT_SEED, seed), (kernels.PILOT_BUCKETS, n_buckets),
            (kernels.PILOT_DENSE, dense), (kernels.PILOT_SPLIT, split), (kernels.PILOT_TABLE, size),
            (kernels.PILOT_WIDTH, width), (kernels.PILOT_AT, pilots_at), (kernels.PILOT_FREE_WIDTH, free_width),
            (kernels.PILOT_FREE_AT, free_at),
        ):
            plan[at] = value
        self.plan = plan

    @classmethod
    def build(cls, keys: np.ndarray, *, seed: int = 0) -> PilotMPHF:
        """Build the function of a set of distinct keys.

        Parameters
        ----------
        keys : ndarray
            1-D array of distinct non-negative integer keys (uint64 or converted to it).
        seed : int, optional
            First seed tried, 0 <= seed < 2**64; the result is a pure function of keys and seed.

        Returns
        -------
        PilotMPHF

        Raises
        ------
        InvalidParameterError
            Keys not a 1-D array of non-negative integers, repeated, or too many
            (:data:`MAX_KEYS`); a seed out of range.
        """
        return cls.build_with_slots(keys, seed=seed)[0]

    @classmethod
    def build_with_slots(cls, keys: np.ndarray, *, seed: int = 0) -> tuple[PilotMPHF, np.ndarray]:
        """:meth:`build`, and the slot of each key (int64, ``lookup(keys)``)."""
        keys = np.ascontiguousarray(as_keys(keys, "keys"))
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**64:
            raise InvalidParameterError("seed", seed, "must be an integer in [0, 2**64)")
        n = keys.size
        if n > MAX_KEYS:
            raise InvalidParameterError("keys", f"{n} keys", f"a pilot hash function holds at most {MAX_KEYS} keys")
        n_buckets, dense, split, size = _shape(n)
        for attempt in range(_MAX_SEEDS):
            s = (int(seed) + attempt) % 2**64
            head = [MAGIC, VERSION, n, s, n_buckets, dense, split, size, 1, 1, HEADER_WORDS, 0]
            plan = PilotMPHF._plan_of(head)
            hashes = np.empty(n, dtype=np.uint64)
            buckets = np.empty(n, dtype=np.int64)
            starts = np.zeros(n_buckets + 2, dtype=np.int64)
            members = np.empty(n, dtype=np.int64)
            order = np.empty(n_buckets, dtype=np.int64)
            largest = kernels.pilot_buckets(plan, keys, hashes, buckets, starts)
            kernels.pilot_group(buckets, starts, members, order, np.zeros(largest + 2, dtype=np.int64))
            taken = np.zeros(-(-size // 64), dtype=np.uint64)
            pilots = np.zeros(n_buckets, dtype=np.uint64)
            work = np.empty(max(1, largest), dtype=np.uint64)
            status = kernels.pilot_search(plan, hashes, members, starts, order, taken, pilots, work, _MAX_TRIALS)
            if status == kernels.OK:
                return cls._assembled(head, keys, pilots, np.unpackbits(taken.view(np.uint8), bitorder="little")[:size])
            distinct = np.unique(hashes).size
            if distinct < n:  # equal keys hash alike: no pilot separates them
                raise InvalidParameterError("keys", f"{n - distinct} repeated entries", "keys must be distinct")
        raise InvalidParameterError("keys", f"{n} keys", f"no pilots found with {_MAX_SEEDS} seeds")

    @staticmethod
    def _plan_of(head: list[int]) -> np.ndarray:
        """The plan of a build in progress (sections not yet laid out)."""
        plan = np.zeros(kernels.PILOT_PLAN, dtype=np.uint64)
        plan[kernels.PILOT_N], plan[kernels.PILOT_SEED], plan[kernels.PILOT_BUCKETS] = head[2], head[3], head[4]
        plan[kernels.PILOT_DENSE], plan[kernels.PILOT_SPLIT], plan[kernels.PILOT_TABLE] = head[5], head[6], head[7]
        return plan

    @classmethod
    def _assembled(
        cls, head: list[int], keys: np.ndarray, pilots: np.ndarray, taken: np.ndarray
    ) -> tuple[PilotMPHF, np.ndarray]:
        n, size = head[2], head[7]
        taken = taken.astype(bool)
        # each taken position past n stands for the next position below n that none took
        free = np.zeros(size - n, dtype=np.uint64)
        high = np.flatnonzero(taken[n:])
        free[high] = np.flatnonzero(~taken[:n])[: high.size]
        width = bits.width_for(int(pilots.max(initial=0)))
        free_width = bits.width_for(max(n - 1, 0))
        sections = [bits.pack(pilots, width), bits.pack(free, free_width)]
        head[8], head[9] = width, free_width
        head[11] = HEADER_WORDS + sum(s.size for s in sections)
        array = np.concatenate([np.array(head, dtype=np.uint64), *sections]).astype(_U64)
        mphf = cls(array)
        return mphf, mphf.lookup(keys)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Slot of each key (int64): each build key its own in ``[0, n)``, any other key some
        slot in ``[0, n)`` (-1 for every key of an empty function)."""
        keys = np.ascontiguousarray(as_keys(keys, "keys"))
        out = np.empty(keys.size, dtype=np.int64)
        kernels.pilot_lookup(self._base, self.plan, keys, out)
        return out

    @classmethod
    def from_array(cls, arr: np.ndarray, *, source: str = "<pilot mphf>") -> PilotMPHF:
        """Load a function from :meth:`to_array`'s array (a memmap is used in place).

        Raises
        ------
        CorruptDatabaseError
            Not a pilot hash function of a supported version, or inconsistent.
        """
        return cls(arr, source=source)

    def __repr__(self) -> str:
        return f"PilotMPHF(n={self.n}, bits_per_key={self.bits_per_key():.3f})"
