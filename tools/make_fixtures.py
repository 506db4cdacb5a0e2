#!/usr/bin/env python3
"""Write the small, deterministic test fixtures in ``fixtures/``.

    python tools/make_fixtures.py [--out fixtures]

Every byte follows from FIXTURE_SEED, so running this twice gives identical
files (gzip members are written with mtime 0 and no file name).  Genomes A, B
and C are three leaves of one simulated family (tools/simulate.py), so they
share most k-mers; the collection is a separate small family.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import simulate

FIXTURE_SEED = 20240531
FAMILY_LENGTH = 30_000
FAMILY_DIVERGENCE = 0.015
REPO = Path(__file__).resolve().parent.parent


def _gzip(data: bytes) -> bytes:
    # mtime=0 and no embedded name keep the bytes reproducible.
    return gzip.compress(data, compresslevel=9, mtime=0)


def _rc(seq: bytes) -> bytes:
    return simulate.reverse_complement(np.frombuffer(seq, dtype=np.uint8)).tobytes()


def _lower(seq: bytearray, start: int, end: int) -> None:
    seq[start:end] = bytes(seq[start:end]).lower()


def genome_a_records(raw: bytes) -> list[tuple[str, str, bytes, int]]:
    """Genome A as (id, description, sequence, line width) records with edge cases.

    chr1: lowercase stretches, a run of N, IUPAC R and Y; wrapped at 60.
    chr2: leading Ns, a lowercase stretch, an inner N run; wrapped at 70.
    tiny: 20 bases, shorter than any usual k.
    """
    chr1 = bytearray(raw[:17_000])
    _lower(chr1, 2_000, 2_600)
    _lower(chr1, 9_000, 9_300)
    chr1[5_000:5_050] = b"N" * 50
    chr1[12_000:12_001] = b"R"
    chr1[12_345:12_346] = b"Y"
    chr2 = bytearray(raw[17_000:])
    chr2[:10] = b"N" * 10
    _lower(chr2, 4_000, 4_500)
    chr2[7_000:7_100] = b"N" * 100
    tiny = raw[:20]  # shares its k-mers with the start of chr1
    return [
        ("chr1", "simulated genome A chromosome 1", bytes(chr1), 60),
        ("chr2", "simulated genome A chromosome 2", bytes(chr2), 70),
        ("tiny", "20 bp record, shorter than k", bytes(tiny), 60),
    ]


def sample_reads(
    rng: np.random.Generator, source: str, records: list[tuple[str, bytes]], n: int, length: int
) -> list[tuple[str, bytes]]:
    """Exact reads (no errors) from records longer than ``length``, half reverse-complemented."""
    usable = [(rid, seq) for rid, seq in records if len(seq) >= length]
    sizes = np.array([len(s) - length + 1 for _, s in usable], dtype=np.float64)
    out = []
    for _ in range(n):
        rid, seq = usable[int(rng.choice(len(usable), p=sizes / sizes.sum()))]
        start = int(rng.integers(0, len(seq) - length + 1))
        read = seq[start : start + length]
        strand = "rev" if rng.random() < 0.5 else "fwd"
        if strand == "rev":
            read = _rc(read)
        out.append((f"{source}_{rid}_{start}_{strand}", read))
    return out


def write_fixtures(out: Path) -> list[Path]:
    """Write every fixture below ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bad").mkdir(exist_ok=True)
    written: dict[str, bytes] = {}

    family = simulate.simulate_family(3, FAMILY_LENGTH, FAMILY_DIVERGENCE, FIXTURE_SEED)
    a_raw, b_raw, c_raw = (seq for _name, seq in family)

    # Genome A: plain multi-record FASTA with the awkward cases.
    a_records = genome_a_records(a_raw)
    written["genome_a.fa"] = b"".join(simulate.fasta_bytes(r, s, w, d) for r, d, s, w in a_records)

    # Genome B: two records, gzip.
    b_records = [("b1", b_raw[:20_000]), ("b2", b_raw[20_000:])]
    written["genome_b.fa.gz"] = _gzip(
        b"".join(simulate.fasta_bytes(r, s, 60, f"simulated genome B part {i + 1}") for i, (r, s) in enumerate(b_records))
    )

    # Genome C: the reference and ~1.5x of 150 bp reads with a few substitution errors.
    written["genome_c_ref.fa"] = simulate.fasta_bytes("c1", c_raw, 60, "simulated genome C")
    rng = np.random.default_rng([FIXTURE_SEED, 1])
    reads = simulate.simulate_reads(np.frombuffer(c_raw, dtype=np.uint8), 300, 150, 0.003, rng)
    written["genome_c.fq"] = simulate.fastq_bytes("C", *reads)

    # Query reads: exact reads from A (as written, case and Ns included), B and C, plus random ones.
    rng = np.random.default_rng([FIXTURE_SEED, 2])
    query = sample_reads(rng, "A", [(r, s) for r, _d, s, _w in a_records], 15, 150)
    # Two deliberate A reads across the lowercase stretch and the N run of chr1.
    chr1 = a_records[0][2]
    query += [("A_chr1_1950_fwd_lowercase", chr1[1_950:2_100]), ("A_chr1_4950_fwd_Nrun", chr1[4_950:5_100])]
    query += sample_reads(rng, "B", b_records, 15, 150)
    query += sample_reads(rng, "C", [("c1", c_raw)], 15, 150)
    query += [(f"random_{i + 1}", simulate.random_bases(rng, 150).tobytes()) for i in range(5)]
    written["reads.fa"] = b"".join(simulate.fasta_bytes(r, s, 70) for r, s in query)

    # A collection of four small related genomes in one file (one genome per record).
    strains = simulate.simulate_family(4, 4_000, 0.02, FIXTURE_SEED + 1)
    written["collection.fa"] = b"".join(
        simulate.fasta_bytes(f"strain{letter}", seq, 60, f"simulated strain {letter}")
        for letter, (_name, seq) in zip("WXYZ", strains)
    )

    written["manifest.tsv"] = b"A\tgenome_a.fa\nB\tgenome_b.fa.gz\nC\tgenome_c.fq\n"

    # Malformed inputs, each failing in one specific way.
    rng = np.random.default_rng([FIXTURE_SEED, 3])
    binary = bytearray(rng.integers(0, 256, size=512, dtype=np.uint8).tobytes())
    binary[0:2] = b"\x7fE"  # not '>' / '@' / gzip magic
    binary[10] = binary[100] = binary[300] = 0
    good_fq = b"@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nTTGCATTGCA\n+\nIIIIIIIIII\n"
    written["bad/empty.fa"] = b""
    written["bad/binary.fa"] = bytes(binary)
    written["bad/no_header.fa"] = b"ACGTACGTACGTACGTACGTACGTACGTACGTACGT\nTTGACCATGACCATGACCAGTTGACCA\n"
    written["bad/truncated.fq"] = good_fq + b"@r3\nGGCATTACGA\n+\n"
    written["bad/qual_mismatch.fq"] = good_fq + b"@r3\nGGCATTACGA\n+\nIIIII\n"
    written["bad/bad_chars.fq"] = good_fq + b"@r3\nGGC\xe9TT1*GA\n+\nIIIIIIIIII\n"
    written["bad/not_gzip.fa.gz"] = b">plain\nACGTACGTACGTACGTACGTACGTACGTACGTACGT\n"
    full = _gzip(simulate.fasta_bytes("cut", b_raw[:5_000], 60))
    written["bad/truncated.fa.gz"] = full[: len(full) // 2]

    written["README.md"] = readme(written).encode()

    paths = []
    for rel, data in written.items():
        path = out / rel
        path.write_bytes(data)
        paths.append(path)
    return paths


_DESCRIPTIONS = {
    "genome_a.fa": "Genome A, plain FASTA, 3 records: `chr1` (17 kbp, lowercase stretches at 2000-2600 and "
    "9000-9300, `N`x50 at 5000, IUPAC `R` at 12000 and `Y` at 12345, lines of 60), `chr2` (~13 kbp, "
    "10 leading `N`, lowercase 4000-4500, `N`x100 at 7000, lines of 70), `tiny` (20 bp, shorter than k).",
    "genome_b.fa.gz": "Genome B, gzip FASTA, records `b1` (20 kbp) and `b2` (~10 kbp); a sibling leaf of A.",
    "genome_c_ref.fa": "Genome C (third leaf of the family) as one FASTA record `c1`.",
    "genome_c.fq": "300 reads of 150 bp sampled from genome C, both strands, substitution errors at 0.3% "
    "(quality `+` = Q10 marks an error, `I` = Q40 otherwise); header gives `pos`, `strand`, `errors`. "
    "Coverage is only ~1.5x: about a fifth of C is in no read, and errors add k-mers absent from C.",
    "reads.fa": "52 error-free 150 bp query reads. Id `<source>_<record>_<start>_<fwd|rev>`: 15+2 from A "
    "(the two extra, suffixed `_lowercase` and `_Nrun`, cross chr1's lowercase stretch and N run), 15 from B, 15 from C; `random_1`..`random_5` "
    "are random sequence. Starts are 0-based in the source record as written (A's records include its edits).",
    "collection.fa": "Four small related genomes (~4 kbp, 2% divergence) as records `strainW`..`strainZ`, "
    "for one-genome-per-record indexing.",
    "manifest.tsv": "`label<TAB>path` (relative to this folder) for A, B and C (C from its reads).",
    "bad/empty.fa": "0 bytes.",
    "bad/binary.fa": "512 random bytes including NULs.",
    "bad/no_header.fa": "Sequence lines with no `>` header.",
    "bad/truncated.fq": "FASTQ whose last record ends after the `+` line (no quality line).",
    "bad/qual_mismatch.fq": "FASTQ whose last record has a quality line shorter than its sequence.",
    "bad/bad_chars.fq": "FASTQ whose last sequence holds a non-ASCII byte (0xE9), a digit and `*`.",
    "bad/not_gzip.fa.gz": "Plain-text FASTA under a `.gz` name.",
    "bad/truncated.fa.gz": "A gzip FASTA cut in half (no gzip trailer).",
}


def readme(written: dict[str, bytes]) -> str:
    lines = [
        "# Test fixtures",
        "",
        "Generated by `python tools/make_fixtures.py` (seed "
        f"{FIXTURE_SEED}); do not edit by hand, rerun the script. The output is byte-identical across runs.",
        "",
        f"Genomes A, B and C are three leaves of one simulated family (`tools/simulate.py`: "
        f"{FAMILY_LENGTH} bp root, mean pairwise divergence {FAMILY_DIVERGENCE}), so they share most k-mers.",
        "",
        "| file | bytes | content |",
        "|---|---:|---|",
    ]
    for rel, data in written.items():
        lines.append(f"| `{rel}` | {len(data)} | {_DESCRIPTIONS[rel]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "fixtures"), help="output directory (default: fixtures/)")
    args = ap.parse_args(argv)
    paths = write_fixtures(Path(args.out))
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files, {total} bytes, to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
