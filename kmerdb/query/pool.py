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

A task's result comes back through its worker's pipe, pickled.  A large answer (a query's
sequences x genomes hits: 80 MB for 10,000 reads over 1,000 genomes) would take as long to
pass that way as to compute, so the caller may give the tasks a :class:`SharedArray` that
every worker writes its part of in place: an anonymous memory file (``memfd``) whose
descriptor goes to the workers with the task.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing import reduction

import numpy as np

from kmerdb.errors import KmerDBError, WorkerError
from kmerdb.store.lock import forget_inherited

__all__ = ["QueryPool", "SharedArray"]


class SharedArray:
    """An array in an anonymous memory file, mapped shared: what forked workers write into it
    the caller sees, with no copy.

    Made by :meth:`create` in the caller, opened by :meth:`attach` in a worker from the
    descriptor the pool sends it.  The memory lives as long as a mapping of it; :meth:`private`
    hands the contents on as an ordinary array.
    """

    def __init__(self, fd: int, shape: tuple[int, ...], dtype: np.dtype, mapping: mmap.mmap) -> None:
        self.fd = fd
        self.shape = shape
        self.dtype = dtype
        self._mapping = mapping
        self.array: np.ndarray = np.frombuffer(mapping, dtype=dtype).reshape(shape)

    @property
    def spec(self) -> tuple[tuple[int, ...], str]:
        """Shape and dtype, as a worker needs them to map the same array."""
        return self.shape, self.dtype.str

    @classmethod
    def create(cls, shape: tuple[int, ...], dtype: np.dtype | type) -> SharedArray | None:
        """A new array of zeros, or None where there is none to be had: the platform has no
        anonymous memory files, the process no descriptor to spare, or the array would be empty
        (the caller then passes results the usual way)."""
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if nbytes <= 0 or not hasattr(os, "memfd_create"):
            return None
        try:
            fd = os.memfd_create("kmerdb-shared", os.MFD_CLOEXEC)
        except OSError:
            return None
        try:
            os.ftruncate(fd, nbytes)
            mapping = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, tuple(shape), dt, mapping)

    @classmethod
    def attach(cls, fd: int, spec: tuple[tuple[int, ...], str]) -> SharedArray:
        """The array of a descriptor received from the caller (this object then owns it)."""
        shape, dtype = spec
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        try:
            if os.fstat(fd).st_size != nbytes:
                raise WorkerError(f"a shared array of {os.fstat(fd).st_size} bytes, the task says {nbytes}")
            mapping = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, tuple(shape), dt, mapping)

    def private(self) -> np.ndarray:
        """The array's contents as private memory, as any array's: a copy-on-write mapping of
        the same file (no copy until a page is written; a process forked later gets its own
        copy of a page it writes, where the shared mapping would pass writes both ways), or a
        copy where no mapping can be made.  Then :meth:`close`."""
        try:
            mapping = mmap.mmap(self.fd, self.array.nbytes, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            out = np.frombuffer(mapping, dtype=self.dtype).reshape(self.shape)
        except OSError:  # no mapping to be had: a copy, then
            out = self.array.copy()
        self.close()
        return out

    def close(self) -> None:
        """Close the descriptor and, unless an array still refers to it, the mapping."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.array = np.zeros(0, dtype=self.dtype)
        with contextlib.suppress(BufferError):  # a view still held: the mapping goes with it
            self._mapping.close()


def _serve(conn, run: Callable) -> None:
    """Worker loop: run each task received, send back ``(ok, result or exception)``.

    A message is ``(task, spec)``; with a spec (a :class:`SharedArray`'s), the array's
    descriptor follows and ``run`` gets the array after the task's arguments."""
    forget_inherited()  # a worker outlives transactions: it must not keep their lock files
    # Ctrl-C is the parent's to handle (a terminal sends it to the whole group); the
    # worker ends when the parent closes the pool or goes away
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
            if message is None:
                return
            task, spec = message
            fd = reduction.recv_handle(conn) if spec is not None else -1
        except (EOFError, OSError):
            return  # the handle is gone
        shared = None
        try:
            if spec is not None:
                shared = SharedArray.attach(fd, spec)  # closes the descriptor if it cannot
            reply = (True, run(*task, shared.array) if shared is not None else run(*task))
        except KmerDBError as exc:
            reply = (False, exc)
        except BaseException as exc:
            reply = (False, WorkerError(f"query worker failed: {type(exc).__name__}: {exc}"))
        finally:
            if shared is not None:
                shared.close()
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

    def try_map(self, tasks: list[tuple], shared: SharedArray | None = None) -> list | None:
        """Results of ``run(*task)`` for each task, in order, or None if the pool is busy.

        The first task runs in the calling thread, the others (at most ``n_workers``) in
        the workers, all at once.  With ``shared``, each task runs as ``run(*task, array)``,
        ``array`` the same memory in every process (``shared.array`` in the caller).

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
            for conn, proc, task in zip(self._conns, self._procs, tasks[1:]):
                try:
                    conn.send((task, shared.spec if shared is not None else None))
                    if shared is not None:
                        reduction.send_handle(conn, shared.fd, proc.pid)
                except (EOFError, OSError) as exc:
                    self.broken = True
                    raise WorkerError(f"a query worker process has ended ({exc})") from None
                sent.append(conn)
            replies = []
            try:
                replies.append((True, self.run(*tasks[0], shared.array) if shared is not None else self.run(*tasks[0])))
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
