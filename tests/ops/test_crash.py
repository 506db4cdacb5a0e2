"""Crash safety: a writer killed with SIGKILL at named points of every phase of append, merge,
remove, compact and vacuum leaves a database that opens at the previous generation (or the
new one, once the commit is through), passes verify, and answers exactly as that generation
did; the next writer then succeeds.

The writer is the console in a subprocess of its own session; ``KMERDB_CRASH_AT=<point>:<n>``
makes it (and its worker processes) die at the n-th hit of the point
(:mod:`kmerdb.crashpoint`).  A point the operation never reaches fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import GENOMES, ROOT
from dbcheck import assert_matches_oracle, universe

import kmerdb

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
    return {"ab": ab, "a": a, "b": b, "c": c, "removed": removed, "compacted": compacted}


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
}

# (scenario, point, after the commit?)
POINTS = [
    ("append", "txn.locked", False),
    ("append", "append.scatter:1", False),
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
    ("merge-into", "add.united", False),
    ("merge-into", "save.done:4", False),
    ("merge-into", "txn.lmdb", False),
    ("remove", "txn.locked", False),
    ("remove", "txn.commit", False),
    ("remove", "txn.lmdb", False),
    ("remove", "txn.committed", True),
    ("compact", "compact.rows", False),
    ("compact", "save.tmp:2", False),
    ("compact", "compact.layer", False),
    ("compact", "txn.lmdb", False),
    ("compact", "txn.committed", True),
    ("vacuum", "remove.file:2", False),
    ("vacuum", "vacuum.files", False),
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


@pytest.mark.parametrize("scenario,point,committed", POINTS, ids=[f"{s}@{p}" for s, p, _ in POINTS])
def test_kill_writer(bases, oracle_k, tmp_path, scenario, point, committed):
    sets, kmers, codes = oracle_k
    base, command, before, after = SCENARIOS[scenario]
    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases[base], path)
    with kmerdb.open(path) as db:
        generation = db.generation
    args = [a.format(db=path, c=bases["c"]) for a in command]
    _kill_at(point, args)
    if committed:
        _check(path, sets, kmers, codes, after, generation + 1)
        return
    _check(path, sets, kmers, codes, before, generation)
    # the next writer clears what the dead one left and succeeds
    from kmerdb.console import main

    assert main(args) == 0
    _check(path, sets, kmers, codes, after, generation + (scenario != "vacuum"))
    if scenario != "vacuum":
        with kmerdb.open(path) as db:
            named = {ref.path for ref in db.snapshot.all_files()}
        from kmerdb.store.catalog import Catalog

        cat = Catalog.open(str(path))
        try:
            for files in cat.generations().values():
                named.update(files)
        finally:
            cat.close()
        from kmerdb.ops.maintenance import data_files

        assert set(data_files(str(path))) <= named  # nothing of the dead writer is left


MERGE_POINTS = [
    ("merge.validated", False),
    ("merge.catalog", False),
    ("merge.link:3", False),
    ("add.classified", False),
    ("save.done:4", False),
    ("merge.committed", False),
]


@pytest.mark.parametrize("point,force", [(p, False) for p, _ in MERGE_POINTS] + [("merge.committed", True), ("merge.swapped", True)])
def test_kill_merge_into_a_new_directory(bases, oracle_k, tmp_path, point, force):
    sets, kmers, codes = oracle_k
    out = tmp_path / "out.kmerdb"
    if force:
        shutil.copytree(bases["a"], out)
    args = ["merge", str(out), str(bases["a"]), str(bases["b"]), str(bases["c"]), "--mode", "count", "--threads", "2", "--quiet"]
    args += ["--force"] if force else []
    _kill_at(point, args)
    for src, labels in (("a", "A"), ("b", "B"), ("c", "C")):
        _check(bases[src], sets, kmers, codes, labels, 1)  # sources untouched
    if point == "merge.swapped":
        _check(out, sets, kmers, codes, "ABC", 1)
    elif force:
        _check(out, sets, kmers, codes, "A", 1)
    else:
        assert not out.exists()
    from kmerdb.console import main

    assert main(args + ["--force"] if force or point == "merge.swapped" else args) == 0
    _check(out, sets, kmers, codes, "ABC", 1)
    assert [n for n in os.listdir(tmp_path) if ".merge-" in n] == []
