"""Executors: every kind runs the same tasks to the same results, and fails cleanly."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest

import kmerdb
from kmerdb.engine.executor import DaskExecutor, ProcessExecutor, SerialExecutor, open_executor


@dataclass(frozen=True)
class _Ctx:
    base: int


def _square_plus(ctx: _Ctx, x: int) -> tuple[int, int]:
    return x, x * x + ctx.base


def _fails(ctx: _Ctx, x: int) -> int:
    if x == 3:
        raise kmerdb.InvalidParameterError("x", x, "refused in a task")
    if x == 4:
        raise ZeroDivisionError("boom")
    return x


def _dies(ctx: _Ctx, x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def _expected(n: int, base: int) -> dict[int, int]:
    return {x: x * x + base for x in range(n)}


@pytest.mark.parametrize("make", [SerialExecutor, lambda: ProcessExecutor(2, "fork"), lambda: ProcessExecutor(2, "spawn")])
def test_every_executor_gives_the_same_results(make):
    with make() as ex:
        got = dict(ex.map(_square_plus, _Ctx(7), ((x,) for x in range(25)), window=3))
        again = dict(ex.map(_square_plus, _Ctx(1), [(x,) for x in range(5)]))
    assert got == _expected(25, 7)
    assert again == _expected(5, 1)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_failing_task_raises_its_error_or_a_worker_error(method):
    with ProcessExecutor(2, method) as ex, pytest.raises(kmerdb.InvalidParameterError, match="refused in a task"):
        list(ex.map(_fails, _Ctx(0), [(x,) for x in range(4)]))
    with ProcessExecutor(2, method) as ex, pytest.raises(kmerdb.WorkerError, match="ZeroDivisionError"):
        list(ex.map(_fails, _Ctx(0), [(4,)]))


def test_a_killed_worker_fails_the_map_instead_of_hanging():
    with ProcessExecutor(2, "fork") as ex, pytest.raises(kmerdb.WorkerError, match="died"):
        list(ex.map(_dies, _Ctx(0), [(x,) for x in range(6)]))


def test_open_executor_picks_by_threads_and_tasks():
    assert isinstance(open_executor(1), SerialExecutor)
    assert isinstance(open_executor(4, n_tasks=1), SerialExecutor)
    ex = open_executor(2)
    assert isinstance(ex, ProcessExecutor) and ex.n_workers == 2
    with pytest.raises(kmerdb.InvalidParameterError, match="threads"):
        open_executor(0)
    with pytest.raises(kmerdb.InvalidParameterError, match="scheduler"):
        open_executor(2, scheduler=12)


def test_dask_executor_on_a_local_cluster(dask_client):
    with open_executor(scheduler=dask_client) as ex:
        assert isinstance(ex, DaskExecutor) and ex.n_workers == 2
        assert dict(ex.map(_square_plus, _Ctx(3), ((x,) for x in range(20)), window=4)) == _expected(20, 3)
        with pytest.raises(kmerdb.InvalidParameterError, match="refused in a task"):
            list(ex.map(_fails, _Ctx(0), [(x,) for x in range(4)]))
    # a client passed in stays open for its owner
    assert dask_client.status == "running"
    with open_executor(scheduler=dask_client.scheduler.address) as ex:
        assert dict(ex.map(_square_plus, _Ctx(0), [(2,)])) == {2: 4}


def test_a_worker_dead_before_the_next_task_is_queued_is_a_worker_error():
    ex = ProcessExecutor(2, "fork")

    def tasks():
        yield (2,)  # kills its worker
        pool = ex._pool
        while pool is not None and not pool._broken:  # the pool has seen the death
            time.sleep(0.01)
        yield (3,)  # queued on a broken pool

    with ex, pytest.raises(kmerdb.WorkerError, match="died"):
        list(ex.map(_dies, _Ctx(0), tasks(), window=2))
