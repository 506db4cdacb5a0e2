"""Writable handles: append, merge, remove and compact in transactions; rollback; the writer
lock; snapshots of readers; generations."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time

import numpy as np
import pytest
from conftest import GENOMES
from dbcheck import assert_matches_oracle, assert_same_answers, universe

import kmerdb
from kmerdb.ops.maintenance import data_files

K = 21
PARTS = 4


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("txn")
    made = {"root": root}
    for counts in (True, False):
        tag = "c" if counts else "p"
        for name, labels in (("AB", "AB"), ("ABC", "ABC"), ("AC", "AC"), ("C", "C")):
            path = root / f"{tag}{name}.kmerdb"
            kmerdb.build(path, {g: GENOMES[g] for g in labels}, k=K, partitions=PARTS, counts=counts, threads=2)
            made[tag + name] = path
    return made


@pytest.fixture(scope="module")
def oracle_k(oracle_sets):
    sets = oracle_sets(K)
    kmers, codes = universe(sets, K)
    return sets, kmers, codes


def copy(src, tmp_path, name="db.kmerdb"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("tag", ["c", "p"])
def test_append_answers_like_a_build_of_all(bases, oracle_k, tmp_path, tag):
    sets, kmers, codes = oracle_k
    path = copy(bases[tag + "AB"], tmp_path)
    with kmerdb.open(path, "a") as db:
        assert db.generation == 1
        with db.transaction():
            db.append_genome("C", GENOMES["C"], threads=2)
            assert db.genomes == ("A", "B", "C")  # the handle sees what it staged
        assert db.generation == 2
    assert_matches_oracle(path, sets, ["A", "B", "C"], kmers, codes)
    assert_same_answers(path, bases[tag + "ABC"])  # statistics too: spectrums from the counts
    assert kmerdb.verify(path).ok


def test_merge_into_answers_like_a_build_of_all(bases, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    path = copy(bases["cAB"], tmp_path)
    with kmerdb.open(path, "a") as db, db.transaction():
        db.merge(bases["cC"], threads=2)
    assert_same_answers(path, bases["cABC"])
    with kmerdb.open(path, "a") as db, db.transaction():
        db.merge([bases["cC"], bases["cAB"]], rename_duplicates=True)
    assert_matches_oracle(
        path, sets, ["A", "B", "C", "C.1", "A.1", "B.1"], kmers, codes, {"C.1": "C", "A.1": "A", "B.1": "B"}
    )
    with kmerdb.open(path, "a") as db:
        with pytest.raises(kmerdb.DuplicateLabelError), db.transaction():
            db.merge(bases["cC"])
        with pytest.raises(kmerdb.MissingCountsError), db.transaction():
            db.merge(bases["pC"])
        assert db.generation == 3


def test_remove_then_compact_answers_like_a_build_without(bases, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    path = copy(bases["cABC"], tmp_path)
    with kmerdb.open(path, "a") as db:
        with db.transaction():
            db.remove_genome("B")
        assert db.genomes == ("A", "C")
        assert_matches_oracle(path, sets, ["A", "C"], kmers, codes)
        with db.transaction():
            db.compact(threads=2)
        assert db.generation == 3
        assert all(len(layers) == 1 and len(layers[0].groups) == 1 for layers in db.snapshot.partitions)
    assert_same_answers(path, bases["cAC"])
    with kmerdb.open(path) as db, kmerdb.open(bases["cAC"]) as ref:
        assert db.n_kmers == ref.n_kmers  # k-mers of B alone are gone
        assert [h.command for h in db.history()] == ["build", "remove", "compact"]
    with kmerdb.open(path, "a") as db:
        with db.transaction():
            db.compact()  # compact already: nothing to commit
        assert db.generation == 3
        with pytest.raises(kmerdb.GenomeNotFoundError), db.transaction():
            db.remove_genome("B")
    assert kmerdb.verify(path).ok


def test_operations_of_one_transaction_commit_together(bases, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    path = copy(bases["pAB"], tmp_path)
    with kmerdb.open(path, "a") as db:
        with db.transaction() as txn:
            db.remove_genome("A")
            db.append_genome("C", GENOMES["C"])
            db.merge(bases["pC"], rename_duplicates=True)
            db.compact()
            assert txn.generation == 2 and db.genomes == ("B", "C", "C.1")
            with kmerdb.open(path) as other:  # nothing visible outside before the commit
                assert other.generation == 1 and other.genomes == ("A", "B")
        assert db.generation == 2
        assert [(h.command, h.generation) for h in db.history()][1:] == [
            ("remove", 2),
            ("append", 2),
            ("merge", 2),
            ("compact", 2),
        ]
    assert_matches_oracle(path, sets, ["B", "C", "C.1"], kmers, codes, {"C.1": "C"})
    # the files written and superseded inside the transaction are gone already
    with kmerdb.open(path) as db:
        named = {ref.path for ref in db.snapshot.all_files()}
    assert set(data_files(str(path))) <= named | _files_of_generation(path, 1)
    assert kmerdb.verify(path).ok


def _files_of_generation(path, generation):
    from kmerdb.store.catalog import Catalog

    cat = Catalog.open(str(path))
    try:
        return set(cat.generations().get(generation, []))
    finally:
        cat.close()


def test_rollback_leaves_nothing_behind(bases, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    path = copy(bases["cAB"], tmp_path)
    before = sorted(data_files(str(path)))
    with kmerdb.open(path, "a") as db:
        with pytest.raises(RuntimeError, match="changed my mind"), db.transaction():
            db.append_genome("C", GENOMES["C"])
            db.compact()
            assert db.genomes == ("A", "B", "C")
            raise RuntimeError("changed my mind")
        assert db.generation == 1 and db.genomes == ("A", "B")
        # a failing operation leaves the transaction usable and its files removed
        with db.transaction():
            with pytest.raises(kmerdb.InputError):
                db.append_genome("X", [GENOMES["A"][0], str(tmp_path / "missing.fa")])
            db.append_genome("C", GENOMES["C"])
        assert db.generation == 2
    assert_matches_oracle(path, sets, ["A", "B", "C"], kmers, codes)
    with kmerdb.open(path, "a") as db, pytest.raises(ValueError), db.transaction():
        db.remove_genome("C")
        raise ValueError
    assert sorted(data_files(str(path))) != before
    shutil.rmtree(path)
    path = copy(bases["cAB"], tmp_path)
    with kmerdb.open(path, "a") as db, pytest.raises(KeyError), db.transaction():
        db.append_genome("C", GENOMES["C"])
        raise KeyError("x")
    assert sorted(data_files(str(path))) == before
    assert kmerdb.verify(path).ok


def test_writes_need_a_writable_handle_and_a_transaction(bases, tmp_path):
    path = copy(bases["pAB"], tmp_path)
    with kmerdb.open(path) as db:
        with pytest.raises(kmerdb.ReadOnlyError):
            db.transaction()
        with pytest.raises(kmerdb.ReadOnlyError):
            db.remove_genome("A")
    with kmerdb.open(path, "a") as db:
        with pytest.raises(kmerdb.TransactionError, match="transaction"):
            db.remove_genome("A")
        with db.transaction(), pytest.raises(kmerdb.TransactionError, match="nest"):
            db.transaction()
    with pytest.raises(kmerdb.InvalidParameterError):
        kmerdb.open(path, "w")


def test_one_writer_at_a_time(bases, tmp_path):
    path = copy(bases["pAB"], tmp_path)
    first = kmerdb.open(path, "a")
    second = kmerdb.open(path, "a")
    with first.transaction():
        first.remove_genome("A")
        with pytest.raises(kmerdb.LockedError, match=f"locked by PID {os.getpid()}"), second.transaction():
            pass
        t0 = time.monotonic()
        with pytest.raises(kmerdb.LockedError), second.transaction(wait=0.3):
            pass
        assert time.monotonic() - t0 >= 0.3
        with pytest.raises(kmerdb.LockedError):
            kmerdb.vacuum(path)
        done = []

        def waiter():
            with second.transaction(wait=True):  # waits for the first, then sees its commit
                done.append(second.genomes)
                second.remove_genome("B")

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.2)
        assert not done
    thread.join(10)
    assert done == [("B",)]
    assert second.genomes == () and second.generation == 3
    first.close()
    second.close()


def test_readers_keep_their_snapshot_until_refresh(bases, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    path = copy(bases["cAB"], tmp_path)
    old = kmerdb.open(path)
    before = old.lookup(codes, counts=True)
    with kmerdb.open(path, "a") as db:
        with db.transaction():
            db.append_genome("C", GENOMES["C"])
        with db.transaction():
            db.remove_genome("A")
            db.compact()
    kmerdb.vacuum(path)  # the old reader's files stay: it is registered at generation 1
    assert old.generation == 1 and old.genomes == ("A", "B")
    assert np.array_equal(old.lookup(codes, counts=True), before)
    with kmerdb.open(path) as new:
        assert new.generation == 3 and new.genomes == ("B", "C")
    assert old.refresh() is True
    assert old.generation == 3 and old.genomes == ("B", "C")
    assert old.refresh() is False
    assert_matches_oracle(path, sets, ["B", "C"], kmers, codes)
    old.close()
    report = kmerdb.vacuum(path)
    assert report.files_removed > 0 and report.generations_kept == ()
    assert kmerdb.verify(path).ok


def _hold_reader(path, ready, release):
    db = kmerdb.open(path)
    ready.set()
    release.wait(30)
    db.close()


def _die_with_reader(path):
    kmerdb.open(path)
    os._exit(0)


def test_vacuum_keeps_generations_of_readers_in_other_processes(bases, tmp_path):
    path = copy(bases["pAB"], tmp_path)
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_reader, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        dead = ctx.Process(target=_die_with_reader, args=(str(path),))  # never closes its handle
        dead.start()
        dead.join(60)
        with kmerdb.open(path, "a") as db, db.transaction():
            db.remove_genome("A")
            db.compact()
        report = kmerdb.vacuum(path)
        assert report.generations_kept == (1,) and report.live_readers == 1
        assert report.files_removed == 0
        with kmerdb.open(path) as db:
            assert not (set(_files_of_generation(path, 1)) - set(data_files(str(path))))
    finally:
        release.set()
        holder.join(60)
    report = kmerdb.vacuum(path)
    assert report.generations_dropped == (1,) and report.files_removed > 0
    assert not os.listdir(path / "locks" / "readers")


def test_many_handles_in_one_process(bases):
    handles = [kmerdb.open(bases["pABC"]) for _ in range(4)]
    assert len({h.n_kmers for h in handles}) == 1
    for h in handles:
        h.close()


def test_append_of_a_small_genome_to_large_layers(bases, oracle_sets, tmp_path):
    """Few new k-mers against large layers: looked up through the MPHFs instead of a sort."""
    import oracle

    chunk = oracle.read_sequences(GENOMES["A"][0])[0][1][3000:3400]
    small = tmp_path / "small.fa"
    rng = np.random.default_rng(3)
    small.write_text(">s\n" + chunk + "".join("ACGT"[b] for b in rng.integers(0, 4, 300)) + "\n")
    path = copy(bases["cABC"], tmp_path)
    with kmerdb.open(path, "a") as db, db.transaction():
        db.append_genome("S", str(small))
    sets = dict(oracle_sets(K))
    sets["S"] = oracle.genome_sets({"S": [str(small)]}, K)["S"]
    kmers, codes = universe(sets, K, extra=20)
    assert_matches_oracle(path, sets, ["A", "B", "C", "S"], kmers, codes)
    assert kmerdb.verify(path).ok


def test_merge_takes_open_handles(bases, tmp_path):
    path = copy(bases["cAB"], tmp_path)
    with kmerdb.open(bases["cC"]) as other, kmerdb.open(path, "a") as db:
        with db.transaction():
            db.merge(other)
        assert db.genomes == ("A", "B", "C")
    assert_same_answers(path, bases["cABC"])


def test_the_transaction_is_the_context_manager(bases, tmp_path):
    """``db.transaction()`` begins (takes the lock) and returns the Transaction; ``with`` commits
    it on a clean exit; an ended transaction cannot be entered or used again."""
    path = copy(bases["pABC"], tmp_path)
    with kmerdb.open(path, "a") as db, kmerdb.open(path, "a") as other:
        txn = db.transaction()
        assert isinstance(txn, kmerdb.Transaction) and txn.active
        with pytest.raises(kmerdb.LockedError):
            other.transaction()  # the lock is held before any block is entered
        with txn as entered:
            assert entered is txn
            db.remove_genome("A")
        assert not txn.active and txn.state == "committed" and db.generation == 2
        with pytest.raises(kmerdb.TransactionError), txn:
            pass
        with pytest.raises(kmerdb.TransactionError):
            txn.remove_genomes("B")
        with pytest.raises(kmerdb.TransactionError):
            db.remove_genome("B")  # the handle has no open transaction any more
        # an explicit commit inside the block: leaving the block does nothing more
        with db.transaction() as txn:
            db.remove_genome("B")
            assert txn.commit() == 3
            with pytest.raises(kmerdb.TransactionError):
                db.remove_genome("C")
        assert db.generation == 3 and db.genomes == ("C",)
        other.refresh()
        assert other.genomes == ("C",)


def test_a_transaction_ends_without_a_block(bases, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    path = copy(bases["cAB"], tmp_path)
    before = sorted(data_files(str(path)))
    with kmerdb.open(path, "a") as db:
        txn = db.transaction()
        db.append_genome("C", GENOMES["C"])
        assert db.genomes == ("A", "B", "C")
        txn.rollback()
        assert db.genomes == ("A", "B") and db.generation == 1
        assert sorted(data_files(str(path))) == before
        txn = db.transaction()  # the rollback released the lock
        db.append_genome("C", GENOMES["C"])
        assert txn.commit() == 2
        with pytest.raises(kmerdb.TransactionError):
            txn.commit()
    assert_matches_oracle(path, sets, ["A", "B", "C"], kmers, codes)


def test_closing_the_handle_rolls_its_transaction_back(bases, tmp_path):
    path = copy(bases["pAB"], tmp_path)
    db = kmerdb.open(path, "a")
    txn = db.transaction()
    db.remove_genome("A")
    db.close()
    assert txn.state == "rolled back"
    with kmerdb.open(path, "a") as again, again.transaction():  # the lock is free
        assert again.genomes == ("A", "B") and again.generation == 1
