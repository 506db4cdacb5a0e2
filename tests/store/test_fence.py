"""Fencing: a task writes into a database only while its writer's epoch is the database's.

Every writer puts a new token into ``locks/epoch`` when it takes the writer lock; a task runs
under the tokens of the writer that sent it (``fenced``) and creates or renames a file only
under a shared flock of ``locks/epoch`` that still holds one of them.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kmerdb.errors import FencedError
from kmerdb.ops.spill import SpillPool
from kmerdb.store.lock import LOCKS_DIR, WriterLock, held_writer_tokens
from kmerdb.store.storage import EPOCH_FILE, fenced, save_array


@pytest.fixture
def root(tmp_path) -> str:
    path = tmp_path / "db"
    (path / "data").mkdir(parents=True)
    (path / "spill").mkdir()
    return str(path)


def test_every_writer_takes_a_new_epoch(root):
    tokens = []
    for _ in range(3):
        lock = WriterLock(root).acquire()
        assert held_writer_tokens() == (lock.token,)
        assert Path(root, EPOCH_FILE).read_text().strip() == lock.token
        tokens.append(lock.token)
        lock.release()
    assert len(set(tokens)) == 3
    assert held_writer_tokens() == ()


def test_a_task_of_the_current_writer_writes(root):
    lock = WriterLock(root).acquire()
    try:
        with fenced(held_writer_tokens()):
            save_array(root, "data/p00000/a.npy", np.arange(4))
            pool = SpillPool(os.path.join(root, "spill"), 1, name="chunk-0")
            pool.write(b"abc")
            pool.close()
    finally:
        lock.release()
    assert np.array_equal(np.load(os.path.join(root, "data/p00000/a.npy")), np.arange(4))
    assert os.listdir(os.path.join(root, "spill")) == ["chunk-0-0.spill"]


def test_a_task_of_an_earlier_writer_writes_nothing(root):
    old = WriterLock(root).acquire()
    stale = (old.token,)
    old.release()
    new = WriterLock(root).acquire()
    try:
        with fenced(stale):
            with pytest.raises(FencedError, match=r"a\.npy: not written"):
                save_array(root, "data/p00000/a.npy", np.arange(4))
            with pytest.raises(FencedError):
                SpillPool(os.path.join(root, "spill"), 1, name="chunk-0")
    finally:
        new.release()
    assert os.listdir(os.path.join(root, "spill")) == []
    assert not os.path.exists(os.path.join(root, "data", "p00000"))  # not even its folder


def test_a_task_fenced_off_between_its_write_and_its_rename_leaves_nothing(root, monkeypatch):
    """The new writer starts while the task has written its temporary file: the rename is refused."""
    import kmerdb.store.storage as storage

    old = WriterLock(root).acquire()
    stale = (old.token,)
    real_crashpoint = storage.crashpoint

    def new_writer_starts(name: str) -> None:
        if name == "save.tmp":
            old.release()
            WriterLock(root).acquire().release()
        real_crashpoint(name)

    monkeypatch.setattr(storage, "crashpoint", new_writer_starts)
    with fenced(stale), pytest.raises(FencedError):
        save_array(root, "data/p00000/a.npy", np.arange(4))
    assert os.listdir(os.path.join(root, "data", "p00000")) == []  # neither the file nor its temporary


def test_a_new_writer_waits_for_a_rename_in_progress(root, monkeypatch):
    """The shared flock of a task spans its check and its rename: the new epoch comes after."""
    import kmerdb.store.storage as storage

    old = WriterLock(root).acquire()
    stale = (old.token,)
    in_rename, go_on = threading.Event(), threading.Event()
    real_rename = storage.rename_noreplace

    def slow_rename(folder: int, src: str, dst: str) -> None:
        in_rename.set()
        go_on.wait(10)
        real_rename(folder, src, dst)

    monkeypatch.setattr(storage, "rename_noreplace", slow_rename)
    task = threading.Thread(target=lambda: _fenced_save(root, stale))
    task.start()
    assert in_rename.wait(10)
    old.release()
    started = threading.Event()

    def new_writer() -> None:
        WriterLock(root).acquire().release()
        started.set()

    writer = threading.Thread(target=new_writer)
    writer.start()
    time.sleep(0.3)
    assert not started.is_set()  # blocked on the epoch file until the rename is done
    go_on.set()
    task.join(10)
    writer.join(10)
    assert started.is_set()
    # the stale file was renamed before the new epoch: it is there for the new writer's recovery
    assert os.listdir(os.path.join(root, "data", "p00000")) == ["a.npy"]


def _fenced_save(root: str, tokens: tuple[str, ...]) -> None:
    with fenced(tokens):
        save_array(root, "data/p00000/a.npy", np.arange(4))


def test_a_folder_no_writer_ever_locked_is_not_fenced(root):
    """A merge's staging folder has no writer lock: its tasks write whatever tokens they carry."""
    assert not os.path.exists(os.path.join(root, LOCKS_DIR))
    with fenced(("someone-else",)):
        save_array(root, "data/p00000/a.npy", np.arange(4))
    assert os.path.exists(os.path.join(root, "data", "p00000", "a.npy"))
