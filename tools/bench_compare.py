#!/usr/bin/env python3
"""Figures of the genome comparisons (kmerdb distance), with the commands that make them.

1. Exactness on real genomes: the three complete genomes of ../shared/data are indexed
   (k = 31) and the Jaccard index of every pair, from ``kmerdb distance``, is compared with
   intersection / union counted by KMC3 (``kmc -k31 -ci1``, then ``kmc_tools simple ...
   intersect`` and ``union``, counted with ``kmc_tools transform ... histogram``).  The
   counts must be equal to the k-mer.
2. Scale: a family of simulated genomes (default 100 x 5 Mbp, 1 % mean divergence;
   ``tools/simulate.py``) is indexed once, then the full Jaccard matrix is computed by
   ``kmerdb distance DB --metric jaccard --threads T``, run as a subprocess; wall time and the
   peak RSS of its whole process tree are measured (tools/procmem.py).  A few pairs are
   checked against KMC3 as above.

Usage::

    python tools/bench_compare.py [--workdir /tmp/kmerdb-bench-compare] [--genomes 100]
        [--length 5000000] [--divergence 0.01] [--threads 2] [--skip-real] [--skip-family]

Indexes and simulated genomes are kept in the work directory and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from procmem import format_bytes, measure_subprocess

REAL = [
    "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
]


def kmerdb_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("kmerdb")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "kmerdb"]


def sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw)


# -- KMC3 --------------------------------------------------------------------------------
def kmc_count(fasta: Path, out: Path, tmp: Path, threads: int) -> Path:
    if not Path(f"{out}.kmc_pre").exists():
        tmp.mkdir(parents=True, exist_ok=True)
        sh(["kmc", "-k31", "-ci1", f"-t{threads}", "-fm", "-hp", fasta, out, tmp])
    return out


def kmc_total(db: Path, tmp: Path) -> int:
    """Distinct k-mers of a KMC database (sum of its count histogram)."""
    hist = tmp / f"{db.name}.hist"
    sh(["kmc_tools", "-hp", "transform", db, "-ci1", "-cx1000000", "histogram", hist, "-ci1", "-cx1000000"])
    total = 0
    for line in hist.read_text().split("\n"):
        if line.strip():
            total += int(line.split()[1])
    return total


def kmc_pair(a: Path, b: Path, tmp: Path) -> tuple[int, int]:
    """(|A and B|, |A or B|) of two KMC databases."""
    inter, union = tmp / f"i_{a.name}_{b.name}", tmp / f"u_{a.name}_{b.name}"
    sh(["kmc_tools", "-hp", "simple", a, "-ci1", b, "-ci1", "intersect", inter, "union", union])
    return kmc_total(inter, tmp), kmc_total(union, tmp)


# -- kmerdb ---------------------------------------------------------------------------------
def build(db: Path, inputs: list[str], threads: int) -> float:
    if (db / "catalog").exists():
        try:
            import kmerdb

            kmerdb.open(db).close()
            return 0.0
        except Exception:
            shutil.rmtree(db)
    t0 = time.perf_counter()
    sh(kmerdb_cmd() + ["build", db, *inputs, "--threads", str(threads), "--quiet"])
    return time.perf_counter() - t0


def distance(db: Path, threads: int, out: Path) -> tuple[float, int, dict]:
    argv = kmerdb_cmd() + ["distance", str(db), "--metric", "jaccard", "--format", "json", "--threads", str(threads), "--quiet"]
    with open(out, "wb") as fh:
        m = measure_subprocess(argv, stdout=fh)
    return m.wall, m.peak, json.loads(out.read_text())


def intersections(db: Path) -> tuple[list[str], list[list[int]]]:
    import kmerdb

    with kmerdb.open(db) as handle:
        return list(handle.genomes), handle.intersections().tolist()


def check_pairs(db: Path, fastas: dict[str, Path], pairs, work: Path, threads: int, matrix: dict) -> list[dict]:
    labels, inter = intersections(db)
    rows = []
    kmc_dbs = {lab: kmc_count(fastas[lab], work / f"kmc_{lab}", work / "kmc_tmp", threads) for p in pairs for lab in p}
    for a, b in pairs:
        ki, ku = kmc_pair(kmc_dbs[a], kmc_dbs[b], work / "kmc_tmp")
        i, j = labels.index(a), labels.index(b)
        mi = inter[i][j]
        mu = inter[i][i] + inter[j][j] - mi
        jac = matrix["matrix"][matrix["labels"].index(a)][matrix["labels"].index(b)]
        rows.append(
            {
                "a": a,
                "b": b,
                "kmerdb_intersection": mi,
                "kmerdb_union": mu,
                "kmc_intersection": ki,
                "kmc_union": ku,
                "kmerdb_jaccard": jac,
                "kmc_jaccard": ki / ku,
                "equal": mi == ki and mu == ku and jac == ki / ku,
            }
        )
    return rows


def print_pairs(rows: list[dict]) -> None:
    print("| pair | shared (kmerdb) | shared (KMC3) | union (kmerdb) | union (KMC3) | Jaccard | equal |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['a']} / {r['b']} | {r['kmerdb_intersection']:,} | {r['kmc_intersection']:,} | "
            f"{r['kmerdb_union']:,} | {r['kmc_union']:,} | {r['kmerdb_jaccard']:.10f} | {'yes' if r['equal'] else 'NO'} |"
        )


def real_genomes(args, work: Path) -> dict:
    data = Path(args.data)
    paths = [data / n for n in REAL]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"skipping real genomes: missing {missing}", file=sys.stderr)
        return {}
    labels = [n.split("_genomic")[0] for n in REAL]
    db = work / "real3.kmerdb"
    secs = build(db, [f"{lab}={p}" for lab, p in zip(labels, paths)], args.threads)
    wall, peak, matrix = distance(db, args.threads, work / "real3.json")
    pairs = [(labels[i], labels[j]) for i in range(3) for j in range(i + 1, 3)]
    rows = check_pairs(db, dict(zip(labels, paths)), pairs, work, args.threads, matrix)
    print(f"\n## Three complete genomes (k = 31){f' (index built in {secs:.1f} s)' if secs else ''}\n")
    print_pairs(rows)
    print(f"\n`kmerdb distance` (3 x 3): {wall:.2f} s wall, peak RSS {format_bytes(peak)}")
    return {"pairs": rows, "distance_seconds": wall, "distance_peak_rss": peak}


def family(args, work: Path) -> dict:
    sim = work / f"sim{args.genomes}"
    if not (sim / "manifest.tsv").exists():
        sh(
            [
                sys.executable,
                HERE / "simulate.py",
                "--genomes",
                args.genomes,
                "--length",
                args.length,
                "--divergence",
                args.divergence,
                "--seed",
                args.seed,
                "--out",
                sim,
                "--quiet",
            ]
        )
    db = Path(args.db) if args.db else work / f"sim{args.genomes}.kmerdb"
    secs = build(db, ["--manifest", str(sim / "manifest.tsv")], args.threads)
    runs = []
    for _ in range(args.repeat):
        wall, peak, matrix = distance(db, args.threads, work / f"sim{args.genomes}.json")
        runs.append((wall, peak))
    n = len(matrix["labels"])
    assert len(matrix["matrix"]) == n and all(len(r) == n for r in matrix["matrix"])
    labels = matrix["labels"]
    rng = random.Random(args.seed)
    pairs = [tuple(rng.sample(labels, 2)) for _ in range(args.check_pairs)]
    fastas = {}
    for line in (sim / "manifest.tsv").read_text().splitlines():
        lab, path = line.split("\t")
        fastas[lab] = sim / path
    rows = check_pairs(db, fastas, pairs, work, args.threads, matrix) if pairs else []
    import kmerdb

    with kmerdb.open(db) as handle:
        n_kmers = handle.n_kmers
    best = min(runs)
    print(
        f"\n## {n} simulated genomes of {int(args.length) / 1e6:g} Mbp, {float(args.divergence) * 100:g} % divergence "
        f"({n_kmers:,} distinct k-mers{f', index built in {secs:.0f} s' if secs else ''})\n"
    )
    print(f"command: {' '.join(kmerdb_cmd()[-1:])} distance {db} --metric jaccard --format json --threads {args.threads}\n")
    print("| run | wall | peak RSS (process tree) |")
    print("|---:|---:|---:|")
    for i, (w, p) in enumerate(runs, 1):
        print(f"| {i} | {w:.2f} s | {format_bytes(p)} |")
    if rows:
        print()
        print_pairs(rows)
    return {
        "genomes": n,
        "kmers": n_kmers,
        "runs": [{"seconds": w, "peak_rss": p} for w, p in runs],
        "best_seconds": best[0],
        "max_peak_rss": max(p for _, p in runs),
        "pairs": rows,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="/tmp/kmerdb-bench-compare")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--genomes", type=int, default=100)
    p.add_argument("--length", type=int, default=5_000_000)
    p.add_argument("--divergence", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--db", default=None, help="an index of the simulated family to reuse")
    p.add_argument("--repeat", type=int, default=3, help="runs of the 100 x 100 matrix")
    p.add_argument("--check-pairs", type=int, default=2, help="simulated pairs checked against KMC3")
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("--skip-family", action="store_true")
    args = p.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if not shutil.which("kmc") or not shutil.which("kmc_tools"):
        print("kmc and kmc_tools are needed on PATH", file=sys.stderr)
        return 1
    results = {"cpus": os.cpu_count(), "threads": args.threads}
    if not args.skip_real:
        results["real"] = real_genomes(args, work)
    if not args.skip_family:
        results["family"] = family(args, work)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    ok = all(r["equal"] for part in ("real", "family") for r in results.get(part, {}).get("pairs", []))
    print(f"\nresults: {work / 'results.json'}; every pair exact: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
