"""After a task fails on Dask, no task of the map is still running when the error is raised.

The caller removes what the tasks wrote as soon as the error reaches it; a task still
running on a worker (Dask cannot stop one) would write after that clean-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import kmerdb
from kmerdb.engine.executor import open_executor


@dataclass(frozen=True)
class _Folder:
    path: str


def _fail_first_finish_later(ctx: _Folder, x: int) -> int:
    if x == 0:
        raise kmerdb.InvalidParameterError("x", x, "refused in a task")
    time.sleep(0.5)  # so that it is still running when task 0 fails (not a timed assertion)
    Path(ctx.path, f"{x}.done").write_text("written by a task")
    return x


def test_tasks_in_flight_end_before_the_failure_is_raised(dask_client, tmp_path):
    with open_executor(scheduler=dask_client) as ex, pytest.raises(kmerdb.InvalidParameterError):
        list(ex.map(_fail_first_finish_later, _Folder(str(tmp_path)), [(0,), (1,)], window=2))
    assert (tmp_path / "1.done").exists()
