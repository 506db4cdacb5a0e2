"""The executors every partition-parallel operation is tested on, and how a test asks for one."""

from __future__ import annotations

import pytest

from kmerdb.engine.executor import START_METHOD_ENV

#: serial (threads=1), forked processes, spawned processes, and the session's Dask cluster
EXECUTORS = ("serial", "fork", "spawn", "dask")


def executor_kwargs(where: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> dict:
    """The keyword arguments (``threads=`` or ``scheduler=``) that run an operation on ``where``."""
    if where == "serial":
        return {"threads": 1}
    if where in ("fork", "spawn"):
        monkeypatch.setenv(START_METHOD_ENV, where)
        return {"threads": 2}
    return {"scheduler": request.getfixturevalue("dask_client")}
