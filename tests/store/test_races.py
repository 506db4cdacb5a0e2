"""Symlink races: a folder of the database swapped for a symlink while kmerdb works in it.

Every file kmerdb opens, creates, renames or deletes under a database is reached one folder at
a time from a descriptor of the database directory (``kmerdb.store.storage.at_path``), so a
folder that becomes a symlink between any check and the open is refused, never followed.  Each
test makes the race deterministic: a wrapper of ``os.open`` (or ``os.unlink``) swaps a folder of
the database for a symlink to a folder outside it right before the call that would reach
through it, and records every descriptor that ends up outside.  The outside folder holds copies
of the swapped folder's files, so that following the symlink would have "worked".
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import kmerdb
from kmerdb.errors import CorruptDatabaseError
from kmerdb.ops.maintenance import data_files
from kmerdb.store.lock import WriterLock
from kmerdb.store.storage import load_array, save_array

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PARTITION = "p00000"


class Race:
    """Swaps ``db/<folder>`` for a symlink to ``outside`` the first time a watched call reaches it.

    The real folder is moved aside inside the database (``<folder>.real``); ``outside`` starts
    as a copy of it plus a sentinel, and must end as it started.
    """

    def __init__(self, db: Path, folder: str, outside: Path) -> None:
        self.db = db
        self.folder = db / folder
        self.outside = outside
        if self.folder.is_dir():
            shutil.copytree(self.folder, outside)
        else:
            outside.mkdir()
        (outside / "keep.txt").write_text("precious\n")
        self.before = self.snapshot()
        self.swapped = False
        self.touched_outside: list[str] = []

    def snapshot(self) -> dict[str, bytes]:
        return {name: (self.outside / name).read_bytes() for name in sorted(os.listdir(self.outside))}

    def swap(self) -> None:
        if not self.swapped:
            self.swapped = True
            os.rename(self.folder, f"{self.folder}.real")
            os.symlink(self.outside, self.folder)

    def note(self, fd: int) -> None:
        """Record a descriptor that leads outside the database."""
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.startswith(str(self.outside)):
            self.touched_outside.append(target)

    def check_outside_untouched(self) -> None:
        assert self.swapped, "the race was never run"
        assert not self.touched_outside, f"opened outside the database: {self.touched_outside}"
        assert self.snapshot() == self.before, "a file outside the database was created, changed or deleted"


def watch_open(monkeypatch, race: Race, when: Callable[[object], bool]) -> None:
    """Swap right before the first ``os.open`` whose path satisfies ``when``; note every open outside."""
    real_open = os.open

    def racing_open(path, flags, mode=0o777, *, dir_fd=None):
        if when(path):
            race.swap()
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        race.note(fd)
        return fd

    monkeypatch.setattr(os, "open", racing_open)


def _names(part: str) -> Callable[[object], bool]:
    """Matches an open of folder ``part`` itself (by descriptor) or of a path through it."""
    return lambda path: isinstance(path, str) and (path == part or f"/{part}/" in path)


def test_reading_a_layer_file_refuses_a_folder_swapped_before_the_open(db, tmp_path, monkeypatch):
    race = Race(db, f"data/{PARTITION}", tmp_path / "outside")
    watch_open(monkeypatch, race, _names(PARTITION))
    with pytest.raises(CorruptDatabaseError, match=rf"data/{PARTITION}: .*symlink"), kmerdb.open(db) as handle:
        handle.lookup(["ACGTACGTACGTACG"])
    race.check_outside_untouched()


def test_loading_one_data_file_refuses_a_swapped_folder(db, tmp_path, monkeypatch):
    with kmerdb.open(db) as handle:
        ref = next(r for r in handle.snapshot.all_files() if f"/{PARTITION}/" in r.path)
    race = Race(db, f"data/{PARTITION}", tmp_path / "outside")
    watch_open(monkeypatch, race, _names(PARTITION))
    with pytest.raises(CorruptDatabaseError, match="symlink"):
        load_array(str(db), ref)
    race.check_outside_untouched()


def test_writing_a_data_file_refuses_a_folder_swapped_before_the_create(db, tmp_path, monkeypatch):
    race = Race(db, f"data/{PARTITION}", tmp_path / "outside")
    watch_open(monkeypatch, race, _names(PARTITION))
    with pytest.raises(CorruptDatabaseError, match=rf"data/{PARTITION}: .*symlink"):
        save_array(str(db), f"data/{PARTITION}/L9999999.new.npy", np.arange(10))
    race.check_outside_untouched()
    assert not list((db / "data" / f"{PARTITION}.real").glob("L9999999*"))  # no temporary left either


def test_a_folder_swapped_between_writing_and_renaming_is_not_followed(db, tmp_path, monkeypatch):
    """Swapped at the last moment (after the temporary file, before its rename): the rename
    happens in the folder that was opened, never through the symlink."""
    import kmerdb.store.storage as storage

    race = Race(db, f"data/{PARTITION}", tmp_path / "outside")
    real_crashpoint = storage.crashpoint

    def swap_at(name: str) -> None:
        if name == "save.tmp":
            race.swap()
        real_crashpoint(name)

    monkeypatch.setattr(storage, "crashpoint", swap_at)
    save_array(str(db), f"data/{PARTITION}/L9999999.new.npy", np.arange(10))
    race.check_outside_untouched()
    assert np.array_equal(np.load(db / "data" / f"{PARTITION}.real" / "L9999999.new.npy"), np.arange(10))


def test_a_transaction_refuses_a_partition_folder_swapped_while_it_writes(db, tmp_path, monkeypatch):
    race = Race(db, f"data/{PARTITION}", tmp_path / "outside")
    with kmerdb.open(db, mode="a") as handle:
        watch_open(monkeypatch, race, lambda path: race.folder.exists() and _names(PARTITION)(path))
        with pytest.raises(CorruptDatabaseError, match="symlink"), handle.transaction():
            handle.append_genome("C", [str(FIXTURES / "genome_c.fq")], threads=1)
    race.check_outside_untouched()


@pytest.mark.parametrize("when", ["before the folder is opened", "right before the unlink"])
def test_vacuum_never_deletes_through_a_swapped_folder(db, tmp_path, monkeypatch, when):
    junk = f"data/{PARTITION}/L9999999.junk.npy"
    np.save(db / junk, np.arange(3))  # an unreferenced file: vacuum removes it
    race = Race(db, f"data/{PARTITION}", tmp_path / "outside")
    assert (race.outside / "L9999999.junk.npy").exists()  # the decoy a followed symlink would delete
    if when == "before the folder is opened":
        watch_open(monkeypatch, race, _names(PARTITION))
    else:
        real_unlink = os.unlink

        def racing_unlink(path, *, dir_fd=None):
            if str(path).endswith("L9999999.junk.npy"):
                race.swap()
            real_unlink(path, dir_fd=dir_fd)

        monkeypatch.setattr(os, "unlink", racing_unlink)
    kmerdb.vacuum(db)
    race.check_outside_untouched()
    if when == "right before the unlink":  # the file in the folder that was reached is gone
        assert not (db / "data" / f"{PARTITION}.real" / "L9999999.junk.npy").exists()
    os.unlink(db / "data" / PARTITION)
    os.rename(db / "data" / f"{PARTITION}.real", db / "data" / PARTITION)
    with kmerdb.open(db) as handle:  # the database itself is whole
        assert set(data_files(str(db))) >= {r.path for r in handle.snapshot.all_files()}


def test_the_writer_lock_refuses_a_locks_folder_swapped_after_its_check(db, tmp_path, monkeypatch):
    (db / "locks").mkdir(exist_ok=True)
    race = Race(db, "locks", tmp_path / "outside")
    # ``locks`` passes the writer's symlink check, then becomes a symlink before the lock file opens
    watch_open(monkeypatch, race, _names("locks"))
    with pytest.raises(CorruptDatabaseError, match=r"locks: .*symlink"):
        WriterLock(str(db)).acquire()
    race.check_outside_untouched()
