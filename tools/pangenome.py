#!/usr/bin/env python3
"""Deterministic simulator of a bacterial pangenome built from real genomes.

* Core: the first ``(1 - ACCESSORY_SHARE) * length`` bases of one real genome (by default
  *E. coli* K-12, ``GCF_000005845.2``), 1.2 Mbp for the default 1.5 Mbp genomes.
* Accessory gene pool: segments of 1-5 kbp ("genes") cut from the other real genomes of the
  data folder, half of them reverse-complemented; each gene has a fixed insertion site in the
  core (genes cluster at genomic islands).  A genome carries about a quarter of the pool, so
  its accessory part is about ``ACCESSORY_SHARE * length``.
* A rooted tree grown one genome at a time: genome ``i`` attaches at a point drawn uniformly
  over the length of the tree of genomes ``1..i-1`` (ultrametric, height ``HEIGHT * divergence``),
  and every genome also has a private tip branch.  Along every branch, SNPs fall on the core and
  on the pool genes (clade SNPs on inner branches, private SNPs on the tips), and genes are
  gained and lost (presence follows the clades, and the same gene gained or lost on different
  branches gives homoplasy).  ``divergence`` is the expected SNPs per base between two genomes
  (default 0.3%).
* Each genome is written as 20-100 contigs (cut at random points, each contig in a random
  orientation).

Adding genomes does not change the earlier ones: genome ``i`` depends only on the seed and
on the genomes before it (each attachment and each branch has its own random stream, and a
branch that a later genome splits keeps its events, only divided between the two parts).
Genome ``N + 1`` is therefore a fresh member of the ``N``-genome pangenome, and a folder can
be extended.  Whole-array numpy; Python loops run over genomes, tree nodes and contigs only.

Command line::

    python tools/pangenome.py --genomes 1000 --out /tmp/pan --seed 1 [--length 1500000]

writes ``/tmp/pan/g0001.fa`` ... (record ids ``g0001_001`` ...), ``list.txt`` (one absolute
path a line, for ``kmc -fm @list.txt``), ``manifest.tsv`` (``label<TAB>file``, for
``kmerdb build --manifest``) and ``params.json``.  Files of a previous run with the same
parameters are reused (a run asking for more genomes writes only the new ones).

Library::

    from pangenome import Pangenome, simulate_pangenome
    for name, contigs in simulate_pangenome(10, 1_500_000, seed=1, data_dir="../shared/data"):
        ...                                     # contigs: list of bytes (ACGT)
    pan = Pangenome(1_500_000, seed=1)           # genome(i), clades(n), core_length, ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simulate import concat_ranges, random_stream, reverse_complement
from simulate import read_fasta as simulate_read_fasta

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parent.parent / "shared" / "data"
CORE_GENOME = "GCF_000005845.2_ASM584v2_genomic.fna.gz"  # E. coli K-12 MG1655
FASTA_SUFFIXES = (".fa", ".fna", ".fasta", ".fa.gz", ".fna.gz", ".fasta.gz")
MIN_DONOR_BYTES = 50_000  # smaller files (e.g. short.bad.fa) give no genes

VERSION = 1  # bump when the output for the same parameters changes
DEFAULT_LENGTH = 1_500_000
DEFAULT_DIVERGENCE = 0.003
ACCESSORY_SHARE = 0.2  # expected accessory bases / genome length
GENE_PRESENCE = 0.25  # share of the pool a genome carries (root and stationary)
GENE_MIN, GENE_MAX = 1_000, 5_000
GENES_PER_ISLAND = 6
# Gene turnover: expected gain/loss events per gene over a branch of length `divergence`.
GENE_TURNOVER = 0.5
# Tree height and private tip branch, in units of `divergence`: the tips give every pair
# divergence/2, the ultrametric tree about as much on average (the mean distance of two
# genomes through the tree is 1.4-1.7 x its height for 100-1000 genomes, measured on 3 seeds).
HEIGHT = 0.32
TIP = 0.25
CONTIGS_MIN, CONTIGS_MAX = 20, 100
MIN_CONTIG = 200

ALPHABET = np.frombuffer(b"ACGT", dtype=np.uint8)
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _CODE[_c] = _i
    _CODE[_c + 32] = _i
# independent random streams: (seed, tag, index)
_TAG_POOL, _TAG_ROOT, _TAG_ATTACH, _TAG_EDGE, _TAG_TIP, _TAG_CONTIGS = range(6)




def read_fasta(path: str | os.PathLike) -> list[bytes]:
    """Upper-cased records of a FASTA file (plain or gzip), read by simulate's reader."""
    return [seq.upper() for _, seq in simulate_read_fasta(path)]


