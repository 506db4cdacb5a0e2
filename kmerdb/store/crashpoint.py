"""Named crash points, for testing crash safety.  Inert unless ``KMERDB_CRASH_AT`` is set.

``KMERDB_CRASH_AT=<name>[:<n>]`` makes the ``n``-th time (default the first) a process
reaches the point called ``<name>`` kill it with SIGKILL, as ``kill -9`` would.  When the
process, or its parent, leads its process group (a writer started in its own session and
the worker processes it forked), the whole group is killed, so that a crash inside a
worker takes the writer down with it.  Counting is per process.

The points are listed in ``docs/transactions.md``; ``tests/ops/test_crash.py`` kills a writer
at each of them and checks that the database is intact.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crashpoint", "ENV"]

ENV = "KMERDB_CRASH_AT"

_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Die here with SIGKILL if ``KMERDB_CRASH_AT`` names this point (and this is its n-th hit)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != int(nth or 1):
        return
    pgid = os.getpgid(0)
    if pgid in (os.getpid(), os.getppid()):
        os.killpg(pgid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
