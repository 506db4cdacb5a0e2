#!/usr/bin/env python3
"""kmerdb against real peers, side by side in one run, reported as ratios.

This is a benchmark, not a test: nothing here asserts a speed. Sections:

  kmc        KMC3 as a user runs it: once over all inputs (kmc ... -fm @list.txt OUT TMP), wall and
             peak RSS: the baseline of every build ratio. Then, for the exactness check only, one
             KMC3 run per genome and its kmc_tools dump (their times are no baseline).
  jellyfish  Jellyfish counts the canonical k-mers of all inputs in one run (wall, peak RSS).
  build      kmerdb builds one index of all genomes with --counts (console, in a subprocess); its
             bits per distinct k-mer by structure (db.stats()) and in all.
  exact      kmerdb's dump equals KMC3's k-mer sets and counts, genome by genome.
  presence   kmerdb builds a presence-only index; the same figures, and its dump against KMC3's sets.
  query      db.query() of 20,000 simulated 150 bp reads on each index at threads=1 and --threads
             (one warm handle per index, median of --repeat) vs bbhash lookup_many on as many keys
             in 1 and --threads processes (its MPHF built beforehand, untimed).
  mphf       kmerdb.core.mphf.MPHF vs bbhash on the same random uint64 keys (build, lookup, bits/key).

A last table sums up the figures of the "compact exact dictionary and a faster core" work against
its targets: dictionary (MPHF + evidence + unitigs) <= 16 bits per distinct k-mer, whole presence
index <= 24, db.query at one thread <= 1x bbhash, build with --counts <= 2x KMC3 over @list.

Peak RSS is the sum over the whole process tree (tools/procmem.py), sampled every 20 ms.

    python tools/bench.py                       # the three complete genomes of ../shared/data
    python tools/bench.py --rounds 3 --repeat 9 --json bench.json
    python tools/bench.py --sections kmc,build,presence,query
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import re
import shutil
import statistics
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


def kmc_input_format(paths: list[Path]) -> str:
    """KMC3's input format flag for one run over these files: -fq (all FASTQ) or -fm (all FASTA)."""
    fastq = {bool(FASTQ_SUFFIX.search(p.name)) for p in paths}
    if len(fastq) != 1:
        raise ValueError("KMC3 reads one format per run: the inputs mix FASTA and FASTQ" if fastq
                         else "no input files")
    return "-fq" if fastq.pop() else "-fm"


def write_kmc_list(paths: list[Path], dest: Path) -> Path:
    """KMC3's @list file: one absolute input path per line."""
    lines = [str(Path(p).resolve()) for p in paths]
    if not lines:
        raise ValueError("no input files")
    bad = [x for x in lines if "\n" in x or "\r" in x]
    if bad:
        raise ValueError(f"a path with a line break cannot go in a KMC3 list file: {bad[0]!r}")
    dest.write_text("".join(x + "\n" for x in lines))
    return dest


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


