"""Evidence: what confirms that a key the MPHF maps to a slot is the k-mer of that slot.

An MPHF maps every key to some slot, members and strangers alike; the evidence of the
slot decides.  Two kinds:

``exact``
    The start, in the layer's unitig sequence (:mod:`kmerdb.unitigs`), of the slot's
    k-mer, bit-packed in ``ceil(log2(bases))`` bits.  A key is a member when the k bases
    there spell it (in either orientation).  No false positives; the k-mers themselves
    live only once, in the unitigs.
``approx``
    A B-bit fingerprint of the slot's k-mer (1 <= B <= 32), bit-packed.  A key is
    accepted when its fingerprint matches.  A stranger that the MPHF maps to a slot
    matches with probability 2**-B (strangers that fall off the MPHF's last level are
    rejected outright, so the rate is a little below 2**-B).  Fingerprints are the top B
    bits of a seeded 64-bit mixer (murmur3's finalizer) that is independent of the
    MPHF's own hashing.

Serialized layout: one 1-D little-endian uint64 array (one ``.npy`` file)::

    word   field
    0      MAGIC ("kmerEVID" as little-endian bytes)
    1      VERSION
    2      kind: 0 exact, 1 approx
    3      n, the number of slots
    4      width of a field, in bits (exact: position bits; approx: B)
    5      seed of the fingerprint mixer (approx), 0 (exact)
    6      data_start (word offset of the fields)
    7      total length of the array, in words
    data_start  n bit-packed fields, slot order (see :mod:`kmerdb.bits`)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from kmerdb.core import bits
from kmerdb.core.kmers import canonical, mix64, reverse_complement
from kmerdb.errors import CorruptDatabaseError, InvalidParameterError

__all__ = [
    "EXACT",
    "APPROX",
    "FINGERPRINT_SEED",
    "EvidenceKind",
    "ExactEvidence",
    "ApproxEvidence",
    "register_evidence",
    "evidence_kind",
    "evidence_for",
    "fingerprints",
    "exact_evidence",
    "approx_evidence",
    "Evidence",
    "z_rule",
]

MAGIC = int.from_bytes(b"kmerEVID", "little")
#: Version 2 (format 3): exact evidence stores the unitig order of a slot's k-mer (bits(n - 1)
#: bits); version 1 stored its start base in the unitig sequence (bits(bases - 1) bits), and is
#: read.  Approximate evidence is the same in both.
VERSION = 2
_READ_VERSIONS = (1, 2)
HEADER_WORDS = 8
EXACT, APPROX = 0, 1

#: Seed of the fingerprint mixer; fixed so that indexes of equal (B, z) can be merged.
FINGERPRINT_SEED = 0x5BD1E9955BD1E995


def fingerprints(keys: np.ndarray, fp_bits: int, seed: int = FINGERPRINT_SEED) -> np.ndarray:
    """The ``fp_bits``-bit fingerprint (uint64) of each canonical k-mer."""
    return mix64(np.asarray(keys, dtype=np.uint64), seed) >> np.uint64(64 - fp_bits)


def _array(code: int, width: int, seed: int, values: np.ndarray) -> np.ndarray:
    words = bits.pack(values, width)
    out = np.empty(HEADER_WORDS + words.size, dtype="<u8")
    out[:HEADER_WORDS] = [MAGIC, VERSION, code, values.size, width, seed, HEADER_WORDS, out.size]
    out[HEADER_WORDS:] = words
    return out


# --------------------------------------------------------------------------------------
# kinds
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvidenceKind(ABC):
    """A kind of evidence and its parameters; one registered subclass per kind.

    The class writes the evidence array of a layer (:meth:`encode`) and checks keys
    against it (:meth:`check`); :class:`Evidence` reads the array and hands the checks to
    the kind its header names.
    """

    #: Name in the configuration and in reports (``Config.evidence``).
    name: ClassVar[str]
    #: Code in the array header.
    code: ClassVar[int]
    #: Whether :meth:`check` is exact (no false positives).
    exact: ClassVar[bool]

    @classmethod
    @abstractmethod
    def for_config(cls, config) -> EvidenceKind:
        """The evidence a :class:`~kmerdb.config.Config` asks for."""

    @classmethod
    @abstractmethod
    def from_header(cls, width: int, seed: int) -> EvidenceKind | None:
        """The kind an array header describes, None if the header cannot be of this kind."""

    @property
    @abstractmethod
    def tag(self) -> str:
        """Names the kind and its parameters in file names (``exact``, ``approx8``)."""

    @property
    def fp_bits(self) -> int:
        """Fingerprint bits, 0 for none."""
        return 0

    @property
    def false_positive_rate(self) -> float:
        """Chance that one lookup of a stranger is accepted (at most)."""
        return 0.0 if self.exact else 2.0**-self.fp_bits

    @abstractmethod
    def encode(self, keys: np.ndarray, slots: np.ndarray, ordinals: np.ndarray) -> np.ndarray:
        """The evidence array of a layer.

        Parameters
        ----------
        keys, slots, ordinals : ndarray
            Each k-mer, its MPHF slot and its unitig order (the rank of its k-mer in the
            layer's unitig sequence).
        """

    @abstractmethod
    def check(self, stored: np.ndarray, keys: np.ndarray, unitigs) -> np.ndarray:
        """Whether each canonical key is the k-mer whose stored field is ``stored`` (for exact
        evidence: the start base of the slot's k-mer, see :meth:`Evidence.check`)."""

    def kmers_by_slot(self, evidence: Evidence, unitigs, mphf) -> np.ndarray:
        """Every k-mer of a layer in slot order, from its evidence, unitigs and MPHF."""
        kmers = unitigs.kmers()
        out = np.empty_like(kmers)
        out[mphf.lookup(kmers)] = kmers
        return out


_BY_NAME: dict[str, type[EvidenceKind]] = {}
_BY_CODE: dict[int, type[EvidenceKind]] = {}


def register_evidence(cls: type[EvidenceKind]) -> type[EvidenceKind]:
    """Register an :class:`EvidenceKind` subclass under its name and code (a decorator)."""
    _BY_NAME[cls.name] = cls
    _BY_CODE[cls.code] = cls
    return cls


def evidence_kind(name: str) -> type[EvidenceKind]:
    """The evidence kind registered under ``name``.

    Raises
    ------
    InvalidParameterError
        If none is.
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise InvalidParameterError("evidence", name, f"expected one of {', '.join(sorted(_BY_NAME))}") from None


def evidence_for(config) -> EvidenceKind:
    """The evidence (kind and parameters) a :class:`~kmerdb.config.Config` asks for."""
    return evidence_kind(config.evidence).for_config(config)


@register_evidence
@dataclass(frozen=True)
class ExactEvidence(EvidenceKind):
    """The unitig position of each slot's k-mer: no false positives."""

    name = "exact"
    code = EXACT
    exact = True

    @classmethod
    def for_config(cls, config) -> ExactEvidence:
        return cls()

    @classmethod
    def from_header(cls, width: int, seed: int) -> ExactEvidence | None:
        return cls() if 1 <= width <= 64 else None

    @property
    def tag(self) -> str:
        return "exact"

    def encode(self, keys, slots, ordinals):
        by_slot = np.empty(np.asarray(keys).size, dtype=np.int64)
        by_slot[slots] = ordinals
        return exact_evidence(by_slot)

    def check(self, stored, keys, unitigs):
        kmer = unitigs.kmer_at(stored)
        # the unitig may read the k-mer in either orientation; keys are canonical
        return (kmer == keys) | (reverse_complement(kmer, unitigs.k) == keys)

    def kmers_by_slot(self, evidence, unitigs, mphf):
        # the evidence of a slot says where its k-mer is in the unitigs
        return canonical(unitigs.kmer_at(evidence.positions(np.arange(evidence.n), unitigs)), unitigs.k)


@register_evidence
@dataclass(frozen=True)
class ApproxEvidence(EvidenceKind):
    """A B-bit fingerprint of each slot's k-mer: false positives at a rate of about 2**-B."""

    name = "approx"
    code = APPROX
    exact = False

    bits: int = 8
    seed: int = FINGERPRINT_SEED

    @classmethod
    def for_config(cls, config) -> ApproxEvidence:
        return cls(int(config.fp_bits))

    @classmethod
    def from_header(cls, width: int, seed: int) -> ApproxEvidence | None:
        return cls(width, seed) if 1 <= width <= 32 else None

    @property
    def tag(self) -> str:
        return f"approx{self.bits}"

    @property
    def fp_bits(self) -> int:
        return self.bits

    def encode(self, keys, slots, ordinals):
        by_slot = np.empty_like(np.asarray(keys, dtype=np.uint64))
        by_slot[slots] = keys
        return approx_evidence(by_slot, self.bits)

    def check(self, stored, keys, unitigs):
        return stored == fingerprints(keys, self.bits, self.seed)


def exact_evidence(ordinals_by_slot: np.ndarray) -> np.ndarray:
    """Exact evidence array: the unitig order of each slot's k-mer (a permutation of 0..n-1).

    Parameters
    ----------
    ordinals_by_slot : ndarray of int
        Rank, in the layer's unitig sequence, of the k-mer of each slot.
    """
    values = np.asarray(ordinals_by_slot, dtype=np.uint64)
    return _array(EXACT, bits.width_for(max(values.size - 1, 0)), 0, values)


def approx_evidence(keys_by_slot: np.ndarray, fp_bits: int) -> np.ndarray:
    """Approximate evidence array: the ``fp_bits``-bit fingerprint of each slot's k-mer."""
    if not 1 <= fp_bits <= 32:
        raise ValueError(f"fingerprint bits must be 1..32, got {fp_bits}")
    return _array(APPROX, fp_bits, FINGERPRINT_SEED, fingerprints(keys_by_slot, fp_bits))


class Evidence:
    """A serialized evidence array, read in place.

    Parameters
    ----------
    array : ndarray of uint64
        Made by an :class:`EvidenceKind` (:func:`exact_evidence`, :func:`approx_evidence`).
    source : str
        Name reported in errors.

    Attributes
    ----------
    scheme : EvidenceKind
        The kind and parameters the header names; it does the checks.

    Raises
    ------
    CorruptDatabaseError
        If the header and the array disagree.
    """

    def __init__(self, array: np.ndarray, source: str = "<evidence>") -> None:
        arr, head = bits.read_header(array, HEADER_WORDS, MAGIC, _READ_VERSIONS, source, "an evidence array")
        _, version, code, n, width, seed, start, total = head
        bits.check_fields(arr.size, [(n, width)], source, "an evidence array")
        kind = _BY_CODE.get(code)
        scheme = kind.from_header(width, seed) if kind is not None else None
        if scheme is None or start != HEADER_WORDS or total != arr.size or total != start + bits.n_words(n, width):
            raise CorruptDatabaseError(source, "evidence array header and length disagree")
        self.source = source
        self.version = version
        self.scheme = scheme
        self.kind = scheme.name
        self.n = n
        self.width = width
        self.seed = seed
        self.words = arr[start:total]
        self.nbytes = int(arr.nbytes)

    @property
    def exact(self) -> bool:
        """Whether :meth:`check` has no false positives."""
        return self.scheme.exact

    @property
    def fp_bits(self) -> int:
        """Fingerprint bits (approx), 0 for exact evidence."""
        return self.scheme.fp_bits

    def values(self, slots: np.ndarray) -> np.ndarray:
        """The stored field of each slot (uint64)."""
        return bits.unpack(self.words, self.n, self.width, slots)

    def check(self, keys: np.ndarray, slots: np.ndarray, unitigs) -> np.ndarray:
        """Whether each canonical key is the k-mer of its slot (approx: may say yes wrongly).

        Parameters
        ----------
        keys : ndarray of uint64
            Canonical k-mers.
        slots : ndarray of int
            The MPHF slot of each key (in ``[0, n)``).
        unitigs : UnitigSet
            The layer's unitigs (exact evidence reads the k-mers there).
        """
        stored = self.positions(slots, unitigs) if self.exact else self.values(slots)
        return self.scheme.check(stored, keys, unitigs)

    def positions(self, slots: np.ndarray, unitigs) -> np.ndarray:
        """Start base (uint64) in the unitigs of the k-mer of each slot (exact evidence)."""
        values = self.values(slots)
        return values if self.version == 1 else unitigs.base_of(values)

    def ordinals(self, slots: np.ndarray, unitigs) -> np.ndarray:
        """Unitig order (int64) of the k-mer of each slot (exact evidence).

        Raises
        ------
        CorruptDatabaseError
            A stored field beyond the layer (version 2: not below n).
        """
        values = self.values(slots)
        if self.version == 1:
            return unitigs.ordinal_of(values)
        if values.size and int(values.max()) >= self.n:
            raise CorruptDatabaseError(self.source, f"a slot names k-mer {int(values.max())} of {self.n}")
        return values.view(np.int64)

    def kmers(self, unitigs, mphf) -> np.ndarray:
        """Every k-mer of the layer (canonical uint64) in slot order."""
        return self.scheme.kmers_by_slot(self, unitigs, mphf)


def z_rule(positions: np.ndarray, found: np.ndarray, z: int) -> np.ndarray:
    """The consecutive-hit rule: which found k-mer positions lie in a run of >= z+1 found ones.

    Parameters
    ----------
    positions : ndarray of int
        Start of every valid k-mer window, ascending.  Two positions are consecutive when
        they differ by 1; a window that is not a k-mer (a non-ACGT base, the end of a
        sequence, the gap between two sequences) breaks runs.
    found : ndarray of bool
        Whether the k-mer at each position was found.
    z : int
        Neighbours a found k-mer needs: a run shorter than z+1 counts for nothing.

    Returns
    -------
    ndarray of bool
        ``found`` restricted to runs of at least z+1 consecutive found positions.
    """
    found = np.asarray(found, dtype=bool)
    if z <= 0 or not found.any():
        return found.copy()
    at = np.flatnonzero(found)
    pos = np.asarray(positions)[at]
    new_run = np.empty(at.size, dtype=bool)
    new_run[0] = True
    np.not_equal(pos[1:] - pos[:-1], 1, out=new_run[1:])
    run = np.cumsum(new_run) - 1
    long_enough = np.bincount(run)[run] >= z + 1
    out = np.zeros(found.size, dtype=bool)
    out[at[long_enough]] = True
    return out
