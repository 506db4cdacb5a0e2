"""Test hook, loaded by a writer started with this folder on PYTHONPATH.

In worker processes (any process but the first one that imports it), ``os.replace`` first
leaves a marker file in ``KMERDB_SLOW_MARKS`` and then sleeps, so that a test can kill
the writer's main process while its workers are in the middle of writing data files.
"""

import os
import time

_MAIN = "KMERDB_SLOW_MAIN"
os.environ.setdefault(_MAIN, str(os.getpid()))
_replace = os.replace


def _slow_replace(src, dst, *args, **kwargs):
    if str(os.getpid()) != os.environ[_MAIN] and os.environ.get("KMERDB_SLOW_MARKS"):
        with open(os.path.join(os.environ["KMERDB_SLOW_MARKS"], f"{os.getpid()}.worker"), "w"):
            pass
        time.sleep(0.5)
    return _replace(src, dst, *args, **kwargs)


os.replace = _slow_replace
