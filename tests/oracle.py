"""Brute-force reference for k-mer results, in plain Python.

Deliberately slow and simple: no numpy, no dnaio, its own small FASTA/FASTQ
reader.  Tests compare the real implementation against these functions, so
each one is written to be obviously right rather than fast.

Conventions (the same as the product's):

* bases are A, C, G, T, case-insensitive; any other character (N, IUPAC codes,
  gaps) breaks k-mers, so no k-mer window may contain one;
* a canonical k-mer is the smaller of the upper-cased k-mer and its reverse
  complement; since A < C < G < T in ASCII, string order equals the order of
  the 2-bit codes (A=0, C=1, G=2, T=3, first base most significant).
"""

from __future__ import annotations

import gzip
from collections import Counter

BASES = "ACGT"
_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


def _open_text(path):
    """Open ``path`` for reading text, gunzipping if it starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="ascii")
    return open(path, encoding="ascii")


def read_sequences(path) -> list[tuple[str, str]]:
    """All records of a FASTA or FASTQ file (plain or gzip) as ``(id, sequence)``.

    The id is the header up to the first whitespace.  FASTQ records must be
    four lines each.  Malformed input raises ValueError.
    """
    with _open_text(path) as fh:
        lines = [line.rstrip("\r\n") for line in fh]
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return []
    if lines[0].startswith(">"):
        return _parse_fasta(lines)
    if lines[0].startswith("@"):
        return _parse_fastq(lines)
    raise ValueError(f"{path}: neither FASTA ('>') nor FASTQ ('@')")


def _header_id(header: str) -> str:
    words = header[1:].split()
    return words[0] if words else ""


def _parse_fasta(lines: list[str]) -> list[tuple[str, str]]:
    records = []
    for line in lines:
        if line.startswith(">"):
            records.append((_header_id(line), []))
        else:
            records[-1][1].append(line.strip())
    return [(rid, "".join(parts)) for rid, parts in records]


def _parse_fastq(lines: list[str]) -> list[tuple[str, str]]:
    if len(lines) % 4 != 0:
        raise ValueError("FASTQ: number of lines is not a multiple of 4")
    records = []
    for i in range(0, len(lines), 4):
        header, seq, plus, qual = lines[i : i + 4]
        if not header.startswith("@") or not plus.startswith("+"):
            raise ValueError(f"FASTQ: malformed record at line {i + 1}")
        if len(seq) != len(qual):
            raise ValueError(f"FASTQ: sequence and quality lengths differ at line {i + 1}")
        records.append((_header_id(header), seq))
    return records


def reverse_complement(kmer: str) -> str:
    """Reverse complement of an ACGT string (upper-cased first)."""
    return "".join(_COMPLEMENT[base] for base in reversed(kmer.upper()))


def canonical(kmer: str) -> str:
    """The smaller of the upper-cased k-mer and its reverse complement."""
    kmer = kmer.upper()
    return min(kmer, reverse_complement(kmer))


def is_valid(kmer: str) -> bool:
    """True if every character is one of ACGT (either case)."""
    return all(base in BASES for base in kmer.upper())


def kmers(seq: str, k: int) -> list[str]:
    """Canonical k-mers of every window of ``seq`` made only of ACGT, in order."""
    out = []
    for i in range(len(seq) - k + 1):
        window = seq[i : i + k]
        if is_valid(window):
            out.append(canonical(window))
    return out


def count_kmers(seqs, k: int) -> dict[str, int]:
    """Occurrences of each canonical k-mer over all sequences."""
    counts: Counter[str] = Counter()
    for seq in seqs:
        counts.update(kmers(seq, k))
    return dict(counts)


def encode(kmer: str) -> int:
    """2-bit code: A=0 C=1 G=2 T=3, first base most significant."""
    code = 0
    for base in kmer.upper():
        code = code * 4 + BASES.index(base)
    return code


def decode(code: int, k: int) -> str:
    """Inverse of :func:`encode` for a k-mer of length ``k``."""
    bases = []
    for _ in range(k):
        bases.append(BASES[code % 4])
        code //= 4
    return "".join(reversed(bases))


def minimizer(kmer: str, m: int, hash_fn) -> str:
    """Canonical m-mer of ``kmer`` with the smallest ``hash_fn(encode(m-mer))``.

    Ties between different m-mers (possible only if ``hash_fn`` collides) go to
    the smaller code.  The set of canonical m-mers is the same for a k-mer and
    its reverse complement, so both get the same minimizer.
    """
    if not is_valid(kmer):
        raise ValueError(f"not an ACGT k-mer: {kmer!r}")
    candidates = [canonical(kmer[i : i + m]) for i in range(len(kmer) - m + 1)]
    return min(candidates, key=lambda mmer: (hash_fn(encode(mmer)), encode(mmer)))


def genome_sets(genomes: dict[str, list], k: int) -> dict[str, dict[str, int]]:
    """Canonical k-mer counts of each genome, all records of all its files together."""
    result = {}
    for label, paths in genomes.items():
        seqs = [seq for path in paths for _rid, seq in read_sequences(path)]
        result[label] = count_kmers(seqs, k)
    return result


def query_hits(seq: str, genome_sets: dict[str, dict[str, int]], k: int) -> tuple[dict[str, int], int]:
    """For each genome, how many valid k-mer positions of ``seq`` it contains.

    Returns ``(hits, n_kmers)``: ``hits[label]`` counts positions (a k-mer
    occurring twice in ``seq`` counts twice) whose canonical k-mer is in that
    genome; ``n_kmers`` is the number of valid positions.
    """
    positions = kmers(seq, k)
    hits = {label: sum(1 for kmer in positions if kmer in counts) for label, counts in genome_sets.items()}
    return hits, len(positions)
