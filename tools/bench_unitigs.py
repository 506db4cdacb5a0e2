#!/usr/bin/env python3
"""Unitigs and evidence: kmerdb against BCALM2, bits per k-mer, false positive rates.

This is a benchmark, not a test: nothing here asserts a speed. Sections:

  build    kmerdb builds an exact index (unitigs included) of the genomes (console, subprocess).
  bcalm    BCALM2 computes the unitigs of the same genomes (`bcalm -in LIST -kmer-size 31
           -abundance-min 1 -nb-cores 2`), side by side; the ratio of the wall times.
  same     the k-mers of BCALM2's unitigs equal the k-mers of kmerdb's unitigs (db.iter_kmers()).
  bits     bits per distinct k-mer of MPHF + evidence + unitigs: exact, then approx with B bits
           (a second build, --evidence approx --fp-bits B).
  fp       false positive rate of the approx index over random absent k-mers, against 2^-B; and
           the share of positions of random sequences found before and after the z rule.
  share    the share of the build's CPU time spent making unitigs (an in-process build, one
           worker, kmerdb.core.unitigs.build_unitigs timed).

Peak RSS is the sum over the whole process tree (tools/procmem.py), sampled every 20 ms.

    python tools/bench_unitigs.py                      # the three complete genomes of ../shared/data
    python tools/bench_unitigs.py --json unitigs.json --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
from procmem import Measurement, measure_subprocess

DATA = (REPO / ".." / "shared" / "data").resolve()
DEFAULT_GENOMES = (
    "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
)
ALL_SECTIONS = ("build", "bcalm", "same", "bits", "fp", "share")
MiB = 1 << 20


def kmerdb_cmd() -> list[str]:
    return [sys.executable, "-m", "kmerdb"]


def kmerdb_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def best_of(rounds: int, run) -> Measurement:
    """Run ``run()`` ``rounds`` times: best wall time, largest peak."""
    runs = [run() for _ in range(rounds)]
    return Measurement(min(r.wall for r in runs), max(r.peak for r in runs))


def fasta_kmers(path: Path, k: int) -> np.ndarray:
    """Sorted distinct canonical k-mers of every record of a FASTA file (BCALM2's unitigs)."""
    from kmerdb.core.kmers import canonical, encode, kmer_windows, valid_windows

    data = path.read_bytes()
    parts = []
    for rec in data.split(b">")[1:]:
        nl = rec.find(b"\n")
        seq = rec[nl + 1 :].replace(b"\n", b"")
        codes = encode(seq)
        ok = valid_windows(codes, k)
        parts.append(canonical(kmer_windows(codes, k)[ok], k))
    allk = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    return allk


class Bench:
    def __init__(self, args, inputs: list[Path], workdir: Path) -> None:
        self.args = args
        self.inputs = inputs
        self.workdir = workdir
        self.res: dict = {"inputs": [str(p) for p in inputs], "k": args.k, "threads": args.threads}
        self.db = workdir / "exact.kmerdb"
        self.approx = workdir / "approx.kmerdb"
        self.bcalm_fa: Path | None = None

    def log(self, msg: str) -> None:
        if not self.args.quiet:
            print(msg, file=sys.stderr, flush=True)

    def timed(self, argv, **kw) -> Measurement:
        self.log("  $ " + " ".join(str(a) for a in argv))
        return measure_subprocess([str(a) for a in argv], stderr_path=self.workdir / "last.stderr", **kw)

    def run(self, name: str, fn) -> None:
        if name not in self.args.sections:
            return
        self.log(f"[{name}]")
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:
            self.res.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
            self.log(f"  failed: {exc}")
            if self.args.verbose:
                traceback.print_exc()
        self.log(f"  ({time.perf_counter() - t0:.1f} s)")

    # -- sections -------------------------------------------------------------------------
    def build_cmd(self, path: Path, *extra) -> list:
        return [
            *kmerdb_cmd(), "build", path, *self.inputs, "--k", self.args.k, "--threads", self.args.threads,
            "--quiet", *extra,
        ]

    def build(self) -> None:
        def once() -> Measurement:
            shutil.rmtree(self.db, ignore_errors=True)
            return self.timed(self.build_cmd(self.db), env=kmerdb_env(), cwd=str(REPO))

        m = best_of(self.args.rounds, once)
        self.res["kmerdb_build"] = {"wall": m.wall, "peak_rss": m.peak, "command": self._cmd(self.build_cmd(self.db))}

    def bcalm(self) -> None:
        exe = shutil.which(self.args.bcalm)
        if exe is None:
            raise RuntimeError(f"{self.args.bcalm} not found")
        run_dir = self.workdir / "bcalm"
        lst = self.workdir / "inputs.txt"
        lst.write_text("".join(f"{p}\n" for p in self.inputs))
        argv = [exe, "-in", lst, "-kmer-size", self.args.k, "-abundance-min", 1, "-nb-cores", self.args.threads,
                "-out", run_dir / "unitigs"]

        def once() -> Measurement:
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir()
            return self.timed(argv, cwd=str(run_dir))

        m = best_of(self.args.rounds, once)
        self.bcalm_fa = run_dir / "unitigs.unitigs.fa"
        text = self.bcalm_fa.read_bytes()
        self.res["bcalm"] = {
            "wall": m.wall,
            "peak_rss": m.peak,
            "command": self._cmd(argv),
            "unitigs": text.count(b">"),
        }
        if "kmerdb_build" in self.res:
            self.res["speedup_vs_bcalm"] = m.wall / self.res["kmerdb_build"]["wall"]

    def same(self) -> None:
        import kmerdb

        if self.bcalm_fa is None or not self.bcalm_fa.exists():
            raise RuntimeError("needs the bcalm section")
        theirs = fasta_kmers(self.bcalm_fa, self.args.k)
        distinct = np.r_[True, theirs[1:] != theirs[:-1]] if theirs.size else np.zeros(0, bool)
        with kmerdb.open(self.db) as db:
            ours = np.sort(np.concatenate(list(db.iter_kmers())))
        self.res["same_kmers"] = {
            "equal": bool(np.array_equal(ours, theirs[distinct])),
            "kmerdb_kmers": int(ours.size),
            "bcalm_kmers": int(distinct.sum()),
            "bcalm_kmers_spelled_twice": int(theirs.size - distinct.sum()),
        }

    def bits(self) -> None:
        import kmerdb

        with kmerdb.open(self.db) as db:
            st = db.stats()
        self.res["exact"] = self._stats(st)
        b = self.args.fp_bits

        def once() -> Measurement:
            shutil.rmtree(self.approx, ignore_errors=True)
            argv = self.build_cmd(self.approx, "--evidence", "approx", "--fp-bits", b, "--z", self.args.z)
            return self.timed(argv, env=kmerdb_env(), cwd=str(REPO))

        m = best_of(1, once)
        with kmerdb.open(self.approx) as db:
            st = db.stats()
        self.res["approx"] = self._stats(st) | {
            "fp_bits": b,
            "z": self.args.z,
            "build_wall": m.wall,
            "command": self._cmd(self.build_cmd(self.approx, "--evidence", "approx", "--fp-bits", b, "--z",
                                                self.args.z)),
        }

    def fp(self) -> None:
        import kmerdb
        from kmerdb.core.kmers import canonical

        rng = np.random.default_rng(self.args.seed)
        k = self.args.k
        with kmerdb.open(self.db) as db:
            members = np.sort(np.concatenate(list(db.iter_kmers())))
        probes = canonical(rng.integers(0, 4**k, self.args.probes + self.args.probes // 10, dtype=np.uint64), k)
        at = np.minimum(np.searchsorted(members, probes), members.size - 1)
        probes = probes[members[at] != probes][: self.args.probes]
        with kmerdb.open(self.approx) as db:
            b = db.config.fp_bits
            t0 = time.perf_counter()
            rows = db.lookup(probes)
            lookup_s = time.perf_counter() - t0
            rate = float(rows.any(axis=1).mean())
            seqs = ["".join(rng.choice(list("ACGT"), self.args.read_length)) for _ in range(self.args.reads)]
            runs = {}
            for z in (0, 1, 2):
                res = db.query(seqs, z=z)
                positions = int(res.n_kmers.sum())
                runs[f"z={z}"] = {
                    "found_raw": float(res.found_raw.sum() / positions),
                    "found": float(res.found.sum() / positions),
                }
        self.res["false_positives"] = {
            "fp_bits": b,
            "probes": int(probes.size),
            "rate": rate,
            "expected": 2.0**-b,
            "ratio": rate / 2.0**-b,
            "lookup_seconds": lookup_s,
            "random_sequences": {"reads": self.args.reads, "length": self.args.read_length, **runs},
        }

    def share(self) -> None:
        """In-process build with one worker: CPU time inside build_unitigs over the build's."""
        code = f"""
import json, resource, sys, time
sys.path.insert(0, {str(REPO)!r})
import kmerdb, kmerdb.store.layer as L
spent = [0.0]
orig = L.build_unitigs
def timed(*a, **kw):
    t = time.process_time()
    try:
        return orig(*a, **kw)
    finally:
        spent[0] += time.process_time() - t
L.build_unitigs = timed
c = time.process_time()
genomes = {{f"g{{i}}": path for i, path in enumerate({[str(p) for p in self.inputs]!r})}}
kmerdb.build({str(self.workdir / 'share.kmerdb')!r}, genomes, k={self.args.k}, threads=1)
total = time.process_time() - c
print(json.dumps({{"build_cpu": total, "unitigs_cpu": spent[0]}}))
"""
        shutil.rmtree(self.workdir / "share.kmerdb", ignore_errors=True)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        doc["share"] = doc["unitigs_cpu"] / doc["build_cpu"]
        self.res["unitig_cpu_share"] = doc

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _cmd(argv) -> str:
        return " ".join(str(a) for a in argv)

    @staticmethod
    def _stats(st: dict) -> dict:
        s = st["structures"]
        return {
            "n_kmers": st["n_kmers"],
            "bits_per_kmer": {r: s[r]["bits_per_kmer"] for r in ("mphf", "evidence", "unitigs", "columns")},
            "index_bits_per_kmer": st["index"]["bits_per_kmer"],
            "unitigs": st["unitigs"],
        }


def report(res: dict) -> str:
    """The figures as plain text lines."""
    lines = []
    b = res.get("kmerdb_build")
    c = res.get("bcalm")
    if b:
        lines.append(f"kmerdb build (exact, unitigs included): {b['wall']:.2f} s, peak RSS {b['peak_rss'] / MiB:.0f} MiB")
        lines.append(f"  {b['command']}")
    if c:
        lines.append(f"BCALM2: {c['wall']:.2f} s, peak RSS {c['peak_rss'] / MiB:.0f} MiB, {c['unitigs']:,} unitigs")
        lines.append(f"  {c['command']}")
    if "speedup_vs_bcalm" in res:
        lines.append(f"kmerdb build is {res['speedup_vs_bcalm']:.1f}x faster than BCALM2 (target >= 5x)")
    if "same_kmers" in res:
        s = res["same_kmers"]
        lines.append(
            f"same k-mer set as BCALM2's unitigs: {s['equal']} ({s['kmerdb_kmers']:,} vs {s['bcalm_kmers']:,})"
        )
    for kind, limit in (("exact", 40), ("approx", 24)):
        e = res.get(kind)
        if e:
            parts = ", ".join(f"{r} {v:.2f}" for r, v in e["bits_per_kmer"].items())
            tag = f" B={e['fp_bits']}" if kind == "approx" else ""
            lines.append(
                f"{kind}{tag}: MPHF + evidence + unitigs = {e['index_bits_per_kmer']:.2f} bits/k-mer "
                f"(target <= {limit}); {parts}"
            )
            u = e["unitigs"]
            lines.append(
                f"  unitigs: {u['count']:,}, mean {u['mean_kmers']:.2f} k-mers / {u['mean_bases']:.2f} bases, "
                f"longest {u.get('longest_bases', 0)} bases"
            )
    f = res.get("false_positives")
    if f:
        lines.append(
            f"false positive rate B={f['fp_bits']}: {f['rate']:.6f} over {f['probes']:,} absent k-mers = "
            f"{f['ratio']:.3f} x 2^-{f['fp_bits']} (target within [0.5, 1.5])"
        )
        rs = f["random_sequences"]
        zs = ", ".join(f"{z}: {v['found']:.6f}" for z, v in rs.items() if z.startswith("z="))
        lines.append(f"  positions of {rs['reads']} random {rs['length']} bp sequences found: {zs}")
    sh = res.get("unitig_cpu_share")
    if sh:
        lines.append(
            f"unitig construction: {sh['unitigs_cpu']:.2f} s of {sh['build_cpu']:.2f} s build CPU "
            f"({100 * sh['share']:.0f} %), one worker"
        )
    for name, err in res.get("errors", {}).items():
        lines.append(f"section {name} failed: {err}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="kmerdb unitigs and evidence against BCALM2 (a benchmark, not a test).")
    p.add_argument("inputs", nargs="*", type=Path, help=f"FASTA genomes (default: the three complete ones in {DATA})")
    p.add_argument("--k", type=int, default=31, help="k-mer length (default 31)")
    p.add_argument("--threads", type=int, default=2, help="threads / worker processes for both tools (default 2)")
    p.add_argument("--fp-bits", type=int, default=8, help="fingerprint bits of the approx index (default 8)")
    p.add_argument("--z", type=int, default=0, help="z of the approx index (default 0)")
    p.add_argument("--probes", type=int, default=1_000_000, help="random absent k-mers looked up (default 10^6)")
    p.add_argument("--reads", type=int, default=2000, help="random sequences queried for the z rule (default 2000)")
    p.add_argument("--read-length", type=int, default=150, help="their length (default 150)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--rounds", type=int, default=1, help="runs of each build; best wall, largest peak (default 1)")
    p.add_argument("--bcalm", default="bcalm", help="BCALM2 executable (default: bcalm on PATH)")
    p.add_argument("--sections", default=",".join(ALL_SECTIONS), help=f"subset of {','.join(ALL_SECTIONS)}")
    p.add_argument("--workdir", type=Path, default=None, help="scratch directory, kept (default: temporary)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--quiet", action="store_true", help="only the figures")
    p.add_argument("--verbose", action="store_true", help="tracebacks of failed sections")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if set(args.sections) - set(ALL_SECTIONS):
        p.error(f"unknown section(s): {', '.join(sorted(set(args.sections) - set(ALL_SECTIONS)))}")
    inputs = [Path(x).resolve() for x in args.inputs] or [DATA / name for name in DEFAULT_GENOMES]
    missing = [str(x) for x in inputs if not x.is_file()]
    if missing:
        print("bench_unitigs: input file(s) not found:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="kmerdb-unitigs-")) if own else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    b = Bench(args, inputs, workdir)
    b.res["machine"] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
    try:
        for name in ALL_SECTIONS:
            b.run(name, getattr(b, name))
    finally:
        b.res["machine"]["load_after"] = os.getloadavg()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report(b.res))
    if args.json:
        args.json.write_text(json.dumps(b.res, indent=2))
    return 1 if b.res.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
