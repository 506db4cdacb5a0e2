"""Forked worker pools: how kmerdb runs work in parallel processes.

Workers are forked so they inherit what the parent prepared (a module's state dict, open
spill files) without pickling it; tasks then carry only small arguments.  Every pool is
closed on success and terminated on failure, and the state is cleared either way.  A
worker first drops its copies of the parent's lock files (see :func:`kmerdb.lock.forget_inherited`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from kmerdb.store.lock import forget_inherited

__all__ = ["forked_pool", "imap"]


@contextmanager
def forked_pool(threads: int, n_tasks: int, state: dict, /, **values) -> Iterator[object]:
    """Set ``state`` for the workers, then fork ``min(threads, n_tasks)`` of them.

    Yields None instead of a pool when one process would do: callers then run their tasks
    in this process (see :func:`imap`).
    """
    state.clear()
    state.update(values)
    pool = None
    try:
        if threads > 1 and n_tasks > 1:
            pool = multiprocessing.get_context("fork").Pool(min(threads, n_tasks), initializer=forget_inherited)
        yield pool
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        state.clear()


def imap(pool, fn: Callable, tasks: Iterable) -> Iterator:
    """Results of ``fn`` over ``tasks`` as they come: from the pool, or here without one."""
    return pool.imap_unordered(fn, tasks, chunksize=1) if pool is not None else map(fn, tasks)