def donor_files(data_dir: Path, core: str = CORE_GENOME) -> list[Path]:
    """The FASTA files of ``data_dir`` that give accessory genes: all but the core genome."""
    return [
        p for p in sorted(data_dir.iterdir())
        if p.name != core and p.name.endswith(FASTA_SUFFIXES) and p.stat().st_size >= MIN_DONOR_BYTES
    ]


# ----------------------------------------------------------------------------- tree


@dataclass
class Tree:
    """The genome tree after ``len(leaf)`` genomes.  Node 0 is the root; genome ``i`` (0-based)
    is the node ``leaf[i]``, at depth ``height``.  The branch above node ``v`` is the part
    ``[lo[v], hi[v])`` of the original branch ``orig[v]``: the pendant branch genome ``orig[v]``
    brought, from depth ``attach[orig[v]]`` down to ``height``."""

    seed: int
    height: float
    parent: list[int]
    depth: list[float]
    orig: list[int]
    lo: list[float]
    hi: list[float]
    leaf: list[int]
    attach: list[float]

    @classmethod
    def empty(cls, seed: int, height: float) -> Tree:
        return cls(seed, height, parent=[-1], depth=[0.0], orig=[-1], lo=[0.0], hi=[0.0], leaf=[], attach=[])

    def path(self, genome: int) -> list[int]:
        """Nodes from genome's leaf up to (not including) the root."""
        out, v = [], self.leaf[genome]
        while v != 0:
            out.append(v)
            v = self.parent[v]
        return out

    def grow(self, n: int) -> Tree:
        """Attach genomes until there are n, each at a point uniform over the tree's length."""
        while len(self.leaf) < n:
            i = len(self.leaf)
            attach_parent, d = 0, 0.0
            if i > 0:
                depth = np.asarray(self.depth)
                par = np.asarray(self.parent)
                lengths = np.where(par >= 0, depth - depth[np.maximum(par, 0)], 0.0)
                cum = np.cumsum(lengths)
                x = random_stream(self.seed, _TAG_ATTACH, i).random() * cum[-1]
                v = min(int(np.searchsorted(cum, x, side="right")), len(cum) - 1)
                p = self.parent[v]
                frac = min(max((x - (cum[v] - lengths[v])) / lengths[v], 0.0), 1.0)
                d = self.depth[p] + frac * lengths[v]
                cut = self.lo[v] + (self.hi[v] - self.lo[v]) * frac
                w = len(self.parent)  # new inner node on the branch above v
                self.parent.append(p)
                self.depth.append(d)
                self.orig.append(self.orig[v])
                self.lo.append(self.lo[v])
                self.hi.append(cut)
                self.parent[v] = w
                self.lo[v] = cut
                attach_parent = w
            self.leaf.append(len(self.parent))
            self.attach.append(d)
            self.parent.append(attach_parent)
            self.depth.append(self.height)
            self.orig.append(i)
            self.lo.append(0.0)
            self.hi.append(1.0)
        return self


# ----------------------------------------------------------------------------- pangenome


@dataclass
class _Events:
    """Events of one original branch: positions along it in [0, 1)."""

    snp_u: np.ndarray
    snp_site: np.ndarray
    snp_shift: np.ndarray  # 1..3: base code + shift (mod 4); shifts add up along a path
    gene_u: np.ndarray
    gene: np.ndarray
    gene_gain: np.ndarray  # bool: gained (True) or lost (False)


