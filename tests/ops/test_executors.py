"""The write pipelines give the same database on every executor: one thread, forked and
spawned processes, and a Dask cluster; a task that fails there fails the operation cleanly."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from conftest import GENOMES
from dbcheck import assert_matches_oracle, dump, universe

import kmerdb
from kmerdb.engine.executor import START_METHOD_ENV
from kmerdb.ops.add import add_database_genomes, add_input_genomes
from kmerdb.ops.compact import compact_snapshot

K = 21
PARTS = 4
EXECUTORS = ["serial", "fork", "spawn", "dask"]


@pytest.fixture
def run_on(request, monkeypatch):
    """Keyword arguments that pick an executor: threads, and the Dask client for "dask"."""

    def pick(name: str) -> dict:
        if name == "serial":
            return {"threads": 1}
        if name == "fork":
            monkeypatch.setenv(START_METHOD_ENV, "fork")
            return {"threads": 2}
        if name == "spawn":
            monkeypatch.setenv(START_METHOD_ENV, "spawn")
            return {"threads": 2}
        return {"scheduler": request.getfixturevalue("dask_client")}

    return pick


@pytest.fixture(scope="module")
def oracle_k(oracle_sets):
    sets = oracle_sets(K)
    kmers, codes = universe(sets, K)
    return sets, kmers, codes


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Databases made with one thread, the answers every executor must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    made = {}
    for label, paths in GENOMES.items():
        made[label] = root / f"{label}.kmerdb"
        kmerdb.build(made[label], {label: paths}, k=K, partitions=PARTS, counts=True, threads=1)
    made["ABC"] = root / "ABC.kmerdb"
    kmerdb.build(made["ABC"], GENOMES, k=K, partitions=PARTS, counts=True, threads=1)
    made["merged"] = root / "merged.kmerdb"
    kmerdb.merge(made["merged"], [made[g] for g in "ABC"], mode="count", threads=1)
    return made


def assert_identical(a, b) -> None:
    """Same labels, k-mers, rows and genome statistics; and the very same data files."""
    da, db_ = dump(a), dump(b)
    assert da[0] == db_[0]
    assert np.array_equal(da[1], db_[1])
    assert np.array_equal(da[2], db_[2])
    assert da[3] == db_[3]
    with kmerdb.open(a) as x, kmerdb.open(b) as y:
        files_a = sorted((ref.path, ref.checksum) for ref in x.snapshot.all_files())
        files_b = sorted((ref.path, ref.checksum) for ref in y.snapshot.all_files())
    assert files_a == files_b


@pytest.mark.parametrize("executor", EXECUTORS)
def test_build_is_the_same_on_every_executor(tmp_path, reference, oracle_k, run_on, executor):
    sets, kmers, codes = oracle_k
    path = tmp_path / "db"
    kmerdb.build(path, GENOMES, k=K, partitions=PARTS, counts=True, **run_on(executor))
    assert not (path / "spill").exists()
    assert_identical(path, reference["ABC"])
    assert_matches_oracle(path, sets, list(GENOMES), kmers, codes)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_merge_is_the_same_on_every_executor(tmp_path, reference, oracle_k, run_on, executor):
    sets, kmers, codes = oracle_k
    out = tmp_path / "merged"
    kmerdb.merge(out, [reference[g] for g in "ABC"], mode="count", **run_on(executor))
    assert_identical(out, reference["merged"])
    assert_matches_oracle(out, sets, list("ABC"), kmers, codes)


def _append_inputs(path, executor_args: dict) -> None:
    with kmerdb.open(path, "a") as db, db.transaction() as txn:
        txn.apply(
            lambda snap, gen: add_input_genomes(txn.root, snap, gen, {"C": GENOMES["C"]}, **_split(executor_args)),
            "append",
        )


def _append_databases(path, source, executor_args: dict) -> None:
    with kmerdb.open(path, "a") as db, db.transaction() as txn:
        txn.apply(
            lambda snap, gen: add_database_genomes(txn.root, snap, gen, [source], **_split(executor_args)), "merge"
        )


def _compact(path, executor_args: dict) -> None:
    with kmerdb.open(path, "a") as db, db.transaction() as txn:
        txn.apply(lambda snap, gen: compact_snapshot(txn.root, snap, gen, **_split(executor_args)), "compact")


def _split(executor_args: dict) -> dict:
    return {"threads": executor_args.get("threads"), "scheduler": executor_args.get("scheduler")}


@pytest.mark.parametrize("executor", EXECUTORS)
def test_append_remove_compact_are_the_same_on_every_executor(tmp_path, reference, oracle_k, run_on, executor):
    sets, kmers, codes = oracle_k
    args = run_on(executor)
    results = {}
    for name, how in (("local", {"threads": 1}), (executor, args)):
        (tmp_path / name).mkdir()
        ab = tmp_path / name / "ab"
        kmerdb.merge(ab, [reference["A"], reference["B"]], mode="count", threads=1)
        _append_inputs(ab, how)
        assert not (ab / "spill").exists()
        by_db = tmp_path / name / "by_db"
        kmerdb.merge(by_db, [reference["A"], reference["B"]], mode="count", threads=1)
        _append_databases(by_db, reference["C"], how)
        with kmerdb.open(by_db, "a") as db, db.transaction():
            db.remove_genome("B")
        _compact(by_db, how)
        results[name] = (ab, by_db)
    (ab_local, by_db_local), (ab, by_db) = results["local"], results[executor]
    assert_identical(ab, ab_local)
    assert_matches_oracle(ab, sets, list("ABC"), kmers, codes)
    assert_identical(by_db, by_db_local)
    assert_matches_oracle(by_db, sets, ["A", "C"], kmers, codes)
    with kmerdb.open(by_db) as db:
        assert all(len(layers) <= 1 for layers in db.snapshot.partitions)


def _random_genome(path, n_bases: int, seed: int = 11) -> str:
    rng = np.random.default_rng(seed)
    seq = "".join(np.array(list("ACGT"))[rng.integers(0, 4, n_bases)])
    with open(path, "w") as fh:
        fh.write(">random\n")
        for i in range(0, len(seq), 80):
            fh.write(seq[i : i + 80] + "\n")
    return str(path)


@pytest.mark.parametrize("executor", ["spawn", "dask"])
def test_a_failing_build_task_leaves_nothing(tmp_path, run_on, executor):
    # one partition of ~1.2M k-mers cannot fit the gather task's share of 300 MB: the task
    # raises, in a worker process or on the cluster
    genome = _random_genome(tmp_path / "big.fa", 1_200_000)
    path = tmp_path / "db"
    with pytest.raises(kmerdb.MemoryBudgetError, match="partition 0"):
        kmerdb.build(path, {"big": genome}, k=K, partitions=1, max_memory="300M", **run_on(executor))
    assert not path.exists()


def _damaged_copy(source, dest) -> str:
    """A copy of ``source`` with one data file of its largest partition missing."""
    shutil.copytree(source, dest)
    with kmerdb.open(dest) as db:
        largest = max(db.snapshot.partitions, key=lambda layers: sum(r.n_kmers for r in layers))
        victim = largest[0].files["dictionary"].path
    os.unlink(os.path.join(dest, victim))
    return str(dest)


@pytest.mark.parametrize("executor", ["fork", "dask"])
def test_a_failing_merge_task_commits_nothing(tmp_path, reference, oracle_k, run_on, executor):
    sets, kmers, codes = oracle_k
    damaged = _damaged_copy(reference["C"], tmp_path / "c")
    args = run_on(executor)
    out = tmp_path / "out"
    with pytest.raises(kmerdb.KmerDBError):
        kmerdb.merge(out, [reference["A"], damaged], mode="count", **args)
    assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if ".merge-" in n] == []
    # merge into an existing database: the previous generation stays
    ab = tmp_path / "ab"
    kmerdb.merge(ab, [reference["A"], reference["B"]], mode="count", threads=1)
    with kmerdb.open(ab) as db:
        generation = db.generation
    with pytest.raises(kmerdb.KmerDBError):
        _append_databases(ab, damaged, args)
    with kmerdb.open(ab) as db:
        assert db.generation == generation
    assert kmerdb.verify(ab).ok
    assert_matches_oracle(ab, sets, list("AB"), kmers, codes)
