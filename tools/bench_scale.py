#!/usr/bin/env python3
"""kmerdb at scale: simulated pangenomes of 100, 300, 1000 genomes, side by side with KMC3.

For each size N (``--sizes``), on the first N genomes of one seeded pangenome (tools/pangenome.py):

  kmc       ``kmc -k31 -ci1 -cs65535 -t2 -m4 -fm @list.txt OUT TMP`` once over all N genomes: wall
            time, peak RSS of the process tree, and its count of distinct k-mers.
  build     ``python -m kmerdb build DB --manifest M -k 31 -t 2 --max-memory 4G`` (presence), in a
            subprocess: wall, peak RSS, ratios to KMC; the index's n_kmers must equal KMC's count.
  size      bits per distinct k-mer of the whole index directory (catalog included) and of each
            structure (``db.stats()``); the number of colour classes when the stats report it.
  query     ``db.query(reads)`` in this process, one thread: 20,000 reads x 150 bp sampled from the N
            genomes, against the N-genome index and a 3-genome index (genomes 1-3), ns per k-mer
            (median of ``--repeat``, after one untimed call each), ratio; every read must be fully
            found in its source genome.
  distance  ``python -m kmerdb distance DB --metric jaccard`` (the full N x N matrix): wall, peak RSS.
  append    ``python -m kmerdb append DB gN+1=PATH``: genome N+1 of the same pangenome, after the
            other measurements; wall time as a fraction of the build's.

Peak RSS is the sum over a process tree, sampled every 20 ms (tools/procmem.py).

    python tools/bench_scale.py                                  # sizes 100 300 1000
    python tools/bench_scale.py --sizes 100 --json scale.json    # one size, figures as JSON
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# this checkout's kmerdb, also when another one is installed in the environment
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
import pangenome
import simulate
from procmem import ProcessFailed, format_bytes, measure_subprocess

import kmerdb

MiB = 1 << 20
K = 31
CLASS_KEYS = ("classes", "n_classes", "colour_classes", "color_classes", "n_colour_classes", "n_color_classes")


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 4G)")
    return int(float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()])


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def kmerdb_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def kmerdb_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kmerdb", *args]


def find_classes(stats: Any) -> Any:
    """The colour-class figure of a stats dict, wherever it sits; None when absent."""
    if isinstance(stats, dict):
        for key in CLASS_KEYS:
            if key in stats:
                value = stats[key]
                if isinstance(value, dict):
                    for sub in ("count", "n", "n_classes", "classes"):
                        if sub in value:
                            return value[sub]
                return value
        for value in stats.values():
            found = find_classes(value)
            if found is not None:
                return found
    return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def git_head() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def kmc_version() -> str | None:
    try:
        out = subprocess.run(["kmc"], capture_output=True, text=True).stdout
    except OSError:
        return None
    m = re.search(r"ver\. (\S+)", out)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- reads


def sample_reads(paths: list[Path], n_reads: int, length: int, seed: int) -> tuple[list[bytes], np.ndarray]:
    """``n_reads`` reads of ``length`` bp from the genomes (uniform genome, then uniform over its
    contigs' positions, half reverse-complemented); returns the reads and their source genome index."""
    rng = np.random.default_rng([seed, 7])
    source = np.sort(rng.integers(0, len(paths), size=n_reads))
    reads: list[bytes] = []
    for g in np.unique(source):  # a loop over genomes; reads of a genome are cut in one pass
        contigs = [np.frombuffer(c, dtype=np.uint8) for c in pangenome.read_fasta(paths[g]) if len(c) >= length]
        seq = np.concatenate(contigs)
        ends = np.cumsum([c.size for c in contigs])
        starts_ok = np.concatenate([np.arange(e - c.size, e - length + 1) for c, e in zip(contigs, ends)])
        n = int(np.count_nonzero(source == g))
        at = starts_ok[rng.integers(0, starts_ok.size, size=n)]
        block = seq[at[:, None] + np.arange(length)]
        rev = rng.random(n) < 0.5
        block[rev] = simulate.COMPLEMENT[block[rev][:, ::-1]]
        reads.extend(bytes(row) for row in block)
    return reads, source


# --------------------------------------------------------------------------- one size


class Runner:
    def __init__(self, args: argparse.Namespace, genomes: list[Path], three_db: Path | None) -> None:
        self.args = args
        self.genomes = genomes
        self.three_db = three_db
        self.gb = max(1, math.ceil(parse_size(args.max_memory) / (1 << 30)))

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def kmc(self, n: int, work: Path, res: dict) -> None:
        lst = work / "list.txt"
        lst.write_text("".join(f"{p.resolve()}\n" for p in self.genomes[:n]))
        tmp = work / "kmc_tmp"
        tmp.mkdir(exist_ok=True)
        out = work / "kmc_out"
        summary = work / "kmc_summary.json"
        argv = ["kmc", f"-k{K}", "-ci1", "-cs65535", f"-t{self.args.threads}", f"-m{self.gb}", "-fm", "-hp",
                f"-j{summary}", f"@{lst}", str(out), str(tmp)]
        stdout = work / "kmc_stdout.txt"
        with open(stdout, "wb") as fh:
            m = measure_subprocess(argv, stdout=fh, stderr_path=work / "kmc_stderr.txt")
        text = stdout.read_text(errors="replace")
        hit = re.search(r"No\. of unique counted k-mers\s*:\s*(\d+)", text)
        distinct = int(hit.group(1)) if hit else None
        if distinct is None and summary.exists():
            distinct = json.loads(summary.read_text()).get("Stats", {}).get("#Unique_counted_k-mers")
        db_bytes = sum(p.stat().st_size for p in work.glob("kmc_out.kmc_*"))
        res["kmc"] = {"argv": argv, "wall": m.wall, "peak": m.peak, "distinct": distinct, "db_bytes": db_bytes}
        for p in work.glob("kmc_out.kmc_*"):
            p.unlink()
        shutil.rmtree(tmp, ignore_errors=True)
        self.log(f"  kmc: {m.wall:.1f} s, {format_bytes(m.peak)}, {distinct:,} distinct k-mers")

    def build(self, n: int, work: Path, db: Path, res: dict) -> None:
        manifest = work / "manifest.tsv"
        manifest.write_text("".join(f"{p.stem}\t{p.resolve()}\n" for p in self.genomes[:n]))
        if db.exists():
            shutil.rmtree(db)
        argv = kmerdb_cmd("build", str(db), "--manifest", str(manifest), "-k", str(K), "-t", str(self.args.threads),
                          "--max-memory", self.args.max_memory, "--quiet", "--json")
        out = work / "build.json"
        with open(out, "wb") as fh:
            m = measure_subprocess(argv, stdout=fh, stderr_path=work / "build_stderr.txt", env=kmerdb_env(), cwd=REPO)
        summary = json.loads(out.read_text())
        res["build"] = {"argv": argv, "wall": m.wall, "peak": m.peak, "summary": summary}
        self.log(f"  kmerdb build: {m.wall:.1f} s, {format_bytes(m.peak)}")

    def size(self, db: Path, res: dict) -> None:
        with kmerdb.open(str(db)) as h:
            stats = h.stats()
            n_genomes = len(h.genomes)
        total = dir_bytes(db)
        n = int(stats["n_kmers"])
        res["size"] = {
            "n_kmers": n,
            "n_genomes": n_genomes,
            "bytes": total,
            "bits_per_kmer": 8 * total / n if n else None,
            "structures": stats["structures"],
            "index": stats["index"],
            "classes": find_classes(stats),
            "stats": stats,
        }
        self.log(f"  index: {n:,} k-mers, {total / MiB:,.1f} MiB, {8 * total / n:.1f} bits/k-mer")

    def query(self, n: int, db: Path, res: dict) -> None:
        reads, source = sample_reads(self.genomes[:n], self.args.reads, self.args.read_length, self.args.seed)
        per_read = self.args.read_length - K + 1
        n_kmers = len(reads) * per_read
        targets = [("index", db)] + ([("three", self.three_db)] if self.three_db else [])
        handles = {name: kmerdb.open(str(path)) for name, path in targets}
        try:
            times: dict[str, list[float]] = {name: [] for name, _ in targets}
            results = {}
            # one untimed call each first: the loading of the compiled kernels and the first
            # touch of an index's pages are costs of the first query of a process, not of a query
            for name, _ in targets:
                handles[name].query(reads)
            for _ in range(self.args.repeat):  # alternate, so both see the same load
                for name, _ in targets:
                    t0 = time.perf_counter()
                    results[name] = handles[name].query(reads)
                    times[name].append(time.perf_counter() - t0)
            out: dict[str, Any] = {"reads": len(reads), "read_length": self.args.read_length, "kmers": n_kmers,
                                   "repeat": self.args.repeat}
            for name, _ in targets:
                wall = statistics.median(times[name])
                out[name] = {"walls": times[name], "median_wall": wall, "ns_per_kmer": wall / n_kmers * 1e9}
            # every read is fully found in its own genome's column of the N-genome index
            main = results["index"]
            col = {label: j for j, label in enumerate(handles["index"].genomes)}
            own = np.array([col[self.genomes[g].stem] for g in source])
            hits = np.asarray(main.hits)[np.arange(len(reads)), own]
            out["reads_fully_found"] = int(np.count_nonzero(hits == np.asarray(main.n_kmers)))
            out["kmers_reported"] = int(np.asarray(main.n_kmers).sum())
        finally:
            for h in handles.values():
                h.close()
        if "three" in out:
            out["ratio_to_three"] = out["index"]["median_wall"] / out["three"]["median_wall"]
        res["query"] = out
        self.log(f"  query: {out['index']['ns_per_kmer']:.0f} ns/k-mer"
                 + (f" (3-genome index {out['three']['ns_per_kmer']:.0f})" if "three" in out else "")
                 + f", {out['reads_fully_found']:,}/{len(reads):,} reads fully found in their genome")

    def distance(self, n: int, work: Path, db: Path, res: dict) -> None:
        argv = kmerdb_cmd("distance", str(db), "--metric", "jaccard", "--format", "tsv", "-t", str(self.args.threads),
                          "--max-memory", self.args.max_memory, "--quiet")
        out = work / "jaccard.tsv"
        with open(out, "wb") as fh:
            m = measure_subprocess(argv, stdout=fh, stderr_path=work / "distance_stderr.txt", env=kmerdb_env(), cwd=REPO)
        lines = out.read_text().splitlines()
        shape_ok = len(lines) == n + 1 and all(len(line.split("\t")) == n + 1 for line in lines)
        values = np.array([[float(x) for x in line.split("\t")[1:]] for line in lines[1:]]) if shape_ok else None
        info: dict[str, Any] = {"argv": argv, "wall": m.wall, "peak": m.peak, "bytes": out.stat().st_size,
                                "shape_ok": shape_ok}
        if values is not None:
            off = values[~np.eye(n, dtype=bool)]
            info.update(diagonal_ones=bool(np.allclose(np.diag(values), 1.0)), symmetric=bool(np.allclose(values, values.T)),
                        jaccard_min=float(off.min()) if off.size else None,
                        jaccard_mean=float(off.mean()) if off.size else None)
        res["distance"] = info
        out.unlink()
        self.log(f"  distance (jaccard, {n} x {n}): {m.wall:.1f} s, {format_bytes(m.peak)}")

    def append(self, n: int, work: Path, db: Path, res: dict) -> None:
        new = self.genomes[n]
        argv = kmerdb_cmd("append", str(db), f"{new.stem}={new.resolve()}", "-t", str(self.args.threads), "--quiet")
        m = measure_subprocess(argv, stderr_path=work / "append_stderr.txt", env=kmerdb_env(), cwd=REPO)
        with kmerdb.open(str(db)) as h:
            genomes_after = len(h.genomes)
            kmers_after = int(h.n_kmers)
        build_wall = res.get("build", {}).get("wall")
        res["append"] = {"argv": argv, "wall": m.wall, "peak": m.peak, "genome": new.stem,
                         "genomes_after": genomes_after, "n_kmers_after": kmers_after,
                         "fraction_of_build": m.wall / build_wall if build_wall else None}
        self.log(f"  append {new.stem}: {m.wall:.1f} s, {format_bytes(m.peak)}")

    def run(self, n: int) -> dict:
        work = Path(self.args.work) / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        db = work / "index.kmerdb"
        res: dict[str, Any] = {"n": n, "load_start": load_average(), "errors": {}}
        steps = [("kmc", lambda: self.kmc(n, work, res), self.args.skip_kmc),
                 ("build", lambda: self.build(n, work, db, res), False),
                 ("size", lambda: self.size(db, res), False),
                 ("query", lambda: self.query(n, db, res), self.args.skip_query),
                 ("distance", lambda: self.distance(n, work, db, res), self.args.skip_distance),
                 ("append", lambda: self.append(n, work, db, res), self.args.skip_append)]
        for name, fn, skip in steps:
            if skip:
                continue
            if name != "kmc" and "build" in res["errors"]:
                break
            try:
                fn()
            except (ProcessFailed, OSError, ValueError, RuntimeError, KeyError) as exc:
                res["errors"][name] = str(exc)
                self.log(f"  {name} FAILED: {exc}")
        kmc_n = res.get("kmc", {}).get("distinct")
        idx_n = res.get("size", {}).get("n_kmers")
        res["kmers_match"] = None if kmc_n is None or idx_n is None else kmc_n == idx_n
        res["load_end"] = load_average()
        if not self.args.keep and db.exists():
            shutil.rmtree(db)
        return res


# --------------------------------------------------------------------------- report


def _s(x: float | None, fmt: str = "{:,.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def _mib(x: float | None) -> str:
    return "-" if x is None else f"{x / MiB:,.0f} MiB"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def table(res: dict) -> str:
    n = res["n"]
    kmc, build, size = res.get("kmc", {}), res.get("build", {}), res.get("size", {})
    query, dist, app = res.get("query", {}), res.get("distance", {}), res.get("append", {})
    rows: list[tuple[str, ...]] = [("measure", "KMC3", "kmerdb", "kmerdb / KMC3")]
    rows.append(("build wall", _s(kmc.get("wall"), "{:,.1f} s"), _s(build.get("wall"), "{:,.1f} s"),
                 _ratio(build.get("wall"), kmc.get("wall"))))
    rows.append(("build peak RSS", _mib(kmc.get("peak")), _mib(build.get("peak")), _ratio(build.get("peak"), kmc.get("peak"))))
    match = res.get("kmers_match")
    rows.append(("distinct k-mers", _s(kmc.get("distinct"), "{:,}"), _s(size.get("n_kmers"), "{:,}"),
                 "equal" if match else ("MISMATCH" if match is False else "-")))
    lines = [f"### N = {n} genomes", "", *_md(rows), ""]
    rows = [("index", "bytes", "bits / distinct k-mer")]
    if size:
        rows.append(("all files (catalog included)", f"{size['bytes']:,}", _s(size["bits_per_kmer"], "{:.2f}")))
        for role, v in size["structures"].items():
            rows.append((role, f"{v['bytes']:,}", f"{v['bits_per_kmer']:.2f}"))
        rows.append(("index (dictionary or MPHF + evidence, unitigs)", f"{size['index']['bytes']:,}", f"{size['index']['bits_per_kmer']:.2f}"))
        classes = size.get("classes")
        rows.append(("colour classes", "n/a" if classes is None else f"{classes:,}" if isinstance(classes, int) else str(classes), ""))
    lines += [*_md(rows), ""]
    rows = [("operation", "N-genome index", "3-genome index", "ratio")]
    if query:
        three = query.get("three", {})
        rows.append((f"query ns/k-mer ({query['reads']:,} x {query['read_length']} bp, 1 thread, median of {query['repeat']})",
                     f"{query['index']['ns_per_kmer']:.0f}", _s(three.get("ns_per_kmer"), "{:.0f}"),
                     _s(query.get("ratio_to_three"), "{:.2f}x")))
        rows.append(("reads fully found in their genome", f"{query['reads_fully_found']:,} / {query['reads']:,}", "", ""))
    lines += [*_md(rows), ""]
    rows = [("operation", "wall", "peak RSS", "note")]
    if dist:
        rows.append((f"distance (Jaccard, {n} x {n})", _s(dist["wall"], "{:,.1f} s"), _mib(dist["peak"]),
                     "matrix ok" if dist.get("shape_ok") and dist.get("diagonal_ones") and dist.get("symmetric")
                     else "MATRIX WRONG"))
    if app:
        frac = app.get("fraction_of_build")
        rows.append((f"append 1 genome ({app['genome']})", _s(app["wall"], "{:,.1f} s"), _mib(app["peak"]),
                     (f"{100 * frac:.0f}% of the build" if frac is not None else "") + f"; {app['genomes_after']} genomes after"))
    lines += [*_md(rows)]
    if res["errors"]:
        lines += ["", "errors: " + "; ".join(f"{k}: {v}" for k, v in res["errors"].items())]
    lines += ["", f"load average at start {res['load_start']}, at end {res['load_end']}"]
    return "\n".join(lines)


def _md(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000], help="genome counts (default 100 300 1000)")
    p.add_argument("--work", default="/tmp/kmerdb-scale", help="work folder: pangenome, indexes, KMC output")
    p.add_argument("--repeat", type=int, default=5, help="query repetitions, the median is reported (default 5)")
    p.add_argument("--max-memory", default="4G", help="kmerdb's budget (build, distance); KMC -m in whole GB (default 4G)")
    p.add_argument("--threads", type=int, default=2, help="KMC -t and kmerdb -t (default 2); queries use one thread")
    p.add_argument("--length", type=int, default=pangenome.DEFAULT_LENGTH, help="genome length (default 1,500,000)")
    p.add_argument("--seed", type=int, default=1, help="pangenome and reads seed (default 1)")
    p.add_argument("--reads", type=int, default=20_000, help="query reads (default 20,000)")
    p.add_argument("--read-length", type=int, default=150)
    p.add_argument("--data", default=str(pangenome.DATA_DIR), help="real genomes (default ../shared/data)")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the N-genome indexes in --work")
    for step in ("kmc", "query", "distance", "append"):
        p.add_argument(f"--skip-{step}", action="store_true")
    args = p.parse_args(argv)
    parse_size(args.max_memory)
    if min(args.sizes) < 3:
        p.error("sizes must be at least 3")
    if not args.skip_kmc and not shutil.which("kmc"):
        print("kmc is not installed: --skip-kmc to run without it", file=sys.stderr)
        return 1

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"pangenome: {max(args.sizes) + 1} genomes of {args.length:,} bp (seed {args.seed})", file=sys.stderr)
    genomes = pangenome.ensure_pangenome(work / "pangenome", max(args.sizes) + 1, args.length, args.seed, args.data,
                                         log=lambda m: print(m, file=sys.stderr))
    sim_wall = time.perf_counter() - t0

    results: dict[str, Any] = {
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "kmerdb": {"path": str(Path(kmerdb.__file__).parent), "commit": git_head()},
        "kmc_version": kmc_version(),
        "args": vars(args),
        "pangenome": {**json.loads((work / "pangenome" / "params.json").read_text()), "seconds": sim_wall},
        "sizes": [],
    }
    three = work / "three.kmerdb"
    three_db: Path | None = None
    if not args.skip_query:
        if three.exists():
            shutil.rmtree(three)
        argv3 = kmerdb_cmd("build", str(three), *[f"{g.stem}={g.resolve()}" for g in genomes[:3]], "-k", str(K),
                           "-t", str(args.threads), "--max-memory", args.max_memory, "--quiet")
        subprocess.run(argv3, check=True, env=kmerdb_env(), cwd=REPO)
        three_db = three
    runner = Runner(args, genomes, three_db)
    status = 0
    for n in args.sizes:
        print(f"N = {n}", file=sys.stderr)
        res = runner.run(n)
        results["sizes"].append(res)
        print(table(res) + "\n", flush=True)
        if res["errors"] or res["kmers_match"] is False:
            status = 1
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
