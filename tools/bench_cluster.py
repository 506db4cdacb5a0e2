#!/usr/bin/env python3
"""The same operations locally and on a Dask cluster: identical results, and what each costs.

On the three complete genomes of ../shared/data (k=31): build of the first two genomes, build
of the third, merge of the two indexes, append of the third genome to the first index,
compact, reindex to approx and back, verify, and the Jaccard distance matrix. Each
runs once with local worker processes (``threads``) and once on a cluster (``--scheduler``
ADDRESS, or by default a LocalCluster of 2 worker processes on loopback started here). The
results are compared cell by cell (every k-mer and row of each index, every matrix value),
and the wall time of each is printed side by side.

    python tools/bench_cluster.py [--data ../shared/data] [--threads 2] [--scheduler ADDRESS]
                                  [--workdir /tmp/kmerdb-bench-cluster] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from indexcmp import same_index

import kmerdb

GENOMES = (
    "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
)


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(where: Path, files: list[Path], *, threads: int | None, scheduler: object) -> tuple[dict, dict]:
    """Every operation once, on one executor; returns (wall times, results to compare)."""
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    a, b, c = (str(f) for f in files)
    opts = {"threads": threads, "scheduler": scheduler}
    times: dict[str, float] = {}
    results: dict[str, object] = {}
    _, times["build 2 genomes"] = _timed(lambda: kmerdb.build(where / "ab", {"A": a, "B": b}, k=31, counts=True, **opts))
    _, times["build 1 genome"] = _timed(lambda: kmerdb.build(where / "c", {"C": c}, k=31, counts=True, **opts))
    _, times["merge"] = _timed(lambda: kmerdb.merge(where / "abc", [where / "ab", where / "c"], mode="count", **opts))
    shutil.copytree(where / "ab", where / "ab+c")
    with kmerdb.open(where / "ab+c", mode="a") as db:
        steps: dict[str, Callable[[], object]] = {
            "append 1 genome": lambda: db.append_genome("C", [c], **opts),
            "compact": lambda: db.compact(**opts),
            "reindex approx": lambda: db.reindex("approx", fp_bits=16, **opts),
            "reindex exact": lambda: db.reindex("exact", **opts),
        }
        for name, step in steps.items():
            t0 = time.perf_counter()
            with db.transaction():  # each operation its own commit
                step()
            times[name] = time.perf_counter() - t0
    report, times["verify"] = _timed(lambda: kmerdb.verify(where / "ab+c", **opts))
    results["verify ok"] = report.ok
    with kmerdb.open(where / "abc") as db:
        matrix, times["distance"] = _timed(lambda: db.distance("jaccard", **opts))
        results["distance"] = np.asarray(matrix.matrix)
    results["paths"] = {name: where / name for name in ("ab", "c", "abc", "ab+c")}
    return times, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    p.add_argument("--threads", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument("--scheduler", default=None, help="a Dask scheduler address (default: a LocalCluster here)")
    p.add_argument("--workers", type=int, default=2, help="workers of the LocalCluster (default 2)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/kmerdb-bench-cluster"))
    p.add_argument("--json", type=Path, default=None, metavar="FILE")
    args = p.parse_args(argv)
    files = [args.data / g for g in GENOMES]
    for f in files:
        if not f.exists():
            p.error(f"{f}: not found (--data)")

    import distributed

    cluster = None
    if args.scheduler is None:
        cluster = distributed.LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        )
    client = distributed.Client(cluster if cluster is not None else args.scheduler)
    try:
        local_t, local_r = run(args.workdir / "local", files, threads=args.threads, scheduler=None)
        dask_t, dask_r = run(args.workdir / "dask", files, threads=None, scheduler=client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    same = {name: same_index(local_r["paths"][name], dask_r["paths"][name]) for name in local_r["paths"]}
    same["distance"] = bool(np.array_equal(local_r["distance"], dask_r["distance"]))
    same["verify"] = bool(local_r["verify ok"] and dask_r["verify ok"])
    print(f"{'operation':<18} {'local (s)':>10} {'dask (s)':>10} {'ratio':>7}")
    for op in local_t:
        print(f"{op:<18} {local_t[op]:>10.2f} {dask_t[op]:>10.2f} {dask_t[op] / local_t[op]:>7.2f}")
    print("identical on both:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in same.items()))
    if args.json:
        args.json.write_text(json.dumps({"local": local_t, "dask": dask_t, "identical": same}, indent=2))
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
