"""The query worker pool: tasks run in forked workers and the caller, errors come back typed."""

import os
import threading

import pytest

import kmerdb
from kmerdb.errors import WorkerError
from kmerdb.query.pool import QueryPool


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
