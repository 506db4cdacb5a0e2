#!/usr/bin/env python3
"""Deterministic simulator of a family of related genomes (and reads).

A root genome (seeded random sequence with a few dispersed repeat families, or
a given FASTA) evolves down a random binary tree (a Kingman coalescent
topology).  Every branch applies SNPs, small insertions/deletions and a few
rearrangements (inversions and translocations of segments).  Branch lengths
are scaled so that the *mean pairwise divergence between leaves* equals
``divergence``: the expected number of point events (SNPs + indel events) per
base separating two leaves (half of it on private leaf branches, so every
pair differs by at least ``divergence / 2``).  A k-mer based distance (Mash-style,
``1 - shared_fraction ** (1/k)``) therefore lands close to ``divergence``.
Pairs that split near the root differ a bit more, recent sister pairs less.

Everything is numpy whole-array work; Python loops run only over tree nodes,
events of a kind (vectorised) and reads.  Each tree node draws from its own
random stream derived from ``seed``, so output is byte-identical for the same
arguments.

Command line::

    python tools/simulate.py --genomes 10 --length 1000000 --divergence 0.01 \\
        --seed 1 --out sim/ [--reads-per-genome 1000 --read-length 150 --error-rate 0.001]

writes ``sim/genome_0001.fa`` ... (record id = file stem), ``sim/manifest.tsv``
(``label<TAB>path``, paths relative to ``sim/``) and, with reads,
``sim/genome_0001.fq`` ... and ``sim/reads_manifest.tsv``.

Library::

    from simulate import simulate_family
    genomes = simulate_family(4, 50_000, 0.01, seed=7)   # [(name, bytes), ...]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ALPHABET = np.frombuffer(b"ACGT", dtype=np.uint8)

# ASCII -> 2-bit code; anything that is not ACGT/acgt maps to 4.
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _CODE[_c] = _i
    _CODE[_c + 32] = _i

# ASCII complement (case and IUPAC aware enough for inversions of real roots).
COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTRYKMBVDHNacgtrykmbvdhn", b"TGCAYRMKVBHDNtgcayrmkvbhdn"):
    COMPLEMENT[_a] = _b

# Stream tags keep the random streams of different purposes independent.
_TAG_ROOT, _TAG_TREE, _TAG_BRANCH, _TAG_READS = 0, 1, 2, 3

# Share of point events that are indels (the rest are SNPs), and the largest indel.
INDEL_FRACTION = 0.1
MAX_INDEL = 10
# Share of the mean pairwise divergence put on private leaf branches.  A pure
# coalescent makes some sister leaves near-identical; this floor keeps every
# pair at least TIP_SHARE * divergence apart while the tree supplies the spread.
TIP_SHARE = 0.5
# Rearrangements per point event; segment lengths are drawn relative to genome size.
REARRANGEMENT_RATE = 2e-4


def random_stream(seed: int, tag: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, tag, index])


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n), without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(np.asarray(starts, dtype=np.int64) - offsets, lengths) + np.arange(total)


def reverse_complement(seq: np.ndarray) -> np.ndarray:
    """Reverse complement of an ASCII uint8 array."""
    return COMPLEMENT[seq[::-1]]


def random_bases(rng: np.random.Generator, n: int) -> np.ndarray:
    return ALPHABET[rng.integers(0, 4, size=n, dtype=np.uint8)]


def random_root(length: int, seed: int) -> np.ndarray:
    """Random genome with a few dispersed, slightly diverged repeat families.

    Repeats (about 2% of the genome) give the family k-mers with counts above
    one, as real genomes have.
    """
    rng = random_stream(seed, _TAG_ROOT)
    seq = random_bases(rng, length)
    elem_max = max(length // 50, 1)
    for _family in range(5):
        elem_len = int(rng.integers(max(elem_max // 4, 1), elem_max + 1))
        if elem_len < 32 or elem_len >= length:
            continue
        element = random_bases(rng, elem_len)
        copies = max(int(0.004 * length / elem_len), 2)
        starts = rng.integers(0, length - elem_len + 1, size=copies)
        block = np.tile(element, copies)
        # Each copy carries ~2% private SNPs so copies are similar, not identical.
        snp = rng.random(block.size) < 0.02
        block[snp] = random_bases(rng, int(snp.sum()))
        seq[concat_ranges(starts, np.full(copies, elem_len))] = block
    return seq


def read_fasta(path: str | os.PathLike) -> list[tuple[str, bytes]]:
    """Minimal FASTA reader (plain or gzip) for --root."""
    path = Path(path)
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    records: list[tuple[str, list[bytes]]] = []
    with opener(path, "rb") as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if line.startswith(b">"):
                records.append((line[1:].split(maxsplit=1)[0].decode() if line[1:].strip() else "", []))
            elif line:
                if not records:
                    raise ValueError(f"{path}: sequence before the first '>' header")
                records[-1][1].append(line.strip())
    return [(name, b"".join(parts)) for name, parts in records]


# ----------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class Tree:
    """Binary tree: nodes 0..n-1 are leaves, the last node is the root."""

    children: tuple[tuple[int, int] | None, ...]
    branch: tuple[float, ...]  # expected point events per base on the edge above each node
    leaf_order: tuple[int, ...]  # leaves in depth-first order (naming order)

    @property
    def root(self) -> int:
        return len(self.children) - 1


def family_tree(n_genomes: int, divergence: float, seed: int) -> Tree:
    """Coalescent tree whose mean pairwise leaf distance is ``divergence``.

    Half of it (TIP_SHARE) sits on the leaf branches, the rest follows the
    coalescent branch lengths, rescaled exactly for this realised tree.
    """
    if n_genomes < 1:
        raise ValueError("n_genomes must be >= 1")
    rng = random_stream(seed, _TAG_TREE)
    n_nodes = 2 * n_genomes - 1
    height = [0.0] * n_nodes
    children: list[tuple[int, int] | None] = [None] * n_nodes
    leaves_below = [1] * n_nodes
    lineages = list(range(n_genomes))
    t = 0.0
    for node in range(n_genomes, n_nodes):
        k = len(lineages)
        t += float(rng.exponential(2.0 / (k * (k - 1))))
        i, j = sorted(int(x) for x in rng.choice(k, size=2, replace=False))
        a, b = lineages[i], lineages[j]
        del lineages[j], lineages[i]
        lineages.append(node)
        children[node] = (a, b)
        height[node] = t
        leaves_below[node] = leaves_below[a] + leaves_below[b]
    parent = [-1] * n_nodes
    for node, ch in enumerate(children):
        if ch:
            parent[ch[0]] = parent[ch[1]] = node
    raw = [height[parent[v]] - height[v] if parent[v] >= 0 else 0.0 for v in range(n_nodes)]
    # Sum of pairwise path lengths = sum over edges of length * pairs separated by it.
    pair_sum = sum(raw[v] * leaves_below[v] * (n_genomes - leaves_below[v]) for v in range(n_nodes))
    pairs = n_genomes * (n_genomes - 1) / 2
    scale = (1 - TIP_SHARE) * divergence * pairs / pair_sum if pair_sum > 0 else 0.0
    branch = [r * scale for r in raw]
    if n_genomes > 1:
        # Every pair has two private tips, so each tip adds half the share.
        for leaf in range(n_genomes):
            branch[leaf] += TIP_SHARE * divergence / 2
    order: list[int] = []
    stack = [n_nodes - 1]
    while stack:
        v = stack.pop()
        if children[v] is None:
            order.append(v)
        else:
            stack.extend(reversed(children[v]))
    return Tree(tuple(children), tuple(branch), tuple(order))


# ----------------------------------------------------------------------------- mutation


def mutate(seq: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of ``seq`` after one branch of ``rate`` point events per base."""
    n = seq.size
    n_events = int(rng.poisson(rate * n)) if n else 0
    n_indel = int(rng.binomial(n_events, INDEL_FRACTION)) if n_events else 0
    n_snp = n_events - n_indel
    out = seq.copy()

    # SNPs: always to a different base; non-ACGT positions (gaps, IUPAC) stay as they are.
    pos = rng.integers(0, n, size=n_snp)
    codes = _CODE[out[pos]]
    shifted = ALPHABET[(codes + rng.integers(1, 4, size=n_snp, dtype=np.uint8)) % 4]
    out[pos] = np.where(codes < 4, shifted, out[pos])

    # Deletions: mark covered positions with a +1/-1 difference array, drop them.
    n_del = n_indel // 2
    n_ins = n_indel - n_del
    if n_del:
        starts = rng.integers(0, n, size=n_del)
        lens = np.minimum(rng.geometric(0.5, size=n_del), MAX_INDEL)
        ends = np.minimum(starts + lens, n)
        delta = np.bincount(starts, minlength=n + 1) - np.bincount(ends, minlength=n + 1)
        out = out[np.cumsum(delta[:n]) == 0]
    # Insertions of random bases (np.insert handles all positions in one pass).
    if n_ins:
        lens = np.minimum(rng.geometric(0.5, size=n_ins), MAX_INDEL)
        where = np.repeat(rng.integers(0, out.size + 1, size=n_ins), lens)
        out = np.insert(out, where, random_bases(rng, int(lens.sum())))

    # Rearrangements: a handful per branch, each a few slices and one concatenate.
    n_rearr = int(rng.poisson(REARRANGEMENT_RATE * n_events)) if n_events else 0
    mean_seg = max(min(out.size // 50, 20_000), 50)
    for _ in range(n_rearr):
        m = out.size
        seg = int(min(max(rng.exponential(mean_seg), 50), m // 4))
        if seg < 2:
            break
        s = int(rng.integers(0, m - seg + 1))
        if rng.random() < 0.5:  # inversion
            out[s : s + seg] = reverse_complement(out[s : s + seg])
        else:  # translocation, sometimes inverted on the way
            piece = out[s : s + seg]
            if rng.random() < 0.5:
                piece = reverse_complement(piece)
            rest = np.concatenate([out[:s], out[s + seg :]])
            p = int(rng.integers(0, rest.size + 1))
            out = np.concatenate([rest[:p], piece, rest[p:]])
    return out


def _root_array(length: int | None, seed: int, root) -> np.ndarray:
    if root is None:
        if not length or length < 1:
            raise ValueError("length must be >= 1 when no root is given")
        return random_root(int(length), seed)
    if isinstance(root, (bytes, bytearray, memoryview)):
        data = bytes(root)
    elif isinstance(root, np.ndarray):
        data = root.astype(np.uint8).tobytes()
    else:
        # A FASTA path; several records are joined end to end into one sequence.
        data = b"".join(s for _name, s in read_fasta(root))
    if not data:
        raise ValueError("root sequence is empty")
    return np.frombuffer(data.upper(), dtype=np.uint8).copy()


def iter_family(
    n_genomes: int,
    length: int | None,
    divergence: float,
    seed: int,
    root=None,
    prefix: str = "genome",
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, uint8 ASCII array)`` for each leaf, depth-first.

    Only the sequences on the current root-to-leaf path are alive at a time, so
    memory is about (tree depth) x (genome length), not (genomes) x (length).
    """
    if divergence < 0:
        raise ValueError("divergence must be >= 0")
    tree = family_tree(n_genomes, divergence, seed)
    root_seq = _root_array(length, seed, root)
    names = {leaf: f"{prefix}_{i + 1:04d}" for i, leaf in enumerate(tree.leaf_order)}
    # Stack entries hold the parent's sequence; the child is mutated when popped.
    stack: list[tuple[int, np.ndarray | None]] = [(tree.root, None)]
    while stack:
        node, parent_seq = stack.pop()
        if parent_seq is None:
            seq = root_seq
        else:
            seq = mutate(parent_seq, tree.branch[node], random_stream(seed, _TAG_BRANCH, node))
        del parent_seq
        ch = tree.children[node]
        if ch is None:
            yield names[node], seq
        else:
            stack.extend((c, seq) for c in reversed(ch))
        del seq


def simulate_family(
    n_genomes: int,
    length: int | None,
    divergence: float,
    seed: int,
    root=None,
) -> list[tuple[str, bytes]]:
    """Simulate ``n_genomes`` related genomes; returns ``[(name, sequence bytes), ...]``.

    ``root`` may be None (random root of ``length`` bases), a sequence
    (bytes / uint8 array) or a FASTA path (records joined end to end).
    Names are ``genome_0001`` ... in depth-first leaf order, so neighbours in
    numbering tend to be close relatives.
    """
    return [(name, seq.tobytes()) for name, seq in iter_family(n_genomes, length, divergence, seed, root)]


# ----------------------------------------------------------------------------- reads


def simulate_reads(
    seq: np.ndarray | bytes,
    n_reads: int,
    read_length: int,
    error_rate: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample reads uniformly from both strands, with substitution errors.

    Returns ``(reads, quals, starts, reverse, n_errors)``: reads and quals are
    ``(n_reads, read_length)`` uint8 arrays of ASCII.  Error positions get
    quality 10 ('+'), the rest quality 40 ('I').
    """
    seq = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, (bytes, bytearray)) else seq
    if read_length > seq.size:
        raise ValueError(f"read length {read_length} exceeds sequence length {seq.size}")
    starts = rng.integers(0, seq.size - read_length + 1, size=n_reads)
    reverse = rng.random(n_reads) < 0.5
    reads = seq[starts[:, None] + np.arange(read_length)]
    # Reverse-strand reads: complement and flip the row.
    reads[reverse] = COMPLEMENT[reads[reverse]][:, ::-1]
    codes = _CODE[reads]
    err = (rng.random(reads.shape) < error_rate) & (codes < 4)
    wrong = ALPHABET[(codes + rng.integers(1, 4, size=reads.shape, dtype=np.uint8)) % 4]
    reads = np.where(err, wrong, reads)
    quals = np.where(err, np.uint8(ord("+")), np.uint8(ord("I")))
    return reads, quals, starts, reverse, err.sum(axis=1)


def fastq_bytes(name: str, reads, quals, starts, reverse, n_errors, first: int = 1) -> bytes:
    """Format simulated reads as FASTQ; ids are ``<name>_r<number>``, numbered from ``first``."""
    parts = []
    for i in range(reads.shape[0]):
        strand = "-" if reverse[i] else "+"
        parts.append(
            f"@{name}_r{first + i:06d} pos={int(starts[i])} strand={strand} errors={int(n_errors[i])}\n".encode()
            + reads[i].tobytes()
            + b"\n+\n"
            + quals[i].tobytes()
            + b"\n"
        )
    return b"".join(parts)


# ----------------------------------------------------------------------------- output


def fasta_bytes(name: str, seq: np.ndarray | bytes, width: int = 60, description: str = "") -> bytes:
    """One FASTA record, wrapped at ``width``, built as one array (no per-line loop)."""
    seq = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, (bytes, bytearray)) else seq
    header = f">{name}{' ' + description if description else ''}\n".encode()
    n_full = seq.size // width
    body = np.empty((n_full, width + 1), dtype=np.uint8)
    body[:, :width] = seq[: n_full * width].reshape(n_full, width)
    body[:, width] = ord("\n")
    tail = seq[n_full * width :].tobytes()
    return header + body.tobytes() + (tail + b"\n" if tail else b"")


def write_family(
    out: str | os.PathLike,
    n_genomes: int,
    length: int | None,
    divergence: float,
    seed: int,
    root=None,
    reads_per_genome: int = 0,
    read_length: int = 150,
    error_rate: float = 0.001,
    width: int = 60,
    prefix: str = "genome",
) -> list[Path]:
    """Write one FASTA per genome (and FASTQ reads) plus manifests; returns the FASTA paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fasta_paths, manifest, reads_manifest = [], [], []
    for name, seq in iter_family(n_genomes, length, divergence, seed, root, prefix):
        path = out / f"{name}.fa"
        path.write_bytes(fasta_bytes(name, seq, width))
        fasta_paths.append(path)
        manifest.append(f"{name}\t{path.name}\n")
        if reads_per_genome > 0:
            # Reads get their own stream, keyed by the genome's position in the manifest.
            rng = random_stream(seed, _TAG_READS, len(fasta_paths))
            with open(out / f"{name}.fq", "wb") as fh:
                chunk = 50_000  # bounds the (reads x length) index matrix
                done = 0
                while done < reads_per_genome:
                    n = min(chunk, reads_per_genome - done)
                    reads, quals, starts, rev, nerr = simulate_reads(seq, n, read_length, error_rate, rng)
                    fh.write(fastq_bytes(name, reads, quals, starts, rev, nerr, first=done + 1))
                    done += n
            reads_manifest.append(f"{name}\t{name}.fq\n")
    (out / "manifest.tsv").write_text("".join(manifest))
    if reads_manifest:
        (out / "reads_manifest.tsv").write_text("".join(reads_manifest))
    return fasta_paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genomes", type=int, required=True, help="number of genomes (leaves)")
    ap.add_argument("--length", type=int, help="root genome length in bases (unless --root)")
    ap.add_argument("--divergence", type=float, default=0.01, help="mean pairwise divergence (point events per base)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (same arguments -> identical bytes)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--root", help="FASTA (optionally gzip) to use as the root genome; records are joined")
    ap.add_argument("--reads-per-genome", type=int, default=0, help="also write N reads per genome as FASTQ")
    ap.add_argument("--read-length", type=int, default=150)
    ap.add_argument("--error-rate", type=float, default=0.001, help="per-base substitution error rate of reads")
    ap.add_argument("--line-width", type=int, default=60, help="FASTA line width")
    ap.add_argument("--prefix", default="genome", help="genome name prefix")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.root is None and not args.length:
        ap.error("--length is required unless --root is given")
    if args.seed < 0:
        ap.error("--seed must be >= 0")
    t0 = time.perf_counter()
    paths = write_family(
        args.out, args.genomes, args.length, args.divergence, args.seed, args.root,
        args.reads_per_genome, args.read_length, args.error_rate, args.line_width, args.prefix,
    )
    if not args.quiet:
        print(f"wrote {len(paths)} genomes to {args.out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
