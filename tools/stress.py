#!/usr/bin/env python3
"""Readers against a writer: every answer must be the answer of one committed generation.

Reader processes query a database in a loop while a writer process appends genomes, merges
indexes into it and removes genomes (``--ops`` operations, one transaction each), and compacts
(after every 5th operation) and vacuums (after every 3rd) it.
After every commit the writer records the answer of the new generation (a fresh handle's
query and lookup results, as a digest). Each reader records, for every answer, the generation
its handle reports and the digest of what it answered. At the end every reader answer must
equal the writer's answer for that generation, and no reader may have raised.

Readers (``--readers``, default 4) cycle through four behaviours: a fresh handle for every
question; one handle refreshed before every question; one handle that never refreshes (its
generation's files must survive every vacuum); one handle refreshed now and then.

    python tools/stress.py [--data ../shared/data] [--ops 20] [--readers 4] [--k 31]
                           [--threads 2] [--workdir /tmp/kmerdb-stress] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import multiprocessing
import shutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from indexcmp import same_index

GENOMES = (
    "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
)


def read_genome(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return b"".join(line.strip() for line in fh if not line.startswith(b">"))


def make_questions(paths: list[Path], k: int, seed: int = 11):
    """Reads of 150 bp from every genome and random ones; k-mers from every genome and random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    reads, kmers = [], []
    for p in paths:
        seq = read_genome(p)
        for start in rng.integers(0, len(seq) - 150, 100):
            reads.append(seq[start : start + 150].decode())
        for start in rng.integers(0, len(seq) - k, 300):
            kmers.append(seq[start : start + k].decode())
    for _ in range(20):
        reads.append("".join("ACGT"[b] for b in rng.integers(0, 4, 150)))
    for _ in range(100):
        kmers.append("".join("ACGT"[b] for b in rng.integers(0, 4, k)))
    kmers = [x for x in kmers if set(x) <= set("ACGT")]
    return reads, kmers


def answer(db, reads, kmers) -> str:
    """Digest of everything a handle answers to the questions."""
    res = db.query(reads)
    rows = db.lookup(kmers)
    h = hashlib.sha1()
    h.update("\t".join(db.genomes).encode())
    h.update(res.hits.tobytes())
    h.update(res.n_kmers.tobytes())
    h.update(rows.tobytes())
    return h.hexdigest()


def reader(index: int, db_path: str, questions, stop, out_path: str) -> None:
    import kmerdb

    reads, kmers = questions
    behaviour = index % 4
    answers: list[tuple[int, str]] = []
    errors: list[str] = []
    handle = None
    last_refresh = time.monotonic()
    while not stop.is_set():
        try:
            if behaviour == 0:
                with kmerdb.open(db_path) as db:
                    answers.append((db.generation, answer(db, reads, kmers)))
                continue
            if handle is None:
                handle = kmerdb.open(db_path)
            if behaviour == 1 or (behaviour == 3 and time.monotonic() - last_refresh > 1.5):
                handle.refresh()
                last_refresh = time.monotonic()
            answers.append((handle.generation, answer(handle, reads, kmers)))
        except Exception:
            errors.append(traceback.format_exc())
            time.sleep(0.05)
    if handle is not None:
        handle.close()
    Path(out_path).write_text(json.dumps({"behaviour": behaviour, "answers": answers, "errors": errors}))


