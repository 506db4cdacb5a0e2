"""The query worker pool: tasks run in forked workers and the caller, errors come back typed."""

import os
import threading

import numpy as np
import pytest

import kmerdb
from kmerdb.errors import WorkerError
from kmerdb.query.pool import QueryPool, SharedArray


def _task(x, fail=None):
    if fail == "kmerdb":
        raise kmerdb.InvalidParameterError("x", x, "refused in a worker")
    if fail == "other":
        raise ZeroDivisionError("boom")
    if fail == "die":
        os._exit(3)
    return os.getpid(), x * 2


def test_tasks_run_in_the_caller_and_the_workers():
    pool = QueryPool(_task, 2, owner=None)
    try:
        results = pool.try_map([(1,), (2,), (3,)])
        assert [r[1] for r in results] == [2, 4, 6]
        assert results[0][0] == os.getpid()
        assert sorted(r[0] for r in results[1:]) == sorted(pool.pids)
        again = pool.try_map([(5,), (6,)])  # fewer tasks than workers: the same processes serve
        assert again[1][0] in pool.pids and [r[1] for r in again] == [10, 12]
        with pytest.raises(ValueError):
            pool.try_map([(1,)] * 4)
    finally:
        pool.close()
    assert pool.pids == [] and pool.broken


def test_errors_come_back_typed_and_the_pool_keeps_serving():
    pool = QueryPool(_task, 1, owner=None)
    try:
        with pytest.raises(kmerdb.InvalidParameterError, match="refused in a worker"):
            pool.try_map([(1,), (2, "kmerdb")])
        with pytest.raises(WorkerError, match="ZeroDivisionError: boom"):
            pool.try_map([(1,), (2, "other")])
        assert [r[1] for r in pool.try_map([(1,), (2,)])] == [2, 4]  # nothing left in the pipes
    finally:
        pool.close()


def test_a_dead_worker_breaks_the_pool():
    pool = QueryPool(_task, 1, owner=None)
    try:
        with pytest.raises(WorkerError, match="ended"):
            pool.try_map([(1,), (2, "die")])
        assert pool.broken and pool.try_map([(1,), (2,)]) is None
    finally:
        pool.close()


def test_a_busy_pool_says_so():
    entered, release = threading.Event(), threading.Event()

    def slow(x):
        entered.set()
        release.wait(10)
        return x

    pool = QueryPool(slow, 1, owner=None)
    try:
        worker = threading.Thread(target=lambda: pool.try_map([(1,)]))
        worker.start()
        entered.wait(10)
        assert pool.try_map([(2,)]) is None
        release.set()
        worker.join()
    finally:
        release.set()
        pool.close()


def test_close_ends_the_workers():
    pool = QueryPool(_task, 2, owner=None)
    pids = pool.pids
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _fill(lo, hi, fail, array):
    """Write rows lo:hi of a shared array (row i: i, then the writer's pid)."""
    array[lo:hi, 0] = np.arange(lo, hi)
    array[lo:hi, 1] = os.getpid()
    if fail:
        raise kmerdb.InvalidParameterError("lo", lo, "refused after writing")
    return hi - lo


def _open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no anonymous memory files here")
def test_tasks_write_their_rows_of_a_shared_array():
    pool = QueryPool(_fill, 2, owner=None)
    try:
        shared = SharedArray.create((30, 2), np.int64)
        assert shared is not None and not shared.array.any()  # zeros
        assert pool.try_map([(0, 10, False), (10, 20, False), (20, 30, False)], shared) == [10, 10, 10]
        rows = shared.private()
        assert rows[:, 0].tolist() == list(range(30))
        writers = rows[:, 1].reshape(3, 10)
        assert (writers == writers[:, :1]).all()  # each share by one process
        assert writers[0, 0] == os.getpid() and sorted(writers[1:, 0]) == sorted(pool.pids)
        # a worker keeps no descriptor or mapping of an array once its task is done
        before = [_open_fds(pid) for pid in pool.pids]
        for _ in range(5):
            again = SharedArray.create((30, 2), np.int64)
            pool.try_map([(0, 10, False), (10, 20, False), (20, 30, False)], again)
            again.close()
        assert [_open_fds(pid) for pid in pool.pids] == before
        for pid in pool.pids:
            with open(f"/proc/{pid}/maps") as maps:
                assert "kmerdb-shared" not in maps.read()
        # an error comes back typed, and the pool serves on
        failed = SharedArray.create((30, 2), np.int64)
        with pytest.raises(kmerdb.InvalidParameterError, match="refused after writing"):
            pool.try_map([(0, 10, False), (10, 20, True), (20, 30, False)], failed)
        failed.close()
        assert [r for r in pool.try_map([(0, 1, False), (1, 2, False)], SharedArray.create((2, 2), np.int64))] == [1, 1]
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no anonymous memory files here")
def test_a_private_array_is_private_to_each_process():
    shared = SharedArray.create((4, 512), np.int64)
    shared.array[:] = 7
    rows = shared.private()
    pid = os.fork()
    if pid == 0:  # the child's writes stay its own
        rows[:] = 1
        os._exit(0 if (rows == 1).all() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert (rows == 7).all()
    rows[0, 0] = 3  # and the array is writable, as any
    assert rows[0, 0] == 3 and rows.shape == (4, 512)


def test_an_empty_shared_array_is_none():
    assert SharedArray.create((0, 5), np.int64) is None
    assert SharedArray.create((5, 0), np.int64) is None


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no anonymous memory files here")
def test_a_shared_array_of_the_wrong_size_is_refused_and_the_pool_serves_on():
    pool = QueryPool(_fill, 1, owner=None)
    try:
        shared = SharedArray.create((4, 2), np.int64)
        shared.shape = (8, 2)  # the task claims more rows than the file holds
        with pytest.raises(WorkerError, match="shared array of 64 bytes"):
            pool.try_map([(0, 0, False), (0, 0, False)], shared)
        shared.close()
        fine = SharedArray.create((4, 2), np.int64)
        assert pool.try_map([(0, 2, False), (2, 4, False)], fine) == [2, 2]
        assert fine.private()[:, 0].tolist() == [0, 1, 2, 3]
        assert not pool.broken
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no anonymous memory files here")
def test_a_private_array_is_a_copy_where_no_mapping_can_be_made(monkeypatch):
    import mmap

    from kmerdb.query import pool as pool_module

    shared = SharedArray.create((3, 4), np.int64)
    shared.array[:] = np.arange(12).reshape(3, 4)
    real_mmap = mmap.mmap

    def refuse_private(*args, **kwargs):
        if kwargs.get("flags") == mmap.MAP_PRIVATE:
            raise OSError(12, "Cannot allocate memory")
        return real_mmap(*args, **kwargs)

    monkeypatch.setattr(pool_module.mmap, "mmap", refuse_private)
    rows = shared.private()
    assert rows.tolist() == np.arange(12).reshape(3, 4).tolist()
    assert rows.flags.owndata and shared.fd == -1
