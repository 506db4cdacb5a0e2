"""Executors: how every parallel operation runs its tasks.

A task is a plain module-level function ``fn(context, *args)``: ``context`` is a frozen,
picklable record of everything the operation shares (paths, config, snapshot records),
``args`` are the task's own small arguments (a partition number, a chunk of input).
No task reads module-global state, so the same task runs

- here, one after the other (:class:`SerialExecutor`, ``threads=1``);
- in local worker processes, forked where the platform has ``fork``, spawned
  otherwise (:class:`ProcessExecutor`);
- on a Dask cluster (:class:`DaskExecutor`, ``scheduler=ADDRESS`` or a
  ``distributed.Client``); ``dask[distributed]`` is an optional extra.

Tasks return small results (records of the files they wrote, statistics); the caller
alone commits.  Tasks in other processes run fenced (:func:`kmerdb.store.storage.fenced`):
they carry the epoch tokens of the writer locks their caller holds and write a file only
while the database still names one of them, so that the tasks of a writer that died (a
Dask task cannot be stopped) write nothing once the next writer has started.  A task that raises fails the whole map: the tasks not yet started are
cancelled and the error is raised in the caller, a :class:`~kmerdb.errors.KmerDBError`
as it was raised, anything else and a worker that died as
:class:`~kmerdb.errors.WorkerError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from kmerdb.errors import DiskFullError, InvalidParameterError, KmerDBError, WorkerError
from kmerdb.params import resolve_threads
from kmerdb.store.lock import forget_inherited, held_writer_roots, held_writer_tokens, register_worker
from kmerdb.store.storage import fenced

__all__ = [
    "Executor",
    "SerialExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "START_METHOD_ENV",
    "open_executor",
]

log = logging.getLogger(__name__)

C = TypeVar("C")
R = TypeVar("R")

#: Environment variable that picks the start method of local worker processes
#: (``fork`` or ``spawn``); by default fork where the platform has it.
START_METHOD_ENV = "KMERDB_START_METHOD"


class Executor(ABC):
    """Runs the tasks of one operation.

    Use it as a context manager: the workers exist between ``__enter__`` and ``__exit__``
    (a Dask client made from an address is closed there too).
    """

    #: How many tasks may run at once; operations size their memory budgets by it.
    n_workers: int = 1
    #: Whether tasks run in other processes (then they cannot share open files).
    remote: bool = False

    @abstractmethod
    def map(
        self, fn: Callable[..., R], context: Any, tasks: Iterable[tuple], *, window: int | None = None
    ) -> Iterator[R]:
        """Run ``fn(context, *task)`` for every task; yield results as they complete.

        Parameters
        ----------
        fn : callable
            A module-level function (it is pickled by reference).
        context : frozen dataclass
            Shared by every task; sent to each worker once where the executor can.
        tasks : iterable of tuple
            Each task's own arguments.  Consumed lazily: at most ``window`` tasks are
            in flight, so an operation can stream its input.
        window : int, optional
            Tasks in flight at most (default: twice the workers).

        Yields
        ------
        The results, in completion order (tasks that need their order return their key).
        """

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs every task here, one after the other, as it is asked for."""

    def map(self, fn, context, tasks, *, window=None):
        for task in tasks:
            yield fn(context, *task)

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "SerialExecutor()"


def _worker_start(parent: int, writer_roots: tuple[str, ...]) -> None:
    """Initializer of a local worker process.

    The worker dies with its parent, drops the parent's lock files and, when the parent
    is a writer, registers under the database's locks so that the next writer can wait
    for it (see :mod:`kmerdb.store.lock`).
    """
    _die_with_parent(parent)
    # a forked worker shares its parent's lock files: drop them (see forget_inherited)
    forget_inherited()
    register_worker(writer_roots)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; elsewhere a no-op).

    Without it a worker of a killed writer runs on, writing files after the next
    writer has cleaned up.  A parent that died before the request was made is caught
    by comparing the parent's PID afterwards.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def _call(fn: Callable[..., R], context: Any, task: tuple, tokens: tuple[str, ...] = ()) -> R:
    with fenced(tokens):
        return fn(context, *task)


