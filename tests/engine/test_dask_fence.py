"""Dask workers are fenced: the tasks of a killed client write nothing once a new writer starts.

A client process takes the writer lock and compacts on a Dask cluster; its tasks are held at a
point (before they write anything, or once a layer file is written under its temporary name)
and the client is killed (SIGKILL) there.  Dask cannot stop the running tasks.  A new writer then removes a genome and
compacts, which writes files of the very same names (same layer ids, same generation) with
other contents, and commits.  Only then are the dead client's tasks let go: each must be refused
(``FencedError``) and leave nothing, and the new generation must be exactly what the new
writer wrote.

The cluster runs in this process (``processes=False``) so that the test can hold the tasks
at that point; the client is a real process of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dbcheck
import numpy as np
import pytest

import kmerdb
import kmerdb.store.storage as storage
from kmerdb.errors import FencedError
from kmerdb.ops import compact
from kmerdb.ops.maintenance import data_files, verify

distributed = pytest.importorskip("distributed")

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ROOT = FIXTURES.parent


@pytest.fixture
def cluster() -> Iterator:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=":0"
    ) as local:
        yield local


class HeldTasks:
    """Holds every fenced task (a task sent by a writer) at crash point ``point``."""

    def __init__(self, point: str) -> None:
        self.point = point
        self.reached = threading.Semaphore(0)
        self.n_reached = 0
        self.gate = threading.Event()
        self.fenced_off: list[str] = []
        self.lock = threading.Lock()

    def crashpoint(self, name: str) -> None:
        if name == self.point and storage.fence_tokens():
            with self.lock:
                self.n_reached += 1
            self.reached.release()
            self.gate.wait(120)

    @contextmanager
    def write_guard(self, real, root: str, full: str) -> Iterator[None]:
        try:
            with real(root, full):
                yield
        except FencedError:
            with self.lock:
                self.fenced_off.append(full)
            raise


def _busy(cluster) -> int:
    return sum(w.state.executing_count for w in cluster.workers.values())


@pytest.mark.parametrize("point", ["compact.rows", "save.tmp"])
def test_the_tasks_of_a_killed_client_are_fenced_off_by_the_next_writer(tmp_path, cluster, monkeypatch, point):
    path = tmp_path / "db.kmerdb"
    kmerdb.build(path, {"A": [str(FIXTURES / "genome_a.fa")], "B": [str(FIXTURES / "genome_b.fa.gz")]},
                 k=15, partitions=4, threads=1)
    with kmerdb.open(path, mode="a") as db, db.transaction():
        db.append_genome("C", [str(FIXTURES / "genome_c.fq")], threads=1)  # two layers a partition

    held = HeldTasks(point)
    real_guard = storage.write_guard
    monkeypatch.setattr(storage, "crashpoint", held.crashpoint)
    monkeypatch.setattr(compact, "crashpoint", held.crashpoint)
    monkeypatch.setattr(storage, "write_guard", lambda root, full: held.write_guard(real_guard, root, full))

    client_code = (
        "import sys, kmerdb\n"
        "db = kmerdb.open(sys.argv[1], mode='a')\n"
        "txn = db.transaction()\n"
        "db.compact(scheduler=sys.argv[2])\n"
        "txn.commit()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    dead = subprocess.Popen([sys.executable, "-c", client_code, str(path), cluster.scheduler_address], env=env)
    try:
        # both worker threads are in the dead-to-be client's tasks, held at the point
        for _ in range(2):
            assert held.reached.acquire(timeout=120), "the client's tasks never started"
        tmp_files = [f for f in data_files(str(path)) if ".tmp-" in f]
        assert len(tmp_files) == (2 if point == "save.tmp" else 0)
    finally:
        dead.send_signal(signal.SIGKILL)
        dead.wait()

    # the next writer: another operation whose files have the same names, committed
    with kmerdb.open(path, mode="a") as db:
        with db.transaction():
            db.remove_genome("C")
            db.compact(threads=1)
        generation = db.generation
    assert not [f for f in data_files(str(path)) if ".tmp-" in f]  # its recovery removed them
    expected = dbcheck.dump(path)

    # now the dead client's tasks go on: each one is refused at its next create or rename
    held.gate.set()
    deadline = time.monotonic() + 60
    while (len(held.fenced_off) < held.n_reached or _busy(cluster)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _busy(cluster)

    with kmerdb.open(path) as db:
        assert db.generation == generation and db.genomes == ("A", "B")
    # not one file of the new generation was replaced
    after = dbcheck.dump(path)
    assert after[0] == expected[0] and after[3] == expected[3]
    assert np.array_equal(after[1], expected[1]) and np.array_equal(after[2], expected[2])
    assert verify(path, threads=1).ok
    assert set(data_files(str(path))) <= dbcheck.named_files(path)  # and none was added
    assert len(held.fenced_off) >= 2  # each held task was refused
