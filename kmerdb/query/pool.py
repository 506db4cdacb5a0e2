"""Worker processes that answer the queries of one database handle in parallel.

A query is thousands of numpy calls; each releases the GIL only while it runs, so
threads spend their time handing the GIL over and scale poorly (measured 1.1-1.3x on
two cores).  Processes scale, but a fork per query makes the children pay a
copy-on-write fault for every page they write (measured: +0.1 s of system time per
child for 2.4M k-mers).  So a handle forks its workers once, on the first query that
asks for more than one thread, and keeps them: each answers from the snapshot it
inherited, with a heap it has already warmed.  The handle ends them when its snapshot
changes (refresh, commit) and when it is closed; a worker also ends by itself when its
handle is gone (its pipe closes).

A pool serves one query at a time; a query that finds it busy (another thread of the
same handle is using it) runs in its own thread instead of waiting.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable

from kmerdb.errors import KmerDBError, WorkerError
from kmerdb.store.lock import forget_inherited

__all__ = ["QueryPool"]


def _serve(conn, run: Callable) -> None:
    """Worker loop: run each task received, send back ``(ok, result or exception)``."""
    forget_inherited()  # a worker outlives transactions: it must not keep their lock files
    # Ctrl-C is the parent's to handle (a terminal sends it to the whole group); the
    # worker ends when the parent closes the pool or goes away
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the handle is gone
        if task is None:
            return
        try:
            reply = (True, run(*task))
        except KmerDBError as exc:
            reply = (False, exc)
        except BaseException as exc:
            reply = (False, WorkerError(f"query worker failed: {type(exc).__name__}: {exc}"))
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


class QueryPool:
    """``n_workers`` forked processes running ``run`` on the tasks given to :meth:`map`.

    Parameters
    ----------
    run : callable
        What a task runs; the workers call their inherited copy of it.
    n_workers : int
        Worker processes (the calling thread runs one more share itself).
    owner : object
        What the workers were forked from (the handle's opened layers): the handle
        replaces the pool when it no longer reads from it.
    """

    def __init__(self, run: Callable, n_workers: int, owner: object) -> None:
        self.run = run
        self.owner = owner
        self.n_workers = n_workers
        self.broken = False
        self._busy = threading.Lock()
        ctx = multiprocessing.get_context("fork")
        self._conns, self._procs = [], []
        try:
            for _ in range(n_workers):
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(theirs, run), daemon=True, name="kmerdb-query")
                proc.start()
                theirs.close()
                self._conns.append(mine)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    def try_map(self, tasks: list[tuple]) -> list | None:
        """Results of ``run(*task)`` for each task, in order, or None if the pool is busy.

        The first task runs in the calling thread, the others (at most ``n_workers``) in
        the workers, all at once.

        Raises
        ------
        KmerDBError
            What a task raised (the first one, in task order).
        WorkerError
            A worker died; the pool is then broken and should be replaced.
        """
        if len(tasks) > self.n_workers + 1:
            raise ValueError(f"{len(tasks)} tasks for {self.n_workers} workers and the caller")
        if self.broken or not self._busy.acquire(blocking=False):
            return None
        try:
            sent = []
            for conn, task in zip(self._conns, tasks[1:]):
                try:
                    conn.send(task)
                except (EOFError, OSError) as exc:
                    self.broken = True
                    raise WorkerError(f"a query worker process has ended ({exc})") from None
                sent.append(conn)
            replies = []
            try:
                replies.append((True, self.run(*tasks[0])))
            except KmerDBError as exc:
                replies.append((False, exc))
            except BaseException:
                self.broken = True  # the workers' replies stay unread: this pool cannot serve again
                raise
            for conn in sent:  # always drain: a reply left behind would answer the next query
                try:
                    replies.append(conn.recv())
                except (EOFError, OSError):
                    self.broken = True
                    replies.append((False, WorkerError("a query worker process ended during a query")))
            for ok, value in replies:
                if not ok:
                    raise value
            return [value for _, value in replies]
        finally:
            self._busy.release()

    def close(self) -> None:
        """End the workers (they finish the task they are on)."""
        self.broken = True
        for conn in self._conns:
            with contextlib.suppress(EOFError, OSError):  # a worker already gone needs no goodbye
                conn.send(None)
            conn.close()
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        self._conns, self._procs = [], []

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [proc.pid for proc in self._procs if proc.pid is not None]
