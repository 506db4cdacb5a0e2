#!/usr/bin/env python3
"""kmerdb against real peers, side by side in one run, reported as ratios.

This is a benchmark, not a test: nothing here asserts a speed. Sections:

  kmc        KMC3 counts canonical k-mers of each genome (wall, peak RSS); kmc_tools dumps them.
  jellyfish  Jellyfish counts canonical k-mers of each genome (wall, peak RSS).
  build      kmerdb builds one index of all genomes with counts (console, in a subprocess).
  exact      kmerdb's dump equals KMC's k-mer sets and counts, genome by genome.
  presence   kmerdb builds a presence-only index; on-disk bits per distinct k-mer.
  query      db.query() of simulated 150 bp reads vs bbhash lookup_many on as many keys.
  mphf       kmerdb.core.mphf.MPHF vs bbhash on the same random uint64 keys (build, lookup, bits/key).

Peak RSS is the sum over the whole process tree (tools/procmem.py), sampled every 20 ms.

    python tools/bench.py                       # the three complete genomes of ../shared/data
    python tools/bench.py --json bench.json --sections kmc,jellyfish,mphf
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from procmem import Measurement, measure_subprocess

DATA = (REPO / ".." / "shared" / "data").resolve()
DEFAULT_GENOMES = (
    "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
)
ALL_SECTIONS = ("kmc", "jellyfish", "build", "exact", "presence", "query", "mphf")
FASTQ_SUFFIX = re.compile(r"\.(fq|fastq)(\.gz|\.bz2|\.xz|\.zst)?$", re.I)
LABEL_SUFFIX = re.compile(r"(\.(fa|fasta|fna|fas|ffn|fq|fastq))?(\.(gz|bz2|xz|zst))?$", re.I)

MiB = 1 << 20


# --------------------------------------------------------------------------- small helpers


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 2G)")
    mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * mult)


def label_of(path: Path) -> str:
    return LABEL_SUFFIX.sub("", path.name)


def dir_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MiB:,.1f}"


def secs(x: float | None) -> str:
    return "-" if x is None else f"{x:,.3f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:,.2f}x"


def open_text(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def read_sequences(path: Path) -> list[bytes]:
    """Records of a FASTA or FASTQ file (plain or gzip), upper-cased; setup only, not timed."""
    with open_text(path) as fh:
        data = fh.read()
    if data[:1] == b"@":  # FASTQ: sequence is line 2 of every 4
        lines = data.split(b"\n")
        return [lines[i].strip().upper() for i in range(1, len(lines), 4) if lines[i].strip()]
    out = []
    for rec in data.split(b">")[1:]:
        nl = rec.find(b"\n")
        seq = rec[nl + 1:] if nl >= 0 else b""
        out.append(seq.replace(b"\n", b"").replace(b"\r", b"").upper())
    return out


# --------------------------------------------------------------------------- k-mer tables

_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _LUT[_c] = _i
    _LUT[_c + 32] = _i


def revcomp(codes: np.ndarray, k: int) -> np.ndarray:
    """Reverse complement of 2-bit k-mers (A=0 C=1 G=2 T=3, first base most significant)."""
    mask = np.uint64((1 << (2 * k)) - 1)
    x = codes ^ mask  # complement: 3 - c == c ^ 3
    x = ((x >> np.uint64(2)) & np.uint64(0x3333333333333333)) | ((x & np.uint64(0x3333333333333333)) << np.uint64(2))
    x = ((x >> np.uint64(4)) & np.uint64(0x0F0F0F0F0F0F0F0F)) | ((x & np.uint64(0x0F0F0F0F0F0F0F0F)) << np.uint64(4))
    x = x.byteswap()
    return x >> np.uint64(64 - 2 * k)


@dataclass
class KmerTable:
    """Parsed text dump: 2-bit k-mers as written (not re-canonicalized) and counts per column."""

    labels: list[str]
    kmers: np.ndarray  # uint64
    counts: np.ndarray  # uint32, shape (n, n_columns)


def read_kmer_table(path: Path, k: int, n_columns: int, header: bool, chunk_bytes: int = 64 * MiB) -> KmerTable:
    """Parse 'KMER<TAB>COUNT[<TAB>COUNT...]' lines with whole-array numpy passes, chunk by chunk."""
    kmers_parts: list[np.ndarray] = []
    count_parts: list[np.ndarray] = []
    labels: list[str] = []
    width = n_columns + 1  # separators per line: n_columns tabs and one newline
    with open(path, "rb") as fh:
        if header:
            labels = fh.readline().rstrip(b"\r\n").decode().split("\t")[1:]
            if len(labels) != n_columns:
                raise ValueError(f"{path}: header has {len(labels)} genome columns, expected {n_columns}")
        rest = b""
        line_no = 1 if header else 0
        while True:
            block = fh.read(chunk_bytes)
            data = rest + block
            if not block:
                if data.strip():
                    data += b"\n"
                else:
                    break
            cut = data.rfind(b"\n") + 1
            rest, data = data[cut:], data[:cut]
            if not data:
                continue
            buf = np.frombuffer(data, dtype=np.uint8)
            seps = np.flatnonzero((buf == 9) | (buf == 10))
            if seps.size % width:
                raise ValueError(f"{path}: a line near line {line_no} does not have {n_columns} count column(s)")
            seps = seps.reshape(-1, width)
            n = len(seps)
            if not (buf[seps[:, -1]] == 10).all() or not (buf[seps[:, :-1]] == 9).all():
                raise ValueError(f"{path}: malformed line near line {line_no}")
            starts = np.empty(n, dtype=np.int64)
            starts[0] = 0
            starts[1:] = seps[:-1, -1] + 1
            if not (seps[:, 0] - starts == k).all():
                bad = int(np.flatnonzero(seps[:, 0] - starts != k)[0])
                raise ValueError(f"{path}: line {line_no + bad + 1} has a k-mer that is not {k} long")
            code = np.zeros(n, dtype=np.uint64)
            invalid = np.zeros(n, dtype=bool)
            for j in range(k):  # loop over the k positions, not over k-mers
                c = _LUT[buf[starts + j]]
                invalid |= c == 255
                code <<= np.uint64(2)
                code |= (c & 3).astype(np.uint64)
            if invalid.any():
                bad = int(np.flatnonzero(invalid)[0])
                raise ValueError(f"{path}: line {line_no + bad + 1} has a non-ACGT k-mer")
            counts = np.zeros((n, n_columns), dtype=np.uint64)
            for col in range(n_columns):
                lo = seps[:, col] + 1
                length = seps[:, col + 1] - lo
                if length.min() < 1 or length.max() > 10:
                    raise ValueError(f"{path}: empty or too long count field near line {line_no}")
                val = counts[:, col]
                for d in range(int(length.max())):
                    m = d < length
                    digit = buf[np.minimum(lo + d, len(buf) - 1)].astype(np.int64) - 48
                    if ((digit < 0) | (digit > 9))[m].any():
                        raise ValueError(f"{path}: non-numeric count near line {line_no}")
                    val[m] = val[m] * np.uint64(10) + digit[m].astype(np.uint64)
            kmers_parts.append(code)
            count_parts.append(counts.astype(np.uint32))
            line_no += n
    kmers = np.concatenate(kmers_parts) if kmers_parts else np.zeros(0, dtype=np.uint64)
    counts = np.concatenate(count_parts) if count_parts else np.zeros((0, n_columns), dtype=np.uint32)
    return KmerTable(labels, kmers, counts)


@dataclass
class Comparison:
    equal: bool
    expected: int
    got: int
    only_expected: int
    only_got: int
    count_differs: int
    duplicates: int
    not_canonical: int

    @property
    def mismatches(self) -> int:
        return self.only_expected + self.only_got + self.count_differs + self.duplicates


def compare_sets(
    exp_kmers: np.ndarray, exp_counts: np.ndarray, got_kmers: np.ndarray, got_counts: np.ndarray, k: int, counts: bool
) -> Comparison:
    """Compare two k-mer -> count maps after putting both in canonical form (lexicographic min)."""
    got_canon = np.minimum(got_kmers, revcomp(got_kmers, k))
    not_canonical = int(np.count_nonzero(got_canon != got_kmers))
    exp_canon = np.minimum(exp_kmers, revcomp(exp_kmers, k))

    def sort(kmers: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        order = np.argsort(kmers, kind="stable")
        kmers, cnt = kmers[order], cnt[order]
        dup = np.zeros(len(kmers), dtype=bool)
        if len(kmers) > 1:
            dup[1:] = kmers[1:] == kmers[:-1]
        n_dup = int(dup.sum())
        return kmers[~dup], cnt[~dup], n_dup

    e_k, e_c, _ = sort(exp_canon, exp_counts)
    g_k, g_c, g_dup = sort(got_canon, got_counts)
    if not counts:
        e_c = np.ones_like(e_c)
        g_c = np.ones_like(g_c)
    _, ie, ig = np.intersect1d(e_k, g_k, assume_unique=True, return_indices=True)
    differs = int(np.count_nonzero(e_c[ie] != g_c[ig]))
    only_e = len(e_k) - len(ie)
    only_g = len(g_k) - len(ig)
    equal = only_e == 0 and only_g == 0 and differs == 0 and g_dup == 0
    return Comparison(equal, len(exp_kmers), len(got_kmers), only_e, only_g, differs, g_dup, not_canonical)


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    """One timed step."""

    name: str
    wall: float | None = None
    peak: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace, inputs: list[Path], workdir: Path, console):
        self.args = args
        self.k = args.k
        self.inputs = inputs
        self.labels = [label_of(p) for p in inputs]
        self.workdir = workdir
        self.console = console
        self.results: dict[str, Any] = {
            "k": args.k,
            "threads": args.threads,
            "max_memory": args.max_memory,
            "inputs": [str(p) for p in inputs],
            "labels": self.labels,
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "load_average_start": list(os.getloadavg()),
            "sections": {},
        }
        self.kmc_tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.counts_db: Path | None = None
        self.presence_db: Path | None = None
        self.sequences: dict[str, list[bytes]] | None = None

    # ..................................................................... plumbing
    def log(self, msg: str) -> None:
        if not self.args.quiet:
            self.console.log(msg)

    def section(self, name: str) -> dict:
        return self.results["sections"].setdefault(name, {})

    def run_section(self, name: str, fn: Callable[[dict], None]) -> None:
        if name not in self.args.sections:
            return
        res = self.section(name)
        self.log(f"[bold]{name}[/bold]")
        try:
            fn(res)
            res.setdefault("status", "ok")
        except Skip as exc:
            res["status"] = "skipped"
            res["reason"] = str(exc)
            self.log(f"  {name}: skipped ({exc})")
        except Exception as exc:  # a failing section must not stop the others
            res["status"] = "failed"
            res["reason"] = f"{type(exc).__name__}: {exc}"
            self.log(f"  [red]{name}: failed[/red]: {res['reason']}")
            if self.args.verbose:
                self.console.print(traceback.format_exc())

    def timed(self, argv: list[str], stdout_path: Path | None = None, **kw) -> Measurement:
        self.log("  $ " + " ".join(str(a) for a in argv) + (f" > {stdout_path}" if stdout_path else ""))
        err = self.workdir / "last.stderr"
        if stdout_path is None:
            return measure_subprocess([str(a) for a in argv], stderr_path=err, **kw)
        with open(stdout_path, "wb") as out:
            return measure_subprocess([str(a) for a in argv], stdout=out, stderr_path=err, **kw)

    def timed_rounds(self, argv: list[str], before: Callable[[], None] | None = None, **kw) -> Measurement:
        """Run a command --rounds times: best wall time, largest peak."""
        runs = []
        for _ in range(self.args.rounds):
            if before is not None:
                before()
            runs.append(self.timed(argv, **kw))
        return Measurement(min(r.wall for r in runs), max(r.peak for r in runs))

    def genome_sequences(self) -> dict[str, list[bytes]]:
        if self.sequences is None:
            self.sequences = {lab: read_sequences(p) for lab, p in zip(self.labels, self.inputs)}
        return self.sequences

    def kmerdb_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def kmerdb_cmd(self) -> list[str]:
        return [sys.executable, "-m", "kmerdb"]

    def kmerdb_available(self) -> str | None:
        """None when `python -m kmerdb` runs, else the reason."""
        try:
            p = subprocess.run(
                self.kmerdb_cmd() + ["--help"], capture_output=True, env=self.kmerdb_env(), cwd=REPO, timeout=120
            )
        except Exception as exc:  # pragma: no cover - environment specific
            return str(exc)
        if p.returncode != 0:
            tail = p.stderr.decode(errors="replace").strip().splitlines()[-1:]
            return "python -m kmerdb --help failed" + (f": {tail[0]}" if tail else "")
        return None

    # ..................................................................... a. KMC
    def kmc(self, res: dict) -> None:
        if not shutil.which("kmc"):
            raise Skip("not installed (apt-get install kmc)")
        dumper = shutil.which("kmc_tools")
        tmp = self.workdir / "kmc_tmp"
        tmp.mkdir(exist_ok=True)
        mem_gb = max(2, math.ceil(parse_size(self.args.max_memory) / (1 << 30)))  # KMC's minimum is 2 GB
        per = []
        for label, path in zip(self.labels, self.inputs):
            out = self.workdir / f"kmc_{label}"
            fmt = "-fq" if FASTQ_SUFFIX.search(path.name) else "-fm"
            argv = ["kmc", f"-k{self.k}", "-ci1", "-cs4294967295", f"-t{self.args.threads}", f"-m{mem_gb}", fmt, "-hp",
                    str(path), str(out), str(tmp)]
            m = self.timed_rounds(argv)
            db_bytes = sum(p.stat().st_size for p in self.workdir.glob(f"kmc_{label}.kmc_*"))
            row = {"label": label, "wall": m.wall, "peak": m.peak, "db_bytes": db_bytes, "argv": argv}
            if dumper and ("exact" in self.args.sections or "presence" in self.args.sections or "query" in self.args.sections):
                txt = self.workdir / f"kmc_{label}.txt"
                dargv = ["kmc_tools", f"-t{self.args.threads}", "-hp", "transform", str(out), "dump", "-s", str(txt)]
                dm = self.timed(dargv)
                table = read_kmer_table(txt, self.k, 1, header=False)
                self.kmc_tables[label] = (table.kmers, table.counts[:, 0])
                row.update(dump_wall=dm.wall, distinct=len(table.kmers), total=int(table.counts.sum(dtype=np.uint64)),
                           max_count=int(table.counts.max()) if len(table.kmers) else 0)
                txt.unlink()
            per.append(row)
            self.log(f"  {label}: {m.wall:.3f} s, {mib(m.peak)} MiB" + (f", {row['distinct']:,} distinct" if "distinct" in row else ""))
        res["per_genome"] = per
        res["wall"] = sum(r["wall"] for r in per)
        res["peak"] = max(r["peak"] for r in per)
        res["db_bytes"] = sum(r["db_bytes"] for r in per)
        if self.kmc_tables:
            union = np.unique(np.concatenate([np.sort(t[0]) for t in self.kmc_tables.values()]))  # setup, not timed
            res["union_distinct"] = len(union)
        if not dumper:
            res["note"] = "kmc_tools missing: no dump, exactness skipped"

    # ..................................................................... b. Jellyfish
    def jellyfish(self, res: dict) -> None:
        if not shutil.which("jellyfish"):
            raise Skip("not installed (apt-get install jellyfish)")
        seqs = self.genome_sequences()
        per = []
        for label, path in zip(self.labels, self.inputs):
            src = path
            if path.name.endswith(".gz"):  # jellyfish reads no gzip: decompress first, outside the timed region
                src = self.workdir / f"jf_{label}.{'fq' if FASTQ_SUFFIX.search(path.name) else 'fa'}"
                with gzip.open(path, "rb") as fin, open(src, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 22)
            size = max(1_000_000, sum(len(s) for s in seqs[label]))
            out = self.workdir / f"jf_{label}.jf"
            argv = ["jellyfish", "count", "-m", str(self.k), "-s", str(size), "-t", str(self.args.threads), "-C",
                    "-o", str(out), str(src)]
            m = self.timed_rounds(argv)
            stats = subprocess.run(["jellyfish", "stats", str(out)], capture_output=True, text=True, check=True).stdout
            st = {key.lower(): int(v) for key, v in re.findall(r"^(\w+):\s+(\d+)", stats, re.M)}
            row = {"label": label, "wall": m.wall, "peak": m.peak, "db_bytes": out.stat().st_size,
                   "distinct": st.get("distinct"), "total": st.get("total"), "max_count": st.get("max_count"),
                   "argv": argv}
            per.append(row)
            out.unlink()
            if src != path:
                src.unlink()
            self.log(f"  {label}: {m.wall:.3f} s, {mib(m.peak)} MiB, {row['distinct']:,} distinct")
        res["per_genome"] = per
        res["wall"] = sum(r["wall"] for r in per)
        res["peak"] = max(r["peak"] for r in per)
        res["note"] = "gzip inputs decompressed before timing"

    # ..................................................................... c. kmerdb build --counts
    def build_db(self, res: dict, counts: bool) -> Path:
        why = self.kmerdb_available()
        if why:
            raise Skip(f"kmerdb not available ({why})")
        db = self.workdir / ("counts.kmerdb" if counts else "presence.kmerdb")

        def clean() -> None:
            if db.exists():
                shutil.rmtree(db)
        argv = self.kmerdb_cmd() + ["build", str(db)]
        argv += [f"{lab}={p}" for lab, p in zip(self.labels, self.inputs)]
        argv += ["--k", str(self.k), "--threads", str(self.args.threads), "--max-memory", self.args.max_memory, "--quiet"]
        if counts:
            argv.append("--counts")
        m = self.timed_rounds(argv, before=clean, env=self.kmerdb_env(), cwd=str(REPO))
        res.update(wall=m.wall, peak=m.peak, argv=argv, db_bytes=dir_bytes(db))
        res["mphf_bytes"] = sum(p.stat().st_size for p in db.rglob("*") if p.is_file() and "mphf" in p.name)
        res["max_memory_bytes"] = parse_size(self.args.max_memory)
        self.log(f"  {m.wall:.3f} s, {mib(m.peak)} MiB peak, {mib(res['db_bytes'])} MiB on disk")
        return db

    def build(self, res: dict) -> None:
        self.counts_db = self.build_db(res, counts=True)

    # ..................................................................... d. exactness
    def dump_db(self, db: Path, res: dict) -> KmerTable:
        txt = self.workdir / f"{db.name}.dump.txt"
        m = self.timed(self.kmerdb_cmd() + ["dump", str(db)], stdout_path=txt, env=self.kmerdb_env(), cwd=str(REPO))
        res["dump_wall"] = m.wall
        res["dump_peak"] = m.peak
        table = read_kmer_table(txt, self.k, len(self.labels), header=True)
        txt.unlink()
        if table.labels != self.labels:
            raise RuntimeError(f"dump header labels {table.labels} != {self.labels}")
        return table

    def check_against_kmc(self, table: KmerTable, res: dict, counts: bool) -> None:
        per = []
        for g, label in enumerate(self.labels):
            exp_k, exp_c = self.kmc_tables[label]
            sel = table.counts[:, g] > 0
            cmp = compare_sets(exp_k, exp_c, table.kmers[sel], table.counts[sel, g], self.k, counts)
            row = {"label": label, **cmp.__dict__, "mismatches": cmp.mismatches}
            if not counts:
                row["non_binary"] = int(np.count_nonzero(table.counts[:, g] > 1))
                row["equal"] = row["equal"] and row["non_binary"] == 0
            per.append(row)
            self.log(f"  {label}: {'equal' if row['equal'] else 'DIFFERENT'} ({cmp.got:,} vs KMC {cmp.expected:,}, "
                     f"{cmp.mismatches:,} mismatches)")
        res["per_genome"] = per
        res["rows"] = len(table.kmers)
        res["all_absent_rows"] = int(np.count_nonzero(~(table.counts > 0).any(axis=1)))
        res["equal"] = all(r["equal"] for r in per) and res["all_absent_rows"] == 0

    def exact(self, res: dict) -> None:
        if self.counts_db is None:
            raise Skip("no kmerdb counts index (build section skipped or failed)")
        if not self.kmc_tables:
            raise Skip("no KMC dump (kmc section skipped or failed)")
        table = self.dump_db(self.counts_db, res)
        self.check_against_kmc(table, res, counts=True)

    # ..................................................................... e. presence + size
    def presence(self, res: dict) -> None:
        self.presence_db = self.build_db(res, counts=False)
        kmc = self.results["sections"].get("kmc", {})
        if self.kmc_tables and "union_distinct" in kmc:
            res["distinct"] = kmc["union_distinct"]
            res["distinct_source"] = "KMC (union of the per-genome dumps)"
            table = self.dump_db(self.presence_db, res)
            self.check_against_kmc(table, res, counts=False)
        else:
            res["distinct"] = self.db_n_kmers(self.presence_db)
            res["distinct_source"] = "kmerdb (db.n_kmers)"
        res["db_n_kmers"] = self.db_n_kmers(self.presence_db)
        n = res["distinct"]
        res["bits_per_kmer"] = res["db_bytes"] * 8 / n if n else None
        res["mphf_bits_per_kmer"] = res["mphf_bytes"] * 8 / n if n else None
        b = self.results["sections"].get("build", {})
        if b.get("db_bytes") and n:
            b["bits_per_kmer"] = b["db_bytes"] * 8 / n
            b["mphf_bits_per_kmer"] = b["mphf_bytes"] * 8 / n
        self.log(f"  {res['bits_per_kmer']:.2f} bits per distinct k-mer on disk ({n:,} distinct), "
                 f"MPHF files {res['mphf_bits_per_kmer']:.2f} bits/k-mer")

    def db_n_kmers(self, db: Path) -> int:
        kmerdb = import_kmerdb()
        with kmerdb.open(str(db)) as h:
            return int(h.n_kmers)

    # ..................................................................... f. query + bbhash
    def make_reads(self) -> list[str]:
        rng = np.random.default_rng(self.args.seed)
        L = self.args.read_length
        per_read = L - self.k + 1
        n_reads = max(1, round(self.args.query_kmers / per_read))
        seqs = self.genome_sequences()
        recs = [(g, s) for g, label in enumerate(self.labels) for s in seqs[label] if len(s) >= L]
        if not recs:
            raise RuntimeError(f"no record of {L} bp or more to sample reads from")
        weights = np.array([len(s) - L + 1 for _, s in recs], dtype=np.float64)
        weights /= weights.sum()
        comp = bytes.maketrans(b"ACGT", b"TGCA")
        reads, origin = [], []
        while len(reads) < n_reads:
            need = n_reads - len(reads)
            which = rng.choice(len(recs), size=need, p=weights)
            starts = rng.random(need)
            strands = rng.random(need) < 0.5
            for r, u, rev in zip(which, starts, strands):  # setup, not timed
                g, s = recs[r]
                pos = int(u * (len(s) - L + 1))
                read = s[pos:pos + L]
                if read.strip(b"ACGT"):
                    continue  # non-ACGT inside: resample
                if rev:
                    read = read.translate(comp)[::-1]
                reads.append(read.decode())
                origin.append(g)
        self.read_origin = np.array(origin[:n_reads])
        return reads[:n_reads]

    def query(self, res: dict) -> None:
        db_path = self.counts_db or self.presence_db
        if db_path is None:
            raise Skip("no kmerdb index (build and presence sections skipped or failed)")
        kmerdb = import_kmerdb()
        reads = self.make_reads()
        n_kmers_expected = len(reads) * (self.args.read_length - self.k + 1)
        res.update(reads=len(reads), read_length=self.args.read_length, kmers=n_kmers_expected, db=db_path.name,
                   seed=self.args.seed)
        bb, bb_info = make_bbhash(n_kmers_expected, self.args, self.workdir)
        t0 = time.perf_counter()
        db = kmerdb.open(str(db_path))
        res["open_wall"] = time.perf_counter() - t0
        try:
            times, threaded = [], []
            result = split = None
            for _ in range(self.args.repeat):  # alternate them, so all see the same machine load
                t0 = time.perf_counter()
                result = db.query(reads)
                times.append(time.perf_counter() - t0)
                if self.args.threads > 1:
                    t0 = time.perf_counter()
                    split = db.query(reads, threads=self.args.threads)
                    threaded.append(time.perf_counter() - t0)
                if bb is not None:
                    bb.lookup_once()
            res["first_wall"] = times[0]
            res["wall"] = min(times)
            if threaded:
                res["threaded_wall"] = min(threaded)
                res["threaded_first_wall"] = threaded[0]
                res["threaded_same_answer"] = bool(
                    np.array_equal(split.hits, result.hits) and np.array_equal(split.n_kmers, result.n_kmers)
                )
            res["ns_per_kmer"] = res["wall"] / n_kmers_expected * 1e9
            n_k = np.asarray(result.n_kmers)
            hits = np.asarray(result.hits)
            res["n_kmers_reported"] = int(n_k.sum())
            own = hits[np.arange(len(reads)), self.read_origin]
            res["reads_fully_found"] = int(np.count_nonzero(own == n_k))
            res["reads_all_found_in_source"] = res["reads_fully_found"] == len(reads)
        finally:
            close = getattr(db, "close", None)
            if close:
                close()
        res["bbhash"] = bb.result() if bb is not None else bb_info
        if res["bbhash"].get("lookup_wall"):
            res["ratio_to_bbhash"] = res["wall"] / res["bbhash"]["lookup_wall"]
            if "threaded_wall" in res:
                res["threaded_ratio_to_bbhash"] = res["threaded_wall"] / res["bbhash"]["lookup_wall"]
        self.log(f"  db.query of {len(reads):,} reads ({n_kmers_expected:,} k-mers): best {res['wall']:.3f} s, "
                 f"{res['ns_per_kmer']:.0f} ns/k-mer; {res['reads_fully_found']:,} reads fully found in their genome")

    # ..................................................................... MPHF vs MPHF
    def mphf(self, res: dict) -> None:
        n = self.args.query_kmers if self.args.mphf_keys is None else self.args.mphf_keys
        res["keys"] = n
        bb, bb_info = make_bbhash(n, self.args, self.workdir)
        try:
            import_kmerdb()
            from kmerdb.core.mphf import MPHF  # type: ignore
        except Exception as exc:
            MPHF = None
            res["kmerdb"] = {"status": f"not available ({type(exc).__name__}: {exc})"}
        if MPHF is not None:
            keys, queries = (bb.keys, bb.queries) if bb is not None else random_keys(n, n, self.args.seed)
            t0 = time.perf_counter()
            f = MPHF.build(keys)
            build_wall = time.perf_counter() - t0
            times = []
            slots = None
            for _ in range(self.args.repeat):  # alternate with bbhash: same load for both
                t0 = time.perf_counter()
                slots = f.lookup(queries)
                times.append(time.perf_counter() - t0)
                if bb is not None:
                    bb.lookup_once()
            ok = len(np.unique(slots)) == n and int(slots.min()) == 0 and int(slots.max()) == n - 1
            res["kmerdb"] = {"build_wall": build_wall, "lookup_wall": min(times), "lookup_first_wall": times[0],
                             "ns_per_key": min(times) / n * 1e9, "bits_per_key": float(f.bits_per_key()),
                             "gamma": float(getattr(f, "gamma", float("nan"))), "minimal_perfect": bool(ok)}
            self.log(f"  kmerdb MPHF: build {build_wall:.3f} s, lookup {min(times):.3f} s, "
                     f"{res['kmerdb']['bits_per_key']:.2f} bits/key")
        elif bb is not None:
            for _ in range(self.args.repeat):
                bb.lookup_once()
        res["bbhash"] = bb.result() if bb is not None else bb_info
        bbw = res["bbhash"].get("lookup_wall")
        if bbw and "lookup_wall" in res.get("kmerdb", {}):
            res["lookup_ratio"] = res["kmerdb"]["lookup_wall"] / bbw
            res["build_ratio"] = res["kmerdb"]["build_wall"] / res["bbhash"]["build_wall"]
        if bbw:
            self.log(f"  bbhash: build {res['bbhash']['build_wall']:.3f} s, lookup_many {bbw:.3f} s, "
                     f"{res['bbhash']['bits_per_key']:.2f} bits/key")


class Skip(Exception):
    """A section cannot run here (missing tool or missing earlier result)."""


def import_kmerdb():
    try:
        import kmerdb  # type: ignore
    except ImportError:
        sys.path.insert(0, str(REPO))
        import kmerdb  # type: ignore
    return kmerdb


def random_keys(n_keys: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n_keys distinct random uint64 keys, and n_queries of them in random order (a permutation when equal)."""
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 2**64 - 1, size=n_keys + n_keys // 1000 + 16, dtype=np.uint64, endpoint=True))
    keys = rng.permutation(keys)[:n_keys]
    queries = keys[rng.integers(0, n_keys, size=n_queries)] if n_queries != n_keys else rng.permutation(keys)
    return keys, np.ascontiguousarray(queries)