def _bounded(submit: Callable[[tuple], Any], tasks: Iterable[tuple], window: int, wait_some, result_of):
    """Keep at most ``window`` submitted tasks; yield results as they complete."""
    pending: set = set()
    source = iter(tasks)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            task = next(source, None)
            if task is None:
                exhausted = True
                break
            pending.add(submit(task))
        if not pending:
            return
        done, pending = wait_some(pending)
        for future in done:
            yield result_of(future)


_DIED = "a worker process died (killed, or out of memory); nothing was committed"


class ProcessExecutor(Executor):
    """Worker processes on this machine.

    Parameters
    ----------
    n_workers : int
        Processes to start.
    start_method : {"fork", "spawn"}, optional
        Fork where the platform has it (workers start at once and share the parent's
        memory pages), else spawn; ``KMERDB_START_METHOD`` overrides the default.
    """

    remote = True

    def __init__(self, n_workers: int, start_method: str | None = None) -> None:
        method = start_method or os.environ.get(START_METHOD_ENV) or _default_start_method()
        if method not in multiprocessing.get_all_start_methods():
            raise InvalidParameterError(START_METHOD_ENV, method, "this platform cannot start workers that way")
        self.n_workers = n_workers
        self.start_method = method
        self._pool: ProcessPoolExecutor | None = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.n_workers,
                mp_context=multiprocessing.get_context(self.start_method),
                initializer=_worker_start,
                initargs=(os.getpid(), held_writer_roots()),
            )
        return self._pool

    def map(self, fn, context, tasks, *, window=None):
        pool = self._ensure()
        tokens = held_writer_tokens()  # the tasks write only while their writer is the writer

        def wait_some(pending):
            return wait(pending, return_when=FIRST_COMPLETED)

        def submit(task: tuple) -> Future:
            try:
                return pool.submit(_call, fn, context, task, tokens)
            except BrokenProcessPool:  # a worker died before this task could be queued
                raise WorkerError(_DIED) from None

        def result_of(future: Future):
            try:
                return future.result()
            except BrokenProcessPool:
                raise WorkerError(_DIED) from None
            except KmerDBError:
                raise
            except Exception as exc:
                full = DiskFullError.from_error(exc)
                if full is not None:
                    raise full from None
                raise WorkerError(f"a worker failed: {type(exc).__name__}: {exc}") from exc

        try:
            yield from _bounded(
                submit,
                tasks,
                window or 2 * self.n_workers,
                wait_some,
                result_of,
            )
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """After a failure: drop the queued tasks and end the workers now."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"ProcessExecutor({self.n_workers}, {self.start_method!r})"


def _default_start_method() -> str:
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client
        The scheduler's address (``tcp://host:8786``), or a client to use as it is.

    Notes
    -----
    Workers must see the database directory (and the inputs of a build) at the same
    path as the client.  Dask reruns the tasks of a worker that dies, up to its
    ``distributed.scheduler.allowed-failures`` (3 by default); a task that raises is not
    rerun and fails the operation, with nothing committed: the tasks already in flight
    (at most ``window``) are let to end first, since Dask cannot stop a running task.
    """

    remote = True

    def __init__(self, scheduler: Any) -> None:
        try:
            import distributed
        except ImportError:
            raise InvalidParameterError(
                "scheduler", scheduler, "needs the distributed extra: pip install 'kmerdb[distributed]'"
            ) from None
        self._distributed = distributed
        if isinstance(scheduler, distributed.Client):
            self.client, self._owned = scheduler, False
        elif isinstance(scheduler, str) and scheduler:
            try:
                self.client, self._owned = distributed.Client(scheduler, timeout="20s"), True
            except (OSError, TimeoutError) as exc:
                raise InvalidParameterError("scheduler", scheduler, f"cannot reach it ({exc})") from None
        else:
            raise InvalidParameterError("scheduler", scheduler, "expected an address or a distributed.Client")
        self.n_workers = max(1, sum(self.client.nthreads().values()))

    def map(self, fn, context, tasks, *, window=None):
        client = self.client
        # a key of its own (hash=False): a context equal to an earlier call's would otherwise
        # share that call's key, which the earlier call's cancel below may still be releasing
        ctx = client.scatter(context, broadcast=True, hash=False)
        # the epoch tokens of this writer: a task still running after this client died writes
        # nothing once a new writer has started (see kmerdb.store.storage.write_guard)
        tokens = held_writer_tokens()
        submitted: list = []

        def submit(task):
            future = client.submit(_dask_call, fn, tokens, ctx, *task, pure=False)
            submitted.append(future)
            return future

        def wait_some(pending):
            done, rest = self._distributed.wait(list(pending), return_when="FIRST_COMPLETED")
            return set(done), set(rest)

        def result_of(future):
            try:
                return future.result()
            except KmerDBError:
                raise
            except self._distributed.client.FutureCancelledError:
                raise WorkerError("a task was cancelled on the cluster; nothing was committed") from None
            except Exception as exc:
                if type(exc).__name__ == "KilledWorker":
                    raise WorkerError(f"workers died running a task: {exc}; nothing was committed") from None
                raise WorkerError(f"a task failed on the cluster: {type(exc).__name__}: {exc}") from exc

        try:
            yield from _bounded(submit, tasks, window or 2 * self.n_workers, wait_some, result_of)
        finally:
            # After a failure (or when the caller stops early) the tasks in flight are left to
            # end: a cancel does not stop a task running on a worker, and one still writing
            # after the caller has removed its files would leave them behind.  No more than
            # ``window`` tasks are ever in flight.
            self._distributed.wait([f for f in submitted if not f.done()])
            client.cancel([ctx])

    def close(self) -> None:
        if self._owned:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r})"


