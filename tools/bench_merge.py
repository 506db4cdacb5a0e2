#!/usr/bin/env python3
"""Merge and append against building, side by side, on real genomes.

Figures:

* ``merge``: ``kmerdb merge`` of three single-genome indexes, against ``kmerdb build`` of the
  three genomes together (target <= 1.5x);
* ``append``: ``kmerdb append`` of the third genome to an index of the first two, against
  ``kmerdb build`` of that genome alone (target <= 1.2x).

Every command runs as its own process through the console, in rounds that alternate the
operation and its reference, so that load on the machine falls on both; the figure is the
ratio of the medians (also reported: the ratio of the best times, and of the CPU time of the
process trees, which load from other processes disturbs less). Wall time and peak RSS of each
process tree come from tools/procmem.py; CPU time from getrusage of the reaped children.
The results are checked: the merged and the appended index must hold exactly the k-mers and
rows of the index built from all three genomes.

    python tools/bench_merge.py [--data ../shared/data] [--k 31] [--threads 2] [--rounds 3]
                                [--counts] [--workdir /tmp/kmerdb-bench-merge] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from indexcmp import same_index
from procmem import measure_subprocess

GENOMES = (
    "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
)


def kmerdb_cmd() -> list[str]:
    return [sys.executable, "-m", "kmerdb"]


def run(argv: list[str], env: dict) -> tuple[float, int, float]:
    """Wall seconds, peak RSS of the process tree, and its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = measure_subprocess(argv, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return m.wall, m.peak, cpu


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--k", type=int, default=31)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--counts", action="store_true", help="indexes with counts (merge --mode count)")
    ap.add_argument("--workdir", default="/tmp/kmerdb-bench-merge")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    inputs = [Path(args.data) / g for g in GENOMES]
    for p in inputs:
        if not p.exists():
            print(f"missing input {p}", file=sys.stderr)
            return 1
    work = Path(args.workdir)
    remove(work)
    work.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    common = ["--k", str(args.k), "--threads", str(args.threads), "--quiet"] + (["--counts"] if args.counts else [])
    threads = ["--threads", str(args.threads), "--quiet"]
    labels = [f"g{i}" for i in range(3)]
    spec = [f"{lab}={p}" for lab, p in zip(labels, inputs)]

    # sources: one index per genome, and the index of the first two
    singles = [work / f"{lab}.kmerdb" for lab in labels]
    for path, s in zip(singles, spec):
        run(kmerdb_cmd() + ["build", str(path), s] + common, env)
    two = work / "g0g1.kmerdb"
    run(kmerdb_cmd() + ["build", str(two), spec[0], spec[1]] + common, env)

    mode = ["--mode", "count"] if args.counts else []
    results: dict[str, list[tuple[float, int]]] = {"build3": [], "merge3": [], "build1": [], "append1": []}
    all3, merged, one, appended = work / "all3.kmerdb", work / "merged.kmerdb", work / "one.kmerdb", work / "appended.kmerdb"
    for r in range(args.rounds):
        steps = [
            ("build3", all3, kmerdb_cmd() + ["build", str(all3)] + spec + common),
            ("merge3", merged, kmerdb_cmd() + ["merge", str(merged)] + [str(s) for s in singles] + mode + threads),
            ("build1", one, kmerdb_cmd() + ["build", str(one), spec[2]] + common),
            ("append1", appended, kmerdb_cmd() + ["append", str(appended), spec[2]] + threads),
        ]
        if r % 2:
            steps = [steps[1], steps[0], steps[3], steps[2]]
        for name, out, argv_ in steps:
            remove(out)
            if name == "append1":
                shutil.copytree(two, out)  # not timed
            results[name].append(run(argv_, env))
            wall, peak, cpu = results[name][-1]
            print(f"round {r + 1} {name:8s} {wall:7.2f} s wall {cpu:7.2f} s cpu {peak / 2**20:8.1f} MiB", file=sys.stderr)

    ok_merge = same_index(merged, all3)
    ok_append = same_index(appended, all3)

    def med(name: str, i: int) -> float:
        return statistics.median(x[i] for x in results[name])

    summary = {
        "k": args.k,
        "threads": args.threads,
        "rounds": args.rounds,
        "counts": args.counts,
        "seconds": {name: med(name, 0) for name in results},
        "cpu_seconds": {name: med(name, 2) for name in results},
        "peak_rss_mib": {name: med(name, 1) / 2**20 for name in results},
        "all_seconds": {name: [round(x[0], 3) for x in results[name]] for name in results},
        "merge_vs_build": med("merge3", 0) / med("build3", 0),
        "append_vs_build_one": med("append1", 0) / med("build1", 0),
        "merge_vs_build_cpu": med("merge3", 2) / med("build3", 2),
        "append_vs_build_one_cpu": med("append1", 2) / med("build1", 2),
        "merge_vs_build_best": min(x[0] for x in results["merge3"]) / min(x[0] for x in results["build3"]),
        "append_vs_build_one_best": min(x[0] for x in results["append1"]) / min(x[0] for x in results["build1"]),
        "merged_equals_build": ok_merge,
        "appended_equals_build": ok_append,
    }
    print(
        f"\nmerge of 3 single-genome indexes: {summary['seconds']['merge3']:.2f} s vs build of the 3: "
        f"{summary['seconds']['build3']:.2f} s  -> {summary['merge_vs_build']:.2f}x (target <= 1.5x); "
        f"identical index: {ok_merge}"
    )
    print(
        f"append of 1 genome to an index of 2: {summary['seconds']['append1']:.2f} s vs build of that genome: "
        f"{summary['seconds']['build1']:.2f} s  -> {summary['append_vs_build_one']:.2f}x (target <= 1.2x); "
        f"identical index: {ok_append}"
    )
    print(
        f"best of {args.rounds}: merge {summary['merge_vs_build_best']:.2f}x, append {summary['append_vs_build_one_best']:.2f}x; "
        f"CPU time (medians): merge {summary['merge_vs_build_cpu']:.2f}x, append {summary['append_vs_build_one_cpu']:.2f}x"
    )
    print(
        "peak RSS (MiB): " + ", ".join(f"{name} {v:.0f}" for name, v in summary["peak_rss_mib"].items())
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if ok_merge and ok_append else 1


if __name__ == "__main__":
    sys.exit(main())
