"""Index configuration, fixed when a database is created, and on-disk constants."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kmerdb.errors import InvalidParameterError

__all__ = ["Config", "FORMAT_VERSION", "KMER_DTYPE", "default_m", "DEFAULT_PARTITIONS", "COLOUR_ENCODINGS"]

#: On-disk format version, written once at creation and checked on every open.
FORMAT_VERSION = 6

#: k-mers are 2-bit codes (A=0 C=1 G=2 T=3, first base most significant) in little-endian uint64.
KMER_DTYPE = np.dtype("<u8")

#: Partition count when none is given.  A constant (not derived from the input size)
#: so that indexes built separately with default settings can be merged.
DEFAULT_PARTITIONS = 64
#: What ``Config.colours`` may be.
COLOUR_ENCODINGS = ("auto", "dense", "classes")

MAX_K = 31
EVIDENCE_KINDS = ("exact", "approx")


def default_m(k: int) -> int:
    """Default minimizer length for ``k``: about k/2, made odd (15 at k = 31).

    Odd lengths cannot equal their own reverse complement, so every canonical
    minimizer is strictly smaller than its reverse complement.  Longer minimizers are
    shared by fewer super-k-mers, so fewer lookups scan a bucket of several: at k = 31 on
    three bacterial genomes, 13 put 43% of a query's k-mers in such buckets and 15 put 15%
    (query 40 -> 37 ns per k-mer, index 11.7 -> 12.5 bits per k-mer, build time alike).
    """
    return max(1, min(k, int(k / 2) | 1))


@dataclass(frozen=True)
class Config:
    """Configuration of an index; immutable after creation.

    Parameters
    ----------
    k : int
        k-mer length, 1 <= k <= 31.
    m : int
        Minimizer length, 1 <= m <= k.
    n_partitions : int
        Number of minimizer partitions, >= 1.
    evidence : {"exact", "approx"}
        How membership is confirmed after the MPHF lookup.
    fp_bits : int
        Fingerprint bits per k-mer (approx evidence only), 1..32; 0 for exact.
    z : int
        Consecutive-hit rule for approx evidence: a k-mer of a query sequence counts
        only inside a run of at least z+1 found k-mers; 0 for exact.
    counts : bool
        Whether count columns are kept (else presence bits).
    colours : {"auto", "dense", "classes"}
        How genome columns are stored: ``dense`` rows of bits (or counts) per k-mer,
        ``classes`` a colour-class id per k-mer and each distinct set of genomes once, or
        ``auto``, the smaller of the two for each column group written.
    """

    k: int = 31
    m: int = 13
    n_partitions: int = DEFAULT_PARTITIONS
    evidence: str = "exact"
    fp_bits: int = 0
    z: int = 0
    counts: bool = False
    colours: str = "auto"

    def __post_init__(self) -> None:
        if self.colours not in COLOUR_ENCODINGS:
            raise InvalidParameterError("colours", self.colours, f"must be one of {', '.join(COLOUR_ENCODINGS)}")
        if not isinstance(self.k, int) or not 1 <= self.k <= MAX_K:
            raise InvalidParameterError("k", self.k, f"must be an integer from 1 to {MAX_K}")
        if not isinstance(self.m, int) or not 1 <= self.m <= self.k:
            raise InvalidParameterError("m", self.m, f"must be an integer from 1 to k={self.k}")
        if not isinstance(self.n_partitions, int) or not 1 <= self.n_partitions <= 65536:
            raise InvalidParameterError("partitions", self.n_partitions, "must be an integer from 1 to 65536")
        if self.evidence not in EVIDENCE_KINDS:
            raise InvalidParameterError("evidence", self.evidence, "must be 'exact' or 'approx'")
        if self.evidence == "approx":
            if not isinstance(self.fp_bits, int) or not 1 <= self.fp_bits <= 32:
                raise InvalidParameterError("fp_bits", self.fp_bits, "must be an integer from 1 to 32")
            if not isinstance(self.z, int) or self.z < 0:
                raise InvalidParameterError("z", self.z, "must be an integer >= 0")
        elif self.fp_bits or self.z:
            raise InvalidParameterError("fp_bits", self.fp_bits, "fingerprint bits and z apply to approx evidence only")

    @classmethod
    def create(
        cls,
        k: int = 31,
        m: int | None = None,
        partitions: int | None = None,
        evidence: str = "exact",
        fp_bits: int | None = None,
        z: int | None = None,
        counts: bool = False,
        colours: str = "auto",
    ) -> Config:
        """Make a config from user-facing arguments, filling defaults."""
        if not isinstance(k, int) or isinstance(k, bool):
            raise InvalidParameterError("k", k, "must be an integer")
        if evidence == "approx":
            fp_bits = 8 if fp_bits is None else fp_bits
            z = 0 if z is None else z
        else:
            fp_bits = fp_bits or 0
            z = z or 0
        return cls(
            k=k,
            m=default_m(k) if m is None and 1 <= k <= MAX_K else (m if m is not None else 1),
            n_partitions=DEFAULT_PARTITIONS if partitions is None else partitions,
            evidence=evidence,
            fp_bits=fp_bits,
            z=z,
            counts=bool(counts),
            colours=colours,
        )

    def to_record(self) -> dict:
        """Plain dict for the catalog."""
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict) -> Config:
        """Inverse of :meth:`to_record`; ignores unknown keys of the same format version."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{key: rec[key] for key in names if key in rec})