def _dask_call(fn: Callable[..., R], tokens: tuple[str, ...], context: Any, *args: Any) -> R:
    _heap_for_tasks()
    try:
        with fenced(tokens):
            return fn(context, *args)
    finally:
        _give_back()


def _libc() -> Any:
    return ctypes.CDLL(None)


def _heap_for_tasks() -> None:
    """Let glibc keep serving numpy temporaries from the heap while a task runs, in a Dask worker.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set to 64 KiB, which turns
    glibc's dynamic mmap threshold off and returns the top of the heap to the system after
    every free: every temporary above 128 KiB then became a fresh mapping, and every heap page
    was faulted in again and again.  Tasks took three times their CPU time (a build) and more
    (verify: 5.2 s against 1.5 s).  During a task the thresholds are where glibc's own rules take
    them (mmap above 32 MiB, trim above 64 MiB); after it, :func:`_give_back` trims the heap, so
    the worker's memory is returned as Dask asks.  A no-op where there is no ``mallopt``.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = _libc()
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)


def _give_back() -> None:
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters
_M_MMAP_THRESHOLD = -3


def open_executor(threads: int | None = None, scheduler: Any = None, n_tasks: int | None = None) -> Executor:
    """The executor an operation asked for.

    Parameters
    ----------
    threads : int, optional
        Local worker processes (default: all CPUs); 1 runs every task here.
    scheduler : str or distributed.Client, optional
        Run on this Dask cluster instead (``threads`` is then ignored).
    n_tasks : int, optional
        How many tasks the operation has, if known: no more workers than tasks start.

    Returns
    -------
    Executor
        To be used as a context manager.
    """
    if scheduler is not None:
        return DaskExecutor(scheduler)
    n = resolve_threads(threads)
    if n_tasks is not None:
        n = max(1, min(n, n_tasks))
    return SerialExecutor() if n == 1 else ProcessExecutor(n)