class quiet_stdout:
    """Silence C-level writes to fd 1 (BBHash's totalBitSize() printf()s its statistics)."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    def __exit__(self, *exc):
        try:
            import ctypes

            ctypes.CDLL(None).fflush(None)
        except Exception:
            pass
        os.dup2(self.saved, 1)
        os.close(self.saved)


class BBHash:
    """A bbhash MPHF over random uint64 keys, and its lookup_many on the same number of keys."""

    def __init__(self, n_keys: int, threads: int, gamma: float, seed: int, workdir: Path):
        import bbhash  # type: ignore  # ImportError: caller reports "not installed"

        self.keys, self.queries = random_keys(n_keys, n_keys, seed)
        key_list = self.keys.tolist()  # PyMPHF takes a Python list of ints; the conversion is not timed
        t0 = time.perf_counter()
        self.mph = bbhash.PyMPHF(key_list, len(key_list), threads, gamma)
        self.build_wall = time.perf_counter() - t0
        del key_list
        with quiet_stdout():
            total_bits = self.mph.get_mem()
        f = workdir / "bbhash.mphf"
        self.mph.save(str(f))
        file_bytes = f.stat().st_size
        f.unlink()
        self.times: list[float] = []
        self.info = {"status": "ok", "keys": n_keys, "queries": n_keys, "gamma": gamma, "threads": threads,
                     "build_wall": self.build_wall, "bits_per_key": total_bits / n_keys,
                     "file_bits_per_key": file_bytes * 8 / n_keys}

    def lookup_once(self) -> None:
        t0 = time.perf_counter()
        out = self.mph.lookup_many(self.queries)
        self.times.append(time.perf_counter() - t0)
        if "minimal_perfect" not in self.info:
            n = len(self.keys)
            self.info["minimal_perfect"] = bool(len(np.unique(out)) == n and int(out.max()) == n - 1)

    def result(self) -> dict:
        if self.times:
            self.info.update(lookup_wall=min(self.times), lookup_first_wall=self.times[0],
                             ns_per_key=min(self.times) / len(self.queries) * 1e9)
        return self.info


def make_bbhash(n_keys: int, args: argparse.Namespace, workdir: Path) -> tuple[BBHash | None, dict]:
    try:
        bb = BBHash(n_keys, args.threads, args.bbhash_gamma, args.seed, workdir)
    except ImportError:
        return None, {"status": "not installed (pip install bbhash)"}
    return bb, bb.info


# --------------------------------------------------------------------------- report


def render(b: Bench) -> None:
    from rich.table import Table

    con = b.console
    S = b.results["sections"]

    def status(name: str) -> str | None:
        s = S.get(name)
        if s is None:
            return "not run (--sections)"
        if s.get("status") in ("skipped", "failed"):
            return f"{s['status']}: {s.get('reason', '')}"
        return None

    kmc = S.get("kmc", {}) if status("kmc") is None else {}
    kmc_wall, kmc_peak = kmc.get("wall"), kmc.get("peak")

    t = Table(title=f"Counting and building: k={b.k}, threads={b.args.threads}, {len(b.inputs)} genomes "
                    f"(kmerdb --max-memory {b.args.max_memory})")
    for col in ("step", "wall s", "peak RSS MiB", "wall vs KMC", "RSS vs KMC", "distinct k-mers", "note"):
        t.add_column(col, justify="left" if col in ("step", "note") else "right", no_wrap=col == "step")
    for name, title in (("kmc", "KMC3"), ("jellyfish", "Jellyfish")):
        if name not in S:
            continue
        st = status(name)
        if st:
            t.add_row(title, "-", "-", "-", "-", "-", st)
            continue
        s = S[name]
        for r in s["per_genome"]:
            d = r.get("distinct")
            t.add_row(f"{title} {r['label']}", secs(r["wall"]), mib(r["peak"]), "", "",
                      f"{d:,}" if d is not None else "-", "")
        t.add_row(f"[bold]{title} total[/bold]", secs(s["wall"]), mib(s["peak"]),
                  ratio(s["wall"], kmc_wall), ratio(s["peak"], kmc_peak), "",
                  "sum of walls, max of peaks" + (f"; {s['note']}" if s.get("note") else ""))
    if S.get("kmc") and status("kmc") is None and S["kmc"].get("union_distinct"):
        t.add_row("KMC union of genomes", "", "", "", "", f"{S['kmc']['union_distinct']:,}", "distinct canonical k-mers of the collection")
    for name, title in (("build", "kmerdb build --counts"), ("presence", "kmerdb build (presence)")):
        if name not in S:
            continue
        st = status(name)
        if st:
            t.add_row(title, "-", "-", "-", "-", "-", st)
            continue
        s = S[name]
        t.add_row(f"[bold]{title}[/bold]", secs(s["wall"]), mib(s["peak"]), ratio(s["wall"], kmc_wall),
                  ratio(s["peak"], kmc_peak), f"{S['presence']['distinct']:,}" if name == "presence" and s.get("distinct") else "",
                  f"all genomes in one index; budget {mib(s['max_memory_bytes'])} MiB")
    if t.row_count:
        con.print(t)

    t = Table(title="Exactness: kmerdb dump vs KMC dump (canonical k-mers; counts / presence)")
    for col in ("index", "genome", "KMC distinct", "kmerdb distinct", "only KMC", "only kmerdb", "count differs",
                "duplicates", "result"):
        t.add_column(col, justify="left" if col in ("index", "genome", "result") else "right")
    for name, title in (("exact", "counts"), ("presence", "presence")):
        if name not in S:
            continue
        st = status(name)
        s = S.get(name, {})
        if st or "per_genome" not in s:
            t.add_row(title, "-", "-", "-", "-", "-", "-", "-", st or "no KMC dump to compare with")
            continue
        for r in s["per_genome"]:
            t.add_row(title, r["label"], f"{r['expected']:,}", f"{r['got']:,}", f"{r['only_expected']:,}",
                      f"{r['only_got']:,}", f"{r['count_differs']:,}" if name == "exact" else "n/a",
                      f"{r['duplicates']:,}",
                      "[green]equal[/green]" if r["equal"] else f"[red]{r['mismatches']:,} mismatches[/red]")
        if s.get("all_absent_rows"):
            t.add_row(title, "(all)", "", "", "", "", "", "", f"[red]{s['all_absent_rows']:,} rows absent everywhere[/red]")
        if s.get("db_n_kmers") is not None and s["db_n_kmers"] != s.get("distinct"):
            t.add_row(title, "(all)", f"{s['distinct']:,}", f"{s['db_n_kmers']:,}", "", "", "", "",
                      "[red]db.n_kmers differs from the union of KMC's sets[/red]")
        nc = sum(r["not_canonical"] for r in s["per_genome"])
        if nc:
            t.add_row(title, "(all)", "", "", "", "", "", "", f"{nc:,} k-mers printed in non-lexicographic orientation")
    if t.row_count:
        con.print(t)
    dumps = [f"kmerdb dump of the {title} index {S[n]['dump_wall']:.1f} s" for n, title in (("exact", "counts"), ("presence", "presence"))
             if S.get(n, {}).get("dump_wall") is not None]
    if kmc.get("per_genome") and kmc["per_genome"][0].get("dump_wall") is not None:
        dumps.append(f"kmc_tools dumps {sum(r['dump_wall'] for r in kmc['per_genome']):.1f} s")
    if dumps:
        con.print("  text dumps (not part of any ratio): " + "; ".join(dumps))

    t = Table(title="On-disk size")
    for col in ("what", "bytes", "bits per distinct k-mer", "note"):
        t.add_column(col, justify="left" if col in ("what", "note") else "right")
    pres = S.get("presence", {}) if status("presence") is None else {}
    n = pres.get("distinct") or kmc.get("union_distinct")
    if "presence" not in S:
        pass
    elif status("presence") is None:
        t.add_row("kmerdb presence index (whole directory)", f"{pres['db_bytes']:,}", f"{pres['bits_per_kmer']:.2f}",
                  f"{n:,} distinct canonical k-mers ({pres['distinct_source']})")
        t.add_row("  of which MPHF files", f"{pres['mphf_bytes']:,}", f"{pres['mphf_bits_per_kmer']:.2f}", "files named *mphf*")
    else:
        t.add_row("kmerdb presence index", "-", "-", status("presence"))
    if "build" in S and status("build") is None:
        bb = S["build"]
        t.add_row("kmerdb counts index (whole directory)", f"{bb['db_bytes']:,}",
                  f"{bb['db_bytes'] * 8 / n:.2f}" if n else "-", "")
    if kmc:
        t.add_row("KMC databases (sum of per-genome .kmc_pre + .kmc_suf)", f"{kmc['db_bytes']:,}",
                  f"{kmc['db_bytes'] * 8 / n:.2f}" if n else "-", "one database per genome, 32-bit counters")
    if t.row_count:
        con.print(t)

    t = Table(title="Query and MPHF lookup")
    for col in ("what", "keys / k-mers", "best wall s", "ns per k-mer", "bits per key", "vs bbhash", "note"):
        t.add_column(col, justify="left" if col in ("what", "note") else "right")
    st = status("query")
    if "query" not in S:
        pass
    elif st:
        t.add_row("kmerdb db.query", "-", "-", "-", "-", "-", st)
    else:
        q = S["query"]
        t.add_row("kmerdb db.query(reads)", f"{q['kmers']:,}", secs(q["wall"]), f"{q['ns_per_kmer']:.1f}",
                  f"{pres['mphf_bits_per_kmer']:.2f}" if pres else "-",
                  ratio(q["wall"], q["bbhash"].get("lookup_wall")),
                  f"{q['reads']:,} reads of {q['read_length']} bp; first call {q['first_wall']:.3f} s; "
                  f"{q['reads_fully_found']:,} reads fully found in their genome")
        if "threaded_wall" in q:
            t.add_row(f"kmerdb db.query(reads, threads={b.args.threads})", f"{q['kmers']:,}", secs(q["threaded_wall"]),
                      f"{q['threaded_wall'] / q['kmers'] * 1e9:.1f}", "-",
                      ratio(q["threaded_wall"], q["bbhash"].get("lookup_wall")),
                      f"the same reads, this thread and {b.args.threads - 1} query worker process(es); "
                      f"first call {q.get('threaded_first_wall', float('nan')):.3f} s (forks the workers); "
                      f"{'same' if q.get('threaded_same_answer') else 'DIFFERENT'} hits as one thread")
        bb = q["bbhash"]
        if bb.get("status") == "ok":
            t.add_row("bbhash lookup_many", f"{bb['queries']:,}", secs(bb["lookup_wall"]), f"{bb['ns_per_key']:.1f}",
                      f"{bb['bits_per_key']:.2f}", "1.00x",
                      f"random uint64 keys, gamma {bb['gamma']}, build {bb['build_wall']:.3f} s")
        else:
            t.add_row("bbhash lookup_many", "-", "-", "-", "-", "-", bb.get("status", ""))
    st = status("mphf")
    if not st:
        m = S["mphf"]
        bb = m["bbhash"]
        kd = m.get("kmerdb", {})
        if bb.get("status") == "ok":
            t.add_row("bbhash MPHF (same keys)", f"{m['keys']:,}", secs(bb["lookup_wall"]), f"{bb['ns_per_key']:.1f}",
                      f"{bb['bits_per_key']:.2f}", "1.00x", f"build {bb['build_wall']:.3f} s; saved file "
                      f"{bb['file_bits_per_key']:.2f} bits/key")
        else:
            t.add_row("bbhash MPHF", "-", "-", "-", "-", "-", bb.get("status", ""))
        if "lookup_wall" in kd:
            t.add_row("kmerdb.core.mphf.MPHF.lookup (same keys)", f"{m['keys']:,}", secs(kd["lookup_wall"]),
                      f"{kd['ns_per_key']:.1f}", f"{kd['bits_per_key']:.2f}",
                      ratio(kd["lookup_wall"], bb.get("lookup_wall")),
                      f"build {kd['build_wall']:.3f} s"
                      + (f" ({ratio(kd['build_wall'], bb['build_wall'])} bbhash's)" if bb.get("build_wall") else "") + ", "
                      f"gamma {kd['gamma']}" + ("" if kd["minimal_perfect"] else "; [red]NOT minimal perfect[/red]"))
        else:
            t.add_row("kmerdb.core.mphf.MPHF", "-", "-", "-", "-", "-", kd.get("status", ""))
    elif "mphf" in b.args.sections:
        t.add_row("MPHF comparison", "-", "-", "-", "-", "-", st)
    if t.row_count:
        con.print(t)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Benchmark kmerdb against KMC3, Jellyfish and bbhash on real genomes (a benchmark, not a test).")
    p.add_argument("inputs", nargs="*", type=Path,
                   help=f"FASTA/FASTQ genomes (default: the three complete genomes in {DATA})")
    p.add_argument("--k", type=int, default=31, help="k-mer length (default 31)")
    p.add_argument("--threads", type=int, default=2, help="threads / worker processes for every tool (default 2)")
    p.add_argument("--max-memory", default="512M", help="kmerdb build memory budget (default 512M)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="scratch directory, kept afterwards (default: a temporary directory, removed)")
    p.add_argument("--sections", default=",".join(ALL_SECTIONS),
                   help=f"comma-separated subset of {','.join(ALL_SECTIONS)} (default: all)")
    p.add_argument("--read-length", type=int, default=150, help="simulated read length for the query (default 150)")
    p.add_argument("--query-kmers", type=int, default=2_400_000,
                   help="total k-mers of the simulated reads, also bbhash's key count (default 2,400,000)")
    p.add_argument("--mphf-keys", type=int, default=None, help="keys of the MPHF-vs-MPHF section (default --query-kmers)")
    p.add_argument("--bbhash-gamma", type=float, default=2.0, help="bbhash gamma (default 2.0, BBHash's own default)")
    p.add_argument("--rounds", type=int, default=1,
                   help="runs of every counting/build command; best wall and largest peak reported (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="query/lookup repetitions; the best is reported (default 3)")
    p.add_argument("--seed", type=int, default=42, help="random seed for reads and keys (default 42)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write all figures as JSON")
    p.add_argument("--quiet", action="store_true", help="only the final tables")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failed sections")
    args = p.parse_args(argv)

    from rich.console import Console

    console = Console()
    if not console.is_terminal or console.width < 150:
        console = Console(width=150)  # the tables are wide; do not wrap them to 80 columns in a pipe
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(ALL_SECTIONS)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    try:
        parse_size(args.max_memory)
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    if not 1 <= args.k <= 31:
        p.error("--k must be in 1..31")

    inputs = [Path(x).resolve() for x in args.inputs] or [DATA / name for name in DEFAULT_GENOMES]
    missing = [str(x) for x in inputs if not x.is_file()]
    if missing:
        where = "" if args.inputs else f"\nThe default genomes live in {DATA} (see that folder's README.md); " \
                                          "or pass FASTA/FASTQ files as arguments."
        print("bench: input file(s) not found:\n  " + "\n  ".join(missing) + where, file=sys.stderr)
        return 2
    labels = [label_of(x) for x in inputs]
    if len(set(labels)) != len(labels):
        print(f"bench: inputs must have distinct labels, got {labels}", file=sys.stderr)
        return 2

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="kmerdb-bench-")) if own_workdir else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    b = Bench(args, inputs, workdir, console)
    try:
        b.run_section("kmc", b.kmc)
        b.run_section("jellyfish", b.jellyfish)
        b.run_section("build", b.build)
        b.run_section("exact", b.exact)
        b.run_section("presence", b.presence)
        b.run_section("query", b.query)
        b.run_section("mphf", b.mphf)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    b.results["load_average_end"] = list(os.getloadavg())
    render(b)
    busy = max(b.results["load_average_start"][0], b.results["load_average_end"][0])
    if busy > 0.5 * (os.cpu_count() or 1):
        console.print(f"[yellow]note: 1-minute load average reached {busy:.1f} on {os.cpu_count()} CPUs: other work "
                      "was running, absolute times are noisy (ratios less so)[/yellow]")
    if args.json:
        args.json.write_text(json.dumps(b.results, indent=2, default=str) + "\n")
        console.print(f"figures written to {args.json}")
    failed = [n for n, s in b.results["sections"].items() if s.get("status") == "failed"]
    inexact = [n for n in ("exact", "presence") if b.results["sections"].get(n, {}).get("equal") is False]
    if failed or inexact:
        console.print(f"[red]failed sections: {', '.join(failed) or '-'}; inexact: {', '.join(inexact) or '-'}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