class Pangenome:
    """A seeded pangenome; ``genome(i)`` builds genome ``i`` (1-based) on demand."""

    def __init__(
        self,
        length: int = DEFAULT_LENGTH,
        seed: int = 1,
        data_dir: str | os.PathLike | None = None,
        divergence: float = DEFAULT_DIVERGENCE,
    ) -> None:
        if length < 10_000:
            raise ValueError("length must be at least 10,000")
        if not 0 <= divergence < 0.2:
            raise ValueError("divergence must be in [0, 0.2)")
        self.length = int(length)
        self.seed = int(seed)
        self.divergence = float(divergence)
        self.data_dir = Path(data_dir) if data_dir is not None else DATA_DIR
        core_path = self.data_dir / CORE_GENOME
        self.donors = donor_files(self.data_dir)
        if not core_path.exists() or not self.donors:
            raise FileNotFoundError(f"{self.data_dir}: needs {CORE_GENOME} and other FASTA files")
        core = b"".join(read_fasta(core_path))
        self.core_length = round(self.length * (1 - ACCESSORY_SHARE))
        if self.core_length > len(core):
            raise ValueError(f"length {length:,} needs a core longer than {CORE_GENOME} ({len(core):,} bp)")
        core_arr = np.frombuffer(core[: self.core_length], dtype=np.uint8)
        self._make_pool(core_arr)
        self.height = HEIGHT * self.divergence
        self.tip = TIP * self.divergence
        # gain/loss rates per gene per unit branch length, stationary presence GENE_PRESENCE
        rate = GENE_TURNOVER / self.divergence if self.divergence > 0 else 0.0
        self.gain_rate = rate * GENE_PRESENCE
        self.loss_rate = rate * (1 - GENE_PRESENCE)
        self.root_genes = random_stream(self.seed, _TAG_ROOT).random(self.n_genes) < GENE_PRESENCE
        self._tree = Tree.empty(self.seed, self.height)
        self._events: dict[tuple[int, int], _Events] = {}

    # .................................................................... pool
    def _make_pool(self, core_arr: np.ndarray) -> None:
        rng = random_stream(self.seed, _TAG_POOL)
        donors = [np.frombuffer(s, dtype=np.uint8) for p in self.donors for s in read_fasta(p)]
        sep = np.frombuffer(b"N", dtype=np.uint8)
        donor = np.concatenate([x for d in donors for x in (d, sep)])
        mean_gene = (GENE_MIN + GENE_MAX) / 2
        wanted = max(4, round(ACCESSORY_SHARE * self.length / mean_gene / GENE_PRESENCE))
        lengths = rng.integers(GENE_MIN, GENE_MAX + 1, size=wanted)
        spare = donor.size - int(lengths.sum())
        if spare <= 0:
            raise ValueError("the donor genomes are too short for this gene pool; lower --length")
        gaps = np.diff(np.concatenate([[0], np.sort(rng.integers(0, spare, size=wanted)), [spare]]))[:-1]
        starts = np.cumsum(gaps) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        codes = _CODE[donor]
        bad = np.concatenate([[0], np.cumsum(codes > 3)])
        ok = bad[starts + lengths] == bad[starts]  # no N (record separator or gap) inside
        flip = rng.random(wanted) < 0.5
        starts, lengths, flip = starts[ok], lengths[ok], flip[ok]
        genes = [donor[s : s + n] for s, n in zip(starts, lengths)]
        genes = [reverse_complement(g) if f else g for g, f in zip(genes, flip)]
        self.n_genes = len(genes)
        self.gene_length = lengths.astype(np.int64)
        self.gene_offset = self.core_length + np.concatenate([[0], np.cumsum(self.gene_length)[:-1]]).astype(np.int64)
        # genomic islands: genes grouped at a few insertion sites of the core
        n_islands = max(1, self.n_genes // GENES_PER_ISLAND)
        island_site = np.sort(rng.integers(0, self.core_length + 1, size=n_islands))
        self.gene_site = island_site[rng.integers(0, n_islands, size=self.n_genes)]
        # the whole coordinate space: core, then every pool gene (SNPs fall anywhere in it)
        self.space = np.concatenate([core_arr, *genes])
        self.space_codes = _CODE[self.space]

    # .................................................................... tree and events
    def tree(self, n: int) -> Tree:
        """The tree of genomes 1..n (grown further when asked for more)."""
        return self._tree.grow(n)

    def _branch_events(self, kind: int, index: int, length: float) -> _Events:
        key = (kind, index)
        ev = self._events.get(key)
        if ev is None:
            rng = random_stream(self.seed, kind, index)
            n_snp = int(rng.poisson(length * self.space.size))
            n_gain = int(rng.poisson(length * self.gain_rate * self.n_genes))
            n_loss = int(rng.poisson(length * self.loss_rate * self.n_genes))
            n_gene = n_gain + n_loss
            ev = _Events(
                snp_u=rng.random(n_snp),
                snp_site=rng.integers(0, self.space.size, size=n_snp),
                snp_shift=rng.integers(1, 4, size=n_snp, dtype=np.uint8),
                gene_u=rng.random(n_gene),
                gene=rng.integers(0, self.n_genes, size=n_gene),
                gene_gain=np.arange(n_gene) < n_gain,
            )
            order = np.argsort(ev.gene_u, kind="stable")
            ev.gene_u, ev.gene, ev.gene_gain = ev.gene_u[order], ev.gene[order], ev.gene_gain[order]
            self._events[key] = ev
        return ev

    def _path_events(self, i: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """SNP (site, shift) and gene (gene, gain) events from the root to genome i (0-based),
        in order: branches root to leaf, then the tip."""
        t = self.tree(i + 1)
        sites, shifts, genes, gains = [], [], [], []
        segments = [(v, t.orig[v], t.lo[v], t.hi[v]) for v in reversed(t.path(i))]
        for _v, orig, lo, hi in segments:
            ev = self._branch_events(_TAG_EDGE, orig, self.height - t.attach[orig])
            m = (ev.snp_u >= lo) & (ev.snp_u < hi)
            sites.append(ev.snp_site[m])
            shifts.append(ev.snp_shift[m])
            g = (ev.gene_u >= lo) & (ev.gene_u < hi)
            genes.append(ev.gene[g])
            gains.append(ev.gene_gain[g])
        ev = self._branch_events(_TAG_TIP, i, self.tip)
        sites.append(ev.snp_site)
        shifts.append(ev.snp_shift)
        genes.append(ev.gene)
        gains.append(ev.gene_gain)
        return sites, shifts, genes, gains

    # .................................................................... genomes
    def genome_space(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Genome i (1-based) before assembly: (whole coordinate space with its SNPs, gene presence)."""
        if i < 1:
            raise ValueError("genomes are numbered from 1")
        sites, shifts, genes, gains = self._path_events(i - 1)
        shift = np.zeros(self.space.size, dtype=np.uint8)
        if sites:
            np.add.at(shift, np.concatenate(sites), np.concatenate(shifts))
        codes = self.space_codes
        seq = np.where(codes < 4, ALPHABET[(codes + shift) & 3], self.space)
        present = self.root_genes.copy()
        g = np.concatenate(genes)
        if g.size:
            gain = np.concatenate(gains)
            # the last event of each gene on the path decides
            _, first_rev = np.unique(g[::-1], return_index=True)
            last = g.size - 1 - first_rev
            present[g[last]] = gain[last]
        return seq, present

    def genome_sequence(self, i: int) -> np.ndarray:
        """Genome i (1-based) as one ASCII array: the core with its present genes inserted."""
        space, present = self.genome_space(i)
        g = np.flatnonzero(present)
        g = g[np.lexsort((g, self.gene_site[g]))]
        sites = self.gene_site[g]
        core_starts = np.concatenate([[0], sites])
        core_lengths = np.concatenate([sites, [self.core_length]]) - core_starts
        starts = np.empty(2 * g.size + 1, dtype=np.int64)
        lengths = np.empty_like(starts)
        starts[0::2], lengths[0::2] = core_starts, core_lengths
        starts[1::2], lengths[1::2] = self.gene_offset[g], self.gene_length[g]
        return space[concat_ranges(starts, lengths)]

    def genome(self, i: int) -> tuple[str, list[bytes]]:
        """Genome i (1-based): (name, contigs)."""
        seq = self.genome_sequence(i)
        rng = random_stream(self.seed, _TAG_CONTIGS, i)
        n = int(rng.integers(CONTIGS_MIN, CONTIGS_MAX + 1))
        n = max(1, min(n, seq.size // (4 * MIN_CONTIG)))
        room = seq.size - n * MIN_CONTIG
        cuts = np.sort(rng.choice(room, size=n - 1, replace=False)) + MIN_CONTIG * np.arange(1, n)
        bounds = np.concatenate([[0], cuts, [seq.size]])
        flip = rng.random(n) < 0.5
        contigs = []
        for j in range(n):
            piece = seq[bounds[j] : bounds[j + 1]]
            contigs.append((reverse_complement(piece) if flip[j] else piece).tobytes())
        return genome_name(i), contigs

    def clades(self, n: int) -> list[tuple[int, frozenset[int]]]:
        """(node, genomes below it, 1-based) for every inner node of the n-genome tree whose
        branch carries SNPs shared by exactly those genomes (the root excluded)."""
        t = self.tree(n)
        below: dict[int, set[int]] = {}
        for i in range(n):
            for v in t.path(i):
                below.setdefault(v, set()).add(i + 1)
        return [(v, frozenset(s)) for v, s in sorted(below.items()) if 1 < len(s) < n]

    def params(self) -> dict:
        return {
            "version": VERSION,
            "length": self.length,
            "seed": self.seed,
            "divergence": self.divergence,
            "core": CORE_GENOME,
            "donors": [[p.name, p.stat().st_size] for p in self.donors],
        }


def genome_name(i: int) -> str:
    return f"g{i:04d}"


def simulate_pangenome(
    n: int,
    length: int = DEFAULT_LENGTH,
    seed: int = 1,
    data_dir: str | os.PathLike | None = None,
    divergence: float = DEFAULT_DIVERGENCE,
    first: int = 1,
) -> Iterator[tuple[str, list[bytes]]]:
    """Yield ``(name, contigs)`` for genomes ``first .. n`` (1-based) of a seeded pangenome."""
    pan = Pangenome(length, seed, data_dir, divergence)
    for i in range(first, n + 1):
        yield pan.genome(i)


# ----------------------------------------------------------------------------- output


def fasta_bytes(name: str, seq: bytes, width: int = 80) -> bytes:
    """One FASTA record wrapped at ``width``, built as one array (no per-line loop)."""
    arr = np.frombuffer(seq, dtype=np.uint8)
    n_full = arr.size // width
    body = np.empty((n_full, width + 1), dtype=np.uint8)
    body[:, :width] = arr[: n_full * width].reshape(n_full, width)
    body[:, width] = ord("\n")
    tail = arr[n_full * width :].tobytes()
    return f">{name}\n".encode() + body.tobytes() + (tail + b"\n" if tail else b"")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def ensure_pangenome(
    out: str | os.PathLike,
    n: int,
    length: int = DEFAULT_LENGTH,
    seed: int = 1,
    data_dir: str | os.PathLike | None = None,
    divergence: float = DEFAULT_DIVERGENCE,
    log=None,
) -> list[Path]:
    """Make sure ``out`` holds genomes 1..n of this pangenome; return their paths.

    Genomes already written with the same parameters (``params.json``) are kept; more
    genomes than ``n`` may remain in the folder.  ``list.txt`` and ``manifest.tsv`` name
    genomes 1..n.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pan = Pangenome(length, seed, data_dir, divergence)
    params = pan.params()
    stamp = out / "params.json"
    old = json.loads(stamp.read_text()) if stamp.exists() else None
    if old is None or {k: v for k, v in old.items() if k != "genomes"} != params:
        # files without a matching stamp are never trusted: drop the stamp first, then them
        stamp.unlink(missing_ok=True)
        for old_file in out.glob("g*.fa"):
            old_file.unlink()
    paths = [out / f"{genome_name(i)}.fa" for i in range(1, n + 1)]
    t0 = time.perf_counter()
    made = 0
    for i, path in enumerate(paths, 1):
        if not path.exists():
            name, contigs = pan.genome(i)
            data = b"".join(fasta_bytes(f"{name}_{j + 1:03d}", c) for j, c in enumerate(contigs))
            _write_atomic(path, data)
            made += 1
        if log and made and (i == n or i % 100 == 0):
            log(f"  {i:,}/{n:,} genomes ({made:,} written, {time.perf_counter() - t0:.1f} s)")
    on_disk = 0
    while (out / f"{genome_name(on_disk + 1)}.fa").exists():
        on_disk += 1
    _write_atomic(stamp, json.dumps({**params, "genomes": on_disk}, indent=1).encode())
    _write_atomic(out / "list.txt", "".join(f"{p.resolve()}\n" for p in paths).encode())
    _write_atomic(out / "manifest.tsv", "".join(f"{p.stem}\t{p.name}\n" for p in paths).encode())
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genomes", type=int, required=True, help="number of genomes")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--length", type=int, default=DEFAULT_LENGTH, help="mean genome length (default 1,500,000)")
    ap.add_argument("--divergence", type=float, default=DEFAULT_DIVERGENCE,
                    help="expected SNPs per base between two genomes (default 0.003)")
    ap.add_argument("--data", default=str(DATA_DIR), help="folder of real genomes (default ../shared/data)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.genomes < 1:
        ap.error("--genomes must be >= 1")
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    t0 = time.perf_counter()
    paths = ensure_pangenome(args.out, args.genomes, args.length, args.seed, args.data, args.divergence, log)
    if log:
        log(f"{len(paths):,} genomes in {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