def git_commit() -> str | None:
    """The repository's commit, with "-dirty" when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


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
            "commit": git_commit(),
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
    def kmc_memory_gb(self) -> int:
        return max(2, math.ceil(parse_size(self.args.max_memory) / (1 << 30)))  # KMC's minimum is 2 GB

    def kmc(self, res: dict) -> None:
        """KMC3 as a user runs it: once over all inputs (@list): the baseline of every build ratio.

        Per-genome KMC3 runs follow, only as the source of the exactness check (their dumps); their
        times are kept in the JSON but are no baseline.
        """
        if not shutil.which("kmc"):
            raise Skip("not installed (apt-get install kmc)")
        try:
            fmt = kmc_input_format(self.inputs)
        except ValueError as exc:
            raise Skip(str(exc)) from None
        lst = write_kmc_list(self.inputs, self.workdir / "list.txt")
        out = self.workdir / "kmc_all"
        tmp = self.workdir / "kmc_tmp"

        def fresh_tmp() -> None:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for p in self.workdir.glob("kmc_all.kmc_*"):
                p.unlink()

        argv = ["kmc", f"-k{self.k}", "-ci1", "-cs4294967295", f"-t{self.args.threads}", f"-m{self.kmc_memory_gb()}",
                fmt, f"@{lst}", str(out), str(tmp)]
        report = self.workdir / "kmc_all.stdout"
        m = self.timed_rounds(argv, before=fresh_tmp, stdout_path=report)
        text = report.read_text(errors="replace")
        found = re.search(r"No\. of unique counted k-mers\s*:\s*(\d+)", text)
        res.update(wall=m.wall, peak=m.peak, argv=argv, list=str(lst), list_lines=len(self.inputs),
                   distinct=int(found.group(1)) if found else None,
                   db_bytes=sum(p.stat().st_size for p in self.workdir.glob("kmc_all.kmc_*")))
        self.log(f"  one run over @list ({len(self.inputs)} inputs): {m.wall:.3f} s, {mib(m.peak)} MiB"
                 + (f", {res['distinct']:,} distinct" if res["distinct"] is not None else ""))
        if not ({"exact", "presence"} & set(self.args.sections)):
            return
        dumper = shutil.which("kmc_tools")
        if not dumper:
            res["note"] = "kmc_tools missing: no dump, exactness skipped"
            return
        # exactness source only: one KMC3 database per genome, dumped (times not a baseline)
        per = []
        for label, path in zip(self.labels, self.inputs):
            fresh_tmp()
            gout = self.workdir / f"kmc_{label}"
            gargv = ["kmc", f"-k{self.k}", "-ci1", "-cs4294967295", f"-t{self.args.threads}",
                     f"-m{self.kmc_memory_gb()}", kmc_input_format([path]), str(path), str(gout), str(tmp)]
            gm = self.timed(gargv)
            txt = self.workdir / f"kmc_{label}.txt"
            dargv = ["kmc_tools", f"-t{self.args.threads}", "-hp", "transform", str(gout), "dump", "-s", str(txt)]
            dm = self.timed(dargv)
            table = read_kmer_table(txt, self.k, 1, header=False)
            txt.unlink()
            for p in self.workdir.glob(f"kmc_{label}.kmc_*"):
                p.unlink()
            self.kmc_tables[label] = (table.kmers, table.counts[:, 0])
            per.append({"label": label, "argv": gargv, "wall_not_baseline": gm.wall, "peak_not_baseline": gm.peak,
                        "dump_wall": dm.wall, "distinct": len(table.kmers),
                        "total": int(table.counts.sum(dtype=np.uint64)),
                        "max_count": int(table.counts.max()) if len(table.kmers) else 0})
            self.log(f"  {label}: {len(table.kmers):,} distinct (per-genome run for the exactness check)")
        shutil.rmtree(tmp, ignore_errors=True)
        res["per_genome"] = per
        union = np.unique(np.concatenate([t[0] for t in self.kmc_tables.values()]))  # setup, not timed
        res["union_distinct"] = len(union)
        res["union_equals_list_run"] = res["distinct"] == len(union)

    # ..................................................................... b. Jellyfish
    def jellyfish(self, res: dict) -> None:
        """Jellyfish as a user runs it: once over all inputs (it counts their union, as KMC3 over @list)."""
        if not shutil.which("jellyfish"):
            raise Skip("not installed (apt-get install jellyfish)")
        seqs = self.genome_sequences()
        srcs = []
        for label, path in zip(self.labels, self.inputs):
            src = path
            if path.name.endswith(".gz"):  # jellyfish reads no gzip: decompress first, outside the timed region
                src = self.workdir / f"jf_{label}.{'fq' if FASTQ_SUFFIX.search(path.name) else 'fa'}"
                with gzip.open(path, "rb") as fin, open(src, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 22)
            srcs.append(src)
        size = max(1_000_000, sum(len(s) for label in self.labels for s in seqs[label]))
        out = self.workdir / "jf_all.jf"
        argv = ["jellyfish", "count", "-m", str(self.k), "-s", str(size), "-t", str(self.args.threads), "-C",
                "-o", str(out), *map(str, srcs)]
        try:
            m = self.timed_rounds(argv)
            stats = subprocess.run(["jellyfish", "stats", str(out)], capture_output=True, text=True, check=True).stdout
            st = {key.lower(): int(v) for key, v in re.findall(r"^(\w+):\s+(\d+)", stats, re.M)}
            res.update(wall=m.wall, peak=m.peak, argv=argv, db_bytes=out.stat().st_size, distinct=st.get("distinct"),
                       total=st.get("total"), max_count=st.get("max_count"),
                       note="one run over all inputs; gzip inputs decompressed before timing")
        finally:
            out.unlink(missing_ok=True)
            for src, path in zip(srcs, self.inputs):
                if src != path:
                    src.unlink(missing_ok=True)
        self.log(f"  one run over {len(srcs)} inputs: {m.wall:.3f} s, {mib(m.peak)} MiB, "
                 f"{res['distinct'] or 0:,} distinct")

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
        res.update(wall=m.wall, peak=m.peak, argv=argv, max_memory_bytes=parse_size(self.args.max_memory))
        kmc = self.results["sections"].get("kmc", {})
        if kmc.get("wall"):
            res["kmc_list_wall"], res["kmc_list_peak"] = kmc["wall"], kmc["peak"]
            res["wall_ratio_kmc"] = m.wall / kmc["wall"]
            res["peak_ratio_kmc"] = m.peak / kmc["peak"]
        res["size"] = size = self.size_of(db)
        res["db_bytes"], res["n_kmers"], res["bits_per_kmer"] = size["bytes"], size["n_kmers"], size["bits_per_kmer"]
        if kmc.get("distinct") is not None:
            res["n_kmers_equals_kmc"] = size["n_kmers"] == kmc["distinct"]
        self.log(f"  {m.wall:.3f} s, {mib(m.peak)} MiB peak"
                 + (f" ({res['wall_ratio_kmc']:.2f}x KMC3's wall, {res['peak_ratio_kmc']:.2f}x its peak)"
                    if "wall_ratio_kmc" in res else "")
                 + f"; {mib(size['bytes'])} MiB on disk, {size['bits_per_kmer']:.2f} bits per k-mer, dictionary "
                 f"{size['dictionary']:.2f}")
        return db

    def size_of(self, db: Path) -> dict:
        """Bits per distinct k-mer by structure (db.stats()) and of the whole index directory."""
        kmerdb = import_kmerdb()
        with kmerdb.open(str(db)) as h:
            stats = h.stats()
        n = int(stats["n_kmers"])
        total = dir_bytes(db)
        structures = stats["structures"]
        out: dict[str, Any] = {"n_kmers": n, "bytes": total, "bits_per_kmer": 8 * total / n if n else None}
        for role in ("dictionary", "mphf", "evidence", "unitigs", "columns"):
            out[role] = structures.get(role, {}).get("bits_per_kmer", 0.0)
        out["lookup"] = out["dictionary"] + out["mphf"] + out["evidence"]  # what finds a key's slot
        out["dictionary"] = stats["index"]["bits_per_kmer"]  # the above + unitigs
        rest = total - sum(int(v["bytes"]) for v in structures.values())
        out["rest_bytes"] = rest  # catalog (LMDB), headers, anything the structures do not name
        out["rest"] = 8 * rest / n if n else None
        out["stats"] = stats
        return out

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
        if self.kmc_tables:
            table = self.dump_db(self.presence_db, res)
            self.check_against_kmc(table, res, counts=False)

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

    def query_thread_counts(self) -> list[int]:
        return sorted({1, max(1, self.args.threads)})

    def query(self, res: dict) -> None:
        """db.query of simulated reads on each index at 1 and --threads threads (one warm handle per index,
        median of --repeat), against bbhash lookup_many on as many keys at as many threads."""
        targets = [(name, path) for name, path in (("presence", self.presence_db), ("counts", self.counts_db)) if path]
        if not targets:
            raise Skip("no kmerdb index (build and presence sections skipped or failed)")
        kmerdb = import_kmerdb()
        reads = self.make_reads()
        n_kmers = len(reads) * (self.args.read_length - self.k + 1)
        tcs = self.query_thread_counts()
        res.update(reads=len(reads), read_length=self.args.read_length, kmers=n_kmers, seed=self.args.seed,
                   repeat=self.args.repeat, thread_counts=tcs, statistic="median")
        bb, bb_info = make_bbhash(n_kmers, self.args, self.workdir)  # its MPHF is built here, untimed
        handles: dict[str, Any] = {}
        try:
            if bb is not None and max(tcs) > 1:
                bb.start_workers(max(tcs))  # forked before any kmerdb handle is opened
            out: dict[str, dict] = {}
            answers: dict[tuple[str, int], Any] = {}
            for name, path in targets:
                t0 = time.perf_counter()
                handles[name] = kmerdb.open(str(path))
                out[name] = {"db": path.name, "open_wall": time.perf_counter() - t0}
            # warm-up, untimed in the figures: faults in the mapped files, forks the query workers
            for name, h in handles.items():
                for t in tcs:
                    t0 = time.perf_counter()
                    answers[name, t] = h.query(reads, threads=t)
                    out[name][f"threads_{t}"] = {"first_wall": time.perf_counter() - t0, "walls": []}
            if bb is not None:
                for t in tcs:
                    bb.lookup_once(t, record=False)
            for _ in range(self.args.repeat):  # interleaved, so all see the same machine load
                for name, h in handles.items():
                    for t in tcs:
                        t0 = time.perf_counter()
                        h.query(reads, threads=t)
                        out[name][f"threads_{t}"]["walls"].append(time.perf_counter() - t0)
                if bb is not None:
                    for t in tcs:
                        bb.lookup_once(t)
            res["bbhash"] = bb.result() if bb is not None else bb_info
            for name, r in out.items():
                one = answers[name, 1]
                for t in tcs:
                    q = r[f"threads_{t}"]
                    q["wall"] = statistics.median(q["walls"])
                    q["ns_per_kmer"] = q["wall"] / n_kmers * 1e9
                    bw = res["bbhash"].get(f"threads_{t}", {}).get("wall")
                    q["ratio_to_bbhash"] = q["wall"] / bw if bw else None
                    if t != 1:
                        q["same_answer_as_one_thread"] = bool(
                            np.array_equal(answers[name, t].hits, one.hits)
                            and np.array_equal(answers[name, t].n_kmers, one.n_kmers))
                n_k = np.asarray(one.n_kmers)
                own = np.asarray(one.hits)[np.arange(len(reads)), self.read_origin]
                r["n_kmers_reported"] = int(n_k.sum())
                r["reads_fully_found"] = int(np.count_nonzero(own == n_k))
                self.log(f"  {name} index: " + ", ".join(
                    f"threads={t} {r[f'threads_{t}']['wall']:.3f} s ({r[f'threads_{t}']['ns_per_kmer']:.1f} ns/k-mer)"
                    for t in tcs) + f"; {r['reads_fully_found']:,} of {len(reads):,} reads fully found in their genome")
            res["indexes"] = out
        finally:
            for h in handles.values():
                h.close()
            if bb is not None:
                bb.close()
        if res["bbhash"].get("status") == "ok":
            self.log("  bbhash lookup_many: " + ", ".join(
                f"threads={t} {res['bbhash'][f'threads_{t}']['wall']:.3f} s" for t in tcs))

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
    """A bbhash MPHF over random uint64 keys, and its lookup_many on the same number of keys.

    lookup_many holds the GIL, so Python threads do not run it in parallel. At T > 1 "threads" the
    keys are cut in T parts: this process looks up the first and T - 1 worker processes, forked once
    after the MPHF is built (so they hold it and their parts already), one each, writing their slots
    into shared memory. A timed call is a message to each worker, this process's part, and the
    workers' replies: no keys are copied. That is the least a second core can cost bbhash.
    """

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
        self.times: dict[int, list[float]] = {}
        self.workers: list[tuple[Any, Any]] = []  # (process, connection)
        self.parts: list[np.ndarray] = [self.queries]
        self.info: dict[str, Any] = {"status": "ok", "keys": n_keys, "queries": n_keys, "gamma": gamma,
                                     "threads": threads, "build_wall": self.build_wall,
                                     "bits_per_key": total_bits / n_keys, "file_bits_per_key": file_bytes * 8 / n_keys}

    def start_workers(self, threads: int) -> None:
        """Fork threads - 1 worker processes for lookup_once(threads) (setup, not timed)."""
        import mmap
        import multiprocessing

        self.parts = np.array_split(self.queries, threads)
        self.shared = [mmap.mmap(-1, max(8, 8 * len(p))) for p in self.parts[1:]]  # MAP_SHARED, anonymous
        ctx = multiprocessing.get_context("fork")
        for part, buf in zip(self.parts[1:], self.shared):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_bbhash_worker, args=(self.mph, part, buf, child), daemon=True)
            proc.start()
            child.close()
            self.workers.append((proc, parent))

    def lookup_once(self, threads: int = 1, record: bool = True) -> None:
        if threads > 1 and len(self.workers) != threads - 1:
            raise RuntimeError(f"start_workers({threads}) first")
        t0 = time.perf_counter()
        if threads == 1:
            out = self.mph.lookup_many(self.queries)
        else:
            for _, conn in self.workers:
                conn.send(True)
            out = self.mph.lookup_many(self.parts[0])
            for _, conn in self.workers:
                conn.recv()
        wall = time.perf_counter() - t0
        if record:
            self.times.setdefault(threads, []).append(wall)
        if threads > 1:  # untimed: the parts' slots together
            out = np.concatenate([out] + [np.frombuffer(b, dtype=np.uint64, count=len(p))
                                          for p, b in zip(self.parts[1:], self.shared)])
        key = "minimal_perfect" if threads == 1 else f"same_slots_threads_{threads}"
        if key not in self.info:
            if threads == 1:
                n = len(self.keys)
                self.one_thread_slots = out
                self.info[key] = bool(len(np.unique(out)) == n and int(out.max()) == n - 1)
            elif hasattr(self, "one_thread_slots"):
                self.info[key] = bool(np.array_equal(out, self.one_thread_slots))

    def close(self) -> None:
        for proc, conn in self.workers:
            with contextlib.suppress(OSError):
                conn.send(False)
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
        self.workers = []

    def result(self) -> dict:
        n = len(self.queries)
        for t, walls in sorted(self.times.items()):
            med = statistics.median(walls)
            self.info[f"threads_{t}"] = {"walls": walls, "wall": med, "ns_per_key": med / n * 1e9,
                                         "processes": t}
        ones = self.times.get(1)
        if ones:  # the MPHF section's figures: best of --repeat, one thread
            self.info.update(lookup_wall=min(ones), lookup_first_wall=ones[0], ns_per_key=min(ones) / n * 1e9)
        return self.info


def _bbhash_worker(mph: Any, queries: np.ndarray, shared: Any, conn: Any) -> None:
    """A forked worker of BBHash.lookup_once: one lookup_many of its part per message."""
    out = np.frombuffer(shared, dtype=np.uint64, count=len(queries))
    while conn.recv():
        out[:] = mph.lookup_many(queries)
        conn.send(True)


def make_bbhash(n_keys: int, args: argparse.Namespace, workdir: Path) -> tuple[BBHash | None, dict]:
    try:
        bb = BBHash(n_keys, args.threads, args.bbhash_gamma, args.seed, workdir)
    except ImportError:
        return None, {"status": "not installed (pip install bbhash)"}
    return bb, bb.info


# --------------------------------------------------------------------------- report


def summarize(results: dict) -> list[dict]:
    """The figures the "compact exact dictionary and a faster core" work is judged by, with their targets.

    Each row: figure, measured value and unit, what it is set against, ratio and target. For sizes the
    ratio is the value over the target's bound; for times, over the peer's time.
    """
    S = results["sections"]

    def ok(name: str) -> dict:
        s = S.get(name, {})
        return s if s.get("status") == "ok" else {}

    kmc, pres, query = ok("kmc"), ok("presence"), ok("query")
    rows: list[dict] = []

    def add(figure: str, value: float | None, unit: str, against: str, base: float | None, target: str,
            target_ratio: float | None, note: str = "") -> None:
        rows.append({"figure": figure, "value": value, "unit": unit, "against": against, "baseline": base,
                     "ratio": value / base if value is not None and base else None, "target": target,
                     "target_ratio": target_ratio, "note": note})

    size = pres.get("size", {})
    add("exact dictionary (minimizer dictionary + unitigs), presence index", size.get("dictionary"), "bits/k-mer",
        "target bound", 16.0, "<= 16 bits/k-mer", 1.0,
        "lookup {:.2f} + unitigs {:.2f}".format(size.get("lookup", 0.0), size["unitigs"]) if size else "")
    add("whole presence index on disk (all files, catalog included)", size.get("bits_per_kmer"), "bits/k-mer",
        "target bound", 24.0, "<= 24 bits/k-mer", 1.0,
        f"columns {size['columns']:.2f}, catalog and other files {size['rest']:.2f}" if size else "")
    bb = query.get("bbhash", {})
    for name in ("presence", "counts"):
        q = query.get("indexes", {}).get(name)
        if not q:
            continue
        for t in query["thread_counts"]:
            r, bt = q[f"threads_{t}"], bb.get(f"threads_{t}", {})
            add(f"db.query, {name} index, threads={t}", r["ns_per_kmer"], "ns/k-mer",
                f"bbhash lookup_many, {t} process{'es' if t > 1 else ''}", bt.get("ns_per_key"),
                "<= 1x bbhash" if t == 1 else "-", 1.0 if t == 1 else None,
                f"median of {query['repeat']}, {query['kmers']:,} k-mers")
    kw, kp = kmc.get("wall"), kmc.get("peak")
    for name, title, target in (("build", "build --counts", "<= 2x KMC3"), ("presence", "build (presence)", "-")):
        s = ok(name)
        if not s:
            continue
        add(f"{title}, wall", s["wall"], "s", "KMC3, one run over @list", kw, target,
            2.0 if name == "build" else None)
        add(f"{title}, peak RSS of the process tree", s["peak"] / MiB, "MiB", "KMC3, one run over @list",
            kp / MiB if kp else None, "-", None, f"kmerdb --max-memory {results['max_memory']}")
    return rows


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
                    f"(kmerdb --max-memory {b.args.max_memory}); ratios to KMC3's one run over @list")
    for col in ("step", "wall s", "peak RSS MiB", "wall vs KMC3", "RSS vs KMC3", "distinct k-mers", "note"):
        t.add_column(col, justify="left" if col in ("step", "note") else "right", no_wrap=col == "step")
    rows = (("kmc", "KMC3 over @list"), ("jellyfish", "Jellyfish over all inputs"),
            ("build", "kmerdb build --counts"), ("presence", "kmerdb build (presence)"))
    for name, title in rows:
        if name not in S:
            continue
        st = status(name)
        if st:
            t.add_row(title, "-", "-", "-", "-", "-", st)
            continue
        s = S[name]
        d = s.get("n_kmers", s.get("distinct"))
        if name == "kmc":
            note = f"{s['list_lines']} inputs in list.txt, -m{b.kmc_memory_gb()}"
        elif name == "jellyfish":
            note = s.get("note", "")
        else:
            note = f"all genomes in one index; budget {mib(s['max_memory_bytes'])} MiB"
            if s.get("n_kmers_equals_kmc") is False:
                note += "; [red]n_kmers differs from KMC3's[/red]"
        t.add_row(f"[bold]{title}[/bold]", secs(s["wall"]), mib(s["peak"]), ratio(s["wall"], kmc_wall),
                  ratio(s["peak"], kmc_peak), f"{d:,}" if d is not None else "-", note)
    for r in kmc.get("per_genome", []):
        t.add_row(f"  KMC3 {r['label']}", "", "", "", "", f"{r['distinct']:,}",
                  "per-genome run: source of the exactness check only, its time is no baseline")
    if kmc.get("union_distinct") is not None:
        t.add_row("  KMC3 union of the genomes", "", "", "", "", f"{kmc['union_distinct']:,}",
                  "equals the @list run" if kmc.get("union_equals_list_run") else "[red]differs from the @list run[/red]")
    if t.row_count:
        con.print(t)

    t = Table(title="Exactness: kmerdb dump vs KMC3's per-genome dumps (canonical k-mers; counts / presence)")
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
        nc = sum(r["not_canonical"] for r in s["per_genome"])
        if nc:
            t.add_row(title, "(all)", "", "", "", "", "", "", f"{nc:,} k-mers printed in non-lexicographic orientation")
    if t.row_count:
        con.print(t)
    dumps = [f"kmerdb dump of the {title} index {S[n]['dump_wall']:.1f} s" for n, title in (("exact", "counts"), ("presence", "presence"))
             if S.get(n, {}).get("dump_wall") is not None]
    if kmc.get("per_genome"):
        dumps.append(f"KMC3 per-genome runs {sum(r['wall_not_baseline'] for r in kmc['per_genome']):.1f} s and "
                     f"kmc_tools dumps {sum(r['dump_wall'] for r in kmc['per_genome']):.1f} s")
    if dumps:
        con.print("  exactness work (not part of any ratio): " + "; ".join(dumps))

    t = Table(title="On-disk size: bits per distinct k-mer (db.stats(); whole index = every file under it)")
    for col in ("index", "distinct k-mers", "mphf", "evidence", "unitigs", "dictionary", "columns",
                "catalog, other", "whole index", "MiB"):
        t.add_column(col, justify="left" if col == "index" else "right")
    for name, title in (("presence", "kmerdb presence"), ("build", "kmerdb --counts")):
        if name not in S:
            continue
        st = status(name)
        if st:
            t.add_row(title, st, *["-"] * 8)
            continue
        z = S[name]["size"]
        t.add_row(title, f"{z['n_kmers']:,}", *(f"{z[r]:.2f}" for r in ("mphf", "evidence", "unitigs")),
                  f"[bold]{z['dictionary']:.2f}[/bold]", f"{z['columns']:.2f}", f"{z['rest']:.2f}",
                  f"[bold]{z['bits_per_kmer']:.2f}[/bold]", mib(z["bytes"]))
    if kmc.get("db_bytes") and kmc.get("distinct"):
        t.add_row("KMC3 database of the @list run", f"{kmc['distinct']:,}", "", "", "", "", "", "",
                  f"{kmc['db_bytes'] * 8 / kmc['distinct']:.2f}", mib(kmc["db_bytes"]))
    if t.row_count:
        con.print(t)

    t = Table(title=f"Query: db.query of simulated reads, one warm handle per index, median of {b.args.repeat}")
    for col in ("what", "k-mers / keys", "median wall s", "ns per k-mer", "vs bbhash (same threads)", "note"):
        t.add_column(col, justify="left" if col in ("what", "note") else "right")
    st = status("query")
    if "query" not in S:
        pass
    elif st:
        t.add_row("kmerdb db.query", "-", "-", "-", "-", st)
    else:
        q = S["query"]
        for name, r in q["indexes"].items():
            for tc in q["thread_counts"]:
                x = r[f"threads_{tc}"]
                note = f"first call {x['first_wall']:.3f} s"
                if tc > 1:
                    note += (f" (forks {tc - 1} query worker process{'es' if tc > 2 else ''}); "
                             f"{'same' if x.get('same_answer_as_one_thread') else '[red]DIFFERENT[/red]'} hits as one thread")
                else:
                    note += f"; {r['reads_fully_found']:,} of {q['reads']:,} reads fully found in their genome"
                t.add_row(f"{name} index, threads={tc}", f"{q['kmers']:,}", secs(x["wall"]), f"{x['ns_per_kmer']:.1f}",
                          ratio(x["wall"], q["bbhash"].get(f"threads_{tc}", {}).get("wall")), note)
        bb = q["bbhash"]
        if bb.get("status") == "ok":
            for tc in q["thread_counts"]:
                x = bb[f"threads_{tc}"]
                how = ("one call" if tc == 1 else
                       f"this process and {tc - 1} forked worker(s), a part of the keys each"
                       + ("" if bb.get(f"same_slots_threads_{tc}") else "; [red]slots differ[/red]"))
                t.add_row(f"bbhash lookup_many, {tc} process{'es' if tc > 1 else ''}", f"{bb['queries']:,}",
                          secs(x["wall"]), f"{x['ns_per_key']:.1f}", "1.00x",
                          f"random uint64 keys, gamma {bb['gamma']}; {how}; MPHF built beforehand in "
                          f"{bb['build_wall']:.3f} s, untimed")
        else:
            t.add_row("bbhash lookup_many", "-", "-", "-", "-", bb.get("status", ""))
    if t.row_count:
        con.print(t)

    t = Table(title="MPHF vs MPHF: the same random uint64 keys, best of --repeat")
    for col in ("what", "keys", "best wall s", "ns per key", "bits per key", "vs bbhash", "note"):
        t.add_column(col, justify="left" if col in ("what", "note") else "right")
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

    rows = b.results.get("summary") or []
    t = Table(title="Summary: the figures of the compact exact dictionary and the faster core, and their targets")
    for col in ("figure", "measured", "against", "ratio", "target"):
        t.add_column(col, justify="right" if col in ("measured", "ratio") else "left")
    for r in rows:
        v, base = r["value"], r["baseline"]
        fmt = (lambda x: f"{x:,.1f}") if r["unit"] in ("ns/k-mer", "MiB") else (lambda x: f"{x:,.2f}")
        measured = "-" if v is None else f"{fmt(v)} {r['unit']}"
        against = r["against"] + ("" if base is None or r["against"] == "target bound" else f" {fmt(base)} {r['unit']}")
        if r["against"] == "target bound":
            against = "the target's bound" + (f"; {r['note']}" if r["note"] else "")
        elif r["note"]:
            against += f"; {r['note']}"
        t.add_row(r["figure"], measured, against, "-" if r["ratio"] is None else f"{r['ratio']:.2f}x", r["target"])
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
    p.add_argument("--repeat", type=int, default=5,
                   help="query/lookup repetitions after a warm-up call: the query's median, the MPHF section's best "
                        "(default 5)")
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
    for name in ("threads", "rounds", "repeat", "read_length", "query_kmers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.read_length < args.k:
        p.error("--read-length must be at least --k")

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
    b.results["summary"] = summarize(b.results)
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
    inexact += [f"{n} (n_kmers)" for n in ("build", "presence")
                if b.results["sections"].get(n, {}).get("n_kmers_equals_kmc") is False]
    if failed or inexact:
        console.print(f"[red]failed sections: {', '.join(failed) or '-'}; inexact: {', '.join(inexact) or '-'}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
