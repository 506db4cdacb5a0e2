"""Crash safety: a writer killed with SIGKILL at named points of every phase of build, append
(from files and from databases), merge into a new directory, remove, compact, vacuum and set
operations leaves a database that opens at the previous generation (or the new one, once the
commit is through), passes verify, and answers exactly as that generation did; the next writer
then succeeds and leaves no file of the dead one behind.  Append, merge and compact are killed
on indexes of colour classes too.  (Reindex: test_reindex_crash.py.)

The writer is the console in a subprocess of its own session; ``KMERDB_CRASH_AT=<point>:<n>``
makes it (and its worker processes) die at the n-th hit of the point
(:mod:`kmerdb.store.crashpoint`).  Points inside worker tasks (``--threads 2``) kill the
worker, which takes the writer's whole process group down with it.  A point the operation
never reaches fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import GENOMES, ROOT
from dbcheck import assert_matches_oracle, expected, named_files, universe

import kmerdb
from kmerdb.console import main
from kmerdb.errors import IncompleteDatabaseError
from kmerdb.ops.maintenance import data_files

K = 21
PARTS = 4


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    ab = root / "ab.kmerdb"
    kmerdb.build(ab, {"A": GENOMES["A"], "B": GENOMES["B"]}, k=K, partitions=PARTS, counts=True, threads=2)
    c = root / "c.kmerdb"
    kmerdb.build(c, {"C": GENOMES["C"]}, k=K, partitions=PARTS, counts=True, threads=2)
    a = root / "a.kmerdb"
    kmerdb.build(a, {"A": GENOMES["A"]}, k=K, partitions=PARTS, counts=True, threads=2)
    b = root / "b.kmerdb"
    kmerdb.build(b, {"B": GENOMES["B"]}, k=K, partitions=PARTS, counts=True, threads=2)
    # A+B+C with B removed: layers to compact
    removed = root / "removed.kmerdb"
    shutil.copytree(ab, removed)
    with kmerdb.open(removed, "a") as db:
        with db.transaction():
            db.append_genome("C", GENOMES["C"])
        with db.transaction():
            db.remove_genome("B")
    # ... and compacted: garbage to vacuum
    compacted = root / "compacted.kmerdb"
    shutil.copytree(removed, compacted)
    with kmerdb.open(compacted, "a") as db, db.transaction():
        db.compact()
    made = {"ab": ab, "a": a, "b": b, "c": c, "removed": removed, "compacted": compacted}
    # the same as colour classes (groups of kind class-counts)
    for name, labels in (("ab", "AB"), ("a", "A"), ("b", "B"), ("c", "C")):
        path = root / f"{name}-classes.kmerdb"
        kmerdb.build(path, {g: GENOMES[g] for g in labels}, k=K, partitions=PARTS, counts=True, threads=2, colours="classes")
        made[f"{name}-classes"] = path
    removed = root / "removed-classes.kmerdb"
    shutil.copytree(made["ab-classes"], removed)
    with kmerdb.open(removed, "a") as db:
        with db.transaction():
            db.append_genome("C", GENOMES["C"])
        with db.transaction():
            db.remove_genome("B")
    made["removed-classes"] = removed
    return made


@pytest.fixture(scope="module")
def oracle_k(oracle_sets):
    sets = oracle_sets(K)
    kmers, codes = universe(sets, K, extra=50)
    return sets, kmers, codes


# scenario -> (base, command after "kmerdb", labels before, labels after)
SCENARIOS = {
    "append": ("ab", ["append", "{db}", f"C={GENOMES['C'][0]}", "--threads", "2", "--quiet"], "AB", "ABC"),
    "merge-into": ("ab", ["merge", "--into", "{db}", "{c}", "--threads", "2", "--quiet"], "AB", "ABC"),
    "remove": ("ab", ["remove", "{db}", "B"], "AB", "A"),
    "compact": ("removed", ["compact", "{db}", "--threads", "2", "--quiet"], "AC", "AC"),
    "vacuum": ("compacted", ["vacuum", "{db}"], "AC", "AC"),
    # the same writers on an index of colour classes
    "append-classes": ("ab-classes", ["append", "{db}", f"C={GENOMES['C'][0]}", "--threads", "2", "--quiet"], "AB", "ABC"),
    "merge-into-classes": ("ab-classes", ["merge", "--into", "{db}", "{cc}", "--threads", "2", "--quiet"], "AB", "ABC"),
    "compact-classes": ("removed-classes", ["compact", "{db}", "--threads", "2", "--quiet"], "AC", "AC"),
}

# (scenario, point, after the commit?); "worker" marks points reached inside worker tasks
POINTS = [
    ("append", "txn.locked", False),
    ("append", "append.scatter:1", False),
    ("append", "scatter.chunk", False),  # worker
    ("append", "save.done:2", False),  # worker
    ("append", "append.scattered", False),
    ("append", "add.united", False),
    ("append", "add.classified", False),
    ("append", "save.tmp:3", False),
    ("append", "add.group:2", False),
    ("append", "add.layer", False),
    ("append", "add.done", False),
    ("append", "txn.commit", False),
    ("append", "txn.fsynced", False),
    ("append", "txn.lmdb", False),
    ("append", "txn.committed", True),
    ("append", "txn.cleaned", True),
    # append from databases
    ("merge-into", "txn.locked", False),
    ("merge-into", "add.united", False),  # worker
    ("merge-into", "add.classified", False),  # worker
    ("merge-into", "add.group", False),  # worker
    ("merge-into", "add.layer", False),  # worker
    ("merge-into", "save.done:4", False),  # worker
    ("merge-into", "add.done", False),
    ("merge-into", "txn.commit", False),
    ("merge-into", "txn.fsynced", False),
    ("merge-into", "txn.lmdb", False),
    ("merge-into", "txn.committed", True),
    ("merge-into", "txn.cleaned", True),
    ("remove", "txn.locked", False),
    ("remove", "txn.commit", False),
    ("remove", "txn.fsynced", False),
    ("remove", "txn.lmdb", False),
    ("remove", "txn.committed", True),
    ("remove", "txn.cleaned", True),
    ("compact", "txn.locked", False),
    ("compact", "compact.rows", False),  # worker
    ("compact", "save.tmp:2", False),  # worker
    ("compact", "save.done:3", False),  # worker
    ("compact", "compact.layer", False),  # worker
    ("compact", "txn.commit", False),
    ("compact", "txn.fsynced", False),
    ("compact", "txn.lmdb", False),
    ("compact", "txn.committed", True),
    ("compact", "txn.cleaned", True),
    ("vacuum", "vacuum.locked", False),
    ("vacuum", "remove.file:1", False),
    ("vacuum", "remove.file:2", False),
    ("vacuum", "vacuum.files", False),
    ("vacuum", "vacuum.forgotten", False),
    ("append-classes", "append.scattered", False),
    ("append-classes", "add.united", False),
    ("append-classes", "add.classified", False),
    ("append-classes", "save.tmp:3", False),
    ("append-classes", "add.group:2", False),
    ("append-classes", "add.layer", False),
    ("append-classes", "add.done", False),
    ("append-classes", "txn.fsynced", False),
    ("append-classes", "txn.committed", True),
    ("merge-into-classes", "add.united", False),  # worker
    ("merge-into-classes", "add.classified", False),  # worker
    ("merge-into-classes", "add.group", False),  # worker
    ("merge-into-classes", "add.layer", False),  # worker
    ("merge-into-classes", "save.done:4", False),  # worker
    ("merge-into-classes", "txn.lmdb", False),
    ("merge-into-classes", "txn.committed", True),
    ("compact-classes", "compact.rows", False),  # worker
    ("compact-classes", "save.tmp:2", False),  # worker
    ("compact-classes", "save.done:3", False),  # worker
    ("compact-classes", "compact.layer", False),  # worker
    ("compact-classes", "txn.commit", False),
    ("compact-classes", "txn.lmdb", False),
    ("compact-classes", "txn.committed", True),
]


def _kill_at(point: str, args: list[str]) -> None:
    env = dict(os.environ, KMERDB_CRASH_AT=point, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "kmerdb", *args],
        env=env,
        start_new_session=True,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, (
        f"{point} was not reached (exit {proc.returncode}): {proc.stderr.decode()[-2000:]}"
    )


def _check(path, sets, kmers, codes, labels: str, generation: int) -> None:
    with kmerdb.open(path) as db:
        assert db.generation == generation
    report = kmerdb.verify(path)
    assert report.ok, report.problems
    assert_matches_oracle(path, sets, list(labels), kmers, codes)


def _assert_no_orphan(path) -> None:
    """Every data file is named by the current generation or a recorded older one; no spill file."""
    assert set(data_files(str(path))) <= named_files(path)  # nothing of the dead writer is left
    assert [n for n in os.listdir(path) if n.startswith(".spill-")] == []


@pytest.mark.parametrize("scenario,point,committed", POINTS, ids=[f"{s}@{p}" for s, p, _ in POINTS])
def test_kill_writer(bases, oracle_k, tmp_path, scenario, point, committed):
    sets, kmers, codes = oracle_k
    base, command, before, after = SCENARIOS[scenario]
    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases[base], path)
    with kmerdb.open(path) as db:
        generation = db.generation
    args = [a.format(db=path, c=bases["c"], cc=bases["c-classes"]) for a in command]
    _kill_at(point, args)
    if committed:
        _check(path, sets, kmers, codes, after, generation + 1)
        # the next writer clears what the dead one left after its commit
        assert main(["vacuum", str(path)]) == 0
        _check(path, sets, kmers, codes, after, generation + 1)
        _assert_no_orphan(path)
        _check_kinds(path, scenario)
        return
    _check(path, sets, kmers, codes, before, generation)
    _check_kinds(path, scenario)
    # the next writer clears what the dead one left and succeeds
    assert main(args) == 0
    _check(path, sets, kmers, codes, after, generation + (scenario != "vacuum"))
    _assert_no_orphan(path)
    _check_kinds(path, scenario)


def _check_kinds(path, scenario: str) -> None:
    """An index of colour classes keeps writing colour classes."""
    if scenario.endswith("-classes"):
        with kmerdb.open(path) as db:
            kinds = {g.kind for layers in db.snapshot.partitions for rec in layers for g in rec.groups}
        assert kinds and kinds <= {"class-counts", "unitig-class-counts"}


MERGE_POINTS = [
    ("merge.validated", False),
    ("merge.catalog", False),
    ("merge.link:3", False),
    ("add.classified", False),  # worker
    ("save.done:4", False),  # worker
    ("new.synced", False),
    ("new.lmdb", False),
    ("new.committed", False),
    ("merge.committed", False),
]


MERGE_CASES = (
    [(p, False, "") for p, _ in MERGE_POINTS]
    + [("merge.committed", True, ""), ("merge.swapped", True, "")]
    # sources of colour classes
    + [(p, False, "-classes") for p in ("merge.link:3", "add.classified", "save.done:4", "new.lmdb", "merge.committed")]
    + [("merge.swapped", True, "-classes")]
)


@pytest.mark.parametrize("point,force,kind", MERGE_CASES, ids=[f"{p}{'-force' if f else ''}{k}" for p, f, k in MERGE_CASES])
def test_kill_merge_into_a_new_directory(bases, oracle_k, tmp_path, point, force, kind):
    sets, kmers, codes = oracle_k
    out = tmp_path / "out.kmerdb"
    a, b, c = (bases[name + kind] for name in "abc")
    if force:
        shutil.copytree(a, out)
    args = ["merge", str(out), str(a), str(b), str(c), "--mode", "count", "--threads", "2", "--quiet"]
    args += ["--force"] if force else []
    _kill_at(point, args)
    for src, labels in ((a, "A"), (b, "B"), (c, "C")):
        _check(src, sets, kmers, codes, labels, 1)  # sources untouched
    if point == "merge.swapped":
        _check(out, sets, kmers, codes, "ABC", 1)
    elif force:
        _check(out, sets, kmers, codes, "A", 1)
    else:
        assert not out.exists()
    assert main(args + ["--force"] if force or point == "merge.swapped" else args) == 0
    _check(out, sets, kmers, codes, "ABC", 1)
    if kind:
        _check_kinds(out, "merge" + kind)
    assert [n for n in os.listdir(tmp_path) if ".merge-" in n] == []


# A new database (build, set operation): killed before its catalog is committed, the directory
# says it is incomplete (it refuses to open) and the next build with --force replaces it; once
# committed, it is the new database, whole.
BUILD = ["build", "{out}", f"A={GENOMES['A'][0]}", f"B={GENOMES['B'][0]}", "-k", str(K),
         "--partitions", str(PARTS), "--counts", "--threads", "2", "--quiet"]  # fmt: skip
SETOP = ["setop", "union", "{out}", "{ab}", "--threads", "2", "--quiet"]

# (command, point, after the commit?)
NEW_POINTS = [
    ("build", "scatter.chunk", False),  # worker
    ("build", "build.scattered", False),
    ("build", "build.layer", False),  # worker
    ("build", "save.tmp:3", False),  # worker
    ("build", "save.done:2", False),  # worker
    ("build", "new.synced", False),
    ("build", "new.lmdb", False),
    ("build", "new.committed", True),
    ("setop", "setop.layer", False),  # worker
    ("setop", "save.tmp:2", False),  # worker
    ("setop", "new.synced", False),
    ("setop", "new.lmdb", False),
    ("setop", "new.committed", True),
]


def _check_new(command: str, out, sets, kmers, codes) -> None:
    if command == "build":
        _check(out, sets, kmers, codes, "AB", 1)
    else:  # the union of A and B: one column, counts summed
        with kmerdb.open(out) as db:
            assert (db.generation, db.genomes) == (1, ("union",))
            got = db.lookup(codes, counts=True)[:, 0].astype(np.int64)
        assert np.array_equal(got, expected(sets, ["A", "B"], kmers).sum(axis=1))
        report = kmerdb.verify(out)
        assert report.ok, report.problems
    _assert_no_orphan(out)


@pytest.mark.parametrize("command,point,committed", NEW_POINTS, ids=[f"{c}@{p}" for c, p, _ in NEW_POINTS])
def test_kill_new_database(bases, oracle_k, tmp_path, command, point, committed):
    sets, kmers, codes = oracle_k
    out = tmp_path / "out.kmerdb"
    args = [a.format(out=out, ab=bases["ab"]) for a in (BUILD if command == "build" else SETOP)]
    _kill_at(point, args)
    if command == "setop":  # the source is only read
        _check(bases["ab"], sets, kmers, codes, "AB", 1)
        _assert_no_orphan(bases["ab"])
    if committed:
        _check_new(command, out, sets, kmers, codes)
        assert main(args) == 1  # the path holds a database now: refused, left as it is
        _check_new(command, out, sets, kmers, codes)
        return
    with pytest.raises(IncompleteDatabaseError):
        kmerdb.open(out)
    assert main(args) == 1  # refused (AbandonedBuildError), left as it is
    assert out.exists()
    assert main(args + ["--force"]) == 0  # removes the remains, writes it anew
    _check_new(command, out, sets, kmers, codes)