def writer(db_path: str, singles: list[str], genomes: list[str], n_ops: int, threads: int, questions, out_path: str, ready) -> None:
    import kmerdb

    reads, kmers = questions
    refs: dict[int, str] = {}
    log: list[dict] = []
    errors: list[str] = []

    def record() -> None:
        with kmerdb.open(db_path) as db:
            refs[db.generation] = answer(db, reads, kmers)

    record()
    ready.set()
    # a cycle of operations that keeps two or three genomes and comes back to {g0, g1};
    # a compact (its own transaction) follows every 5th operation, a vacuum every 3rd
    cycle = [
        ("append", "g2"),
        ("remove", "g0"),
        ("merge", "g0"),
        ("remove", "g1"),
        ("append", "g1"),
        ("remove", "g2"),
        ("merge", "g2"),
        ("remove", "g2"),
    ]
    try:
        with kmerdb.open(db_path, "a") as db:
            for i in range(n_ops):
                op, label = cycle[i % len(cycle)]
                t0 = time.perf_counter()
                with db.transaction(wait=True):
                    if op == "append":
                        db.append_genome(label, genomes[int(label[1])], threads=threads)
                    elif op == "merge":
                        db.merge(singles[int(label[1])], threads=threads)
                    else:
                        db.remove_genome(label)
                entry = {"op": op, "genome": label, "generation": db.generation, "seconds": time.perf_counter() - t0}
                record()
                if i % 5 == 4:
                    with db.transaction(wait=True):
                        db.compact(threads=threads)
                    record()
                    entry["compact_generation"] = db.generation
                if i % 3 == 2:
                    v = kmerdb.vacuum(db_path, wait=True)
                    entry["vacuum"] = {"files_removed": v.files_removed, "kept": list(v.generations_kept)}
                log.append(entry)
                print(f"writer: {op} {label} -> generation {entry['generation']} ({entry['seconds']:.1f} s)", file=sys.stderr)
    except Exception:
        errors.append(traceback.format_exc())
    Path(out_path).write_text(json.dumps({"refs": refs, "log": log, "errors": errors}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--ops", type=int, default=20)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--k", type=int, default=31)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/kmerdb-stress")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import kmerdb

    paths = [Path(args.data) / g for g in GENOMES]
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db_path = str(work / "db.kmerdb")
    t0 = time.perf_counter()
    kmerdb.build(db_path, {"g0": paths[0], "g1": paths[1]}, k=args.k, threads=args.threads)
    singles = []
    for i, p in enumerate(paths):
        singles.append(str(work / f"g{i}.kmerdb"))
        kmerdb.build(singles[-1], {f"g{i}": p}, k=args.k, threads=args.threads)
    questions = make_questions(paths, args.k)
    print(f"set-up {time.perf_counter() - t0:.1f} s; {len(questions[0])} reads and {len(questions[1])} k-mers per answer", file=sys.stderr)

    ctx = multiprocessing.get_context("spawn")
    stop, ready = ctx.Event(), ctx.Event()
    w_out = str(work / "writer.json")
    w = ctx.Process(target=writer, args=(db_path, singles, [str(p) for p in paths], args.ops, args.threads, questions, w_out, ready))
    w.start()
    ready.wait(600)
    r_outs = [str(work / f"reader{i}.json") for i in range(args.readers)]
    readers = [ctx.Process(target=reader, args=(i, db_path, questions, stop, r_outs[i])) for i in range(args.readers)]
    t1 = time.perf_counter()
    for r in readers:
        r.start()
    w.join()
    time.sleep(1.0)  # a last round of answers at the final generation
    stop.set()
    for r in readers:
        r.join(600)
    seconds = time.perf_counter() - t1

    wres = json.loads(Path(w_out).read_text())
    refs = {int(g): d for g, d in wres["refs"].items()}
    summary = {
        "ops": len(wres["log"]),
        "generations": sorted(refs),
        "writer_errors": wres["errors"],
        "readers": [],
        "answers": 0,
        "mismatches": 0,
        "errors": len(wres["errors"]),
        "seconds": seconds,
        "log": wres["log"],
    }
    for path in r_outs:
        res = json.loads(Path(path).read_text())
        gens = sorted({g for g, _ in res["answers"]})
        bad = [(g, d) for g, d in res["answers"] if refs.get(g) != d]
        summary["readers"].append(
            {
                "behaviour": ["fresh handle", "refresh every time", "never refresh", "refresh now and then"][res["behaviour"]],
                "answers": len(res["answers"]),
                "generations_seen": gens,
                "mismatches": len(bad),
                "errors": res["errors"][:3],
            }
        )
        summary["answers"] += len(res["answers"])
        summary["mismatches"] += len(bad)
        summary["errors"] += len(res["errors"])
    report = kmerdb.verify(db_path, threads=args.threads)
    summary["verify_ok"] = report.ok
    summary["verify_problems"] = report.problems[:5]
    # the final generation holds exactly what a build of its genomes holds
    with kmerdb.open(db_path) as db:
        final = db.genomes
    ref = str(work / "final-build.kmerdb")
    kmerdb.build(ref, {label: paths[int(label[1])] for label in final}, k=args.k, threads=args.threads)
    summary["final_genomes"] = list(final)
    summary["final_equals_build"] = same_index(db_path, ref)

    print(
        f"\n{summary['ops']} operations committed ({len(refs)} generations) in {seconds:.1f} s while "
        f"{args.readers} readers answered {summary['answers']} times"
    )
    for i, r in enumerate(summary["readers"]):
        print(
            f"  reader {i} ({r['behaviour']}): {r['answers']} answers, generations "
            f"{r['generations_seen'][0] if r['generations_seen'] else '-'}..{r['generations_seen'][-1] if r['generations_seen'] else '-'} "
            f"({len(r['generations_seen'])} seen), {r['mismatches']} mismatches, {len(r['errors'])} errors"
        )
    print(
        f"mismatches: {summary['mismatches']}, errors: {summary['errors']}, verify: {'ok' if report.ok else 'FAILED'}, "
        f"final generation ({', '.join(final)}) equals a build of its genomes: {summary['final_equals_build']}"
    )
    for r in summary["readers"]:
        for e in r["errors"]:
            print(e, file=sys.stderr)
    for e in wres["errors"]:
        print(e, file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    good = summary["mismatches"] == 0 and summary["errors"] == 0 and report.ok and summary["final_equals_build"]
    return 0 if good and summary["ops"] == args.ops else 1


if __name__ == "__main__":
    sys.exit(main())
