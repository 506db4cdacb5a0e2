"""Immutable data files: atomic ``.npy`` writes, checksums, memory-mapped loads.

Every data file is written once under a temporary name, fsync'd, renamed into
place and never modified again; the catalog points at it only after that.  The
checksum is mmh3 x64-128 over the file's bytes, computed while writing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import mmh3
import numpy as np

from kmerdb.errors import CorruptDatabaseError, DiskFullError
from kmerdb.store.crashpoint import crashpoint

__all__ = ["FileRef", "save_array", "load_array", "file_checksum", "fsync_dir", "deferred_sync", "sync_tree"]


@dataclass(frozen=True)
class FileRef:
    """A data file as the catalog records it: path relative to the database, size, checksum."""

    path: str
    nbytes: int
    checksum: str

    def to_record(self) -> dict:
        return {"path": self.path, "nbytes": self.nbytes, "checksum": self.checksum}

    @classmethod
    def from_record(cls, rec: dict) -> FileRef:
        return cls(rec["path"], rec["nbytes"], rec["checksum"])


class _HashingWriter:
    """File wrapper that feeds every byte written to an mmh3 hasher."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.hasher = mmh3.mmh3_x64_128()
        self.nbytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        self.hasher.update(view)
        self.nbytes += view.nbytes
        return self.fh.write(view)


_deferred = threading.local()


@contextmanager
def deferred_sync() -> Iterator[None]:
    """Skip the per-file fsync of :func:`save_array` in this thread.

    For bulk writers that make hundreds of files: they call :func:`sync_tree` once
    before their catalog commit, which is far cheaper than one fsync per file.
    """
    before = getattr(_deferred, "active", False)
    _deferred.active = True
    try:
        yield
    finally:
        _deferred.active = before


def sync_tree(root: str) -> None:
    """Make everything written under ``root`` durable: syncfs of its file system, then
    an fsync of every directory (so renames inside them are durable too)."""
    fd = os.open(root, os.O_RDONLY)
    try:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.syncfs(fd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
        except (AttributeError, OSError):
            os.sync()
    finally:
        os.close(fd)
    for dirpath, _, _ in os.walk(root):
        fsync_dir(dirpath)


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_array(root: str, relpath: str, array: np.ndarray) -> FileRef:
    """Write ``array`` as ``root/relpath`` (an .npy file) atomically.

    Refuses to replace an existing file: data files are immutable.
    """
    final = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if os.path.exists(final):
        raise CorruptDatabaseError(final, "data file exists already; data files are never rewritten")
    tmp = f"{final}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            writer = _HashingWriter(fh)
            np.lib.format.write_array(writer, np.ascontiguousarray(array), allow_pickle=False)
            fh.flush()
            if not getattr(_deferred, "active", False):
                os.fsync(fh.fileno())
    except OSError as exc:
        full = DiskFullError.from_error(exc, final)
        if full is None:
            raise
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # a partial file is of no use to anyone
        raise full from None
    crashpoint("save.tmp")
    os.replace(tmp, final)
    crashpoint("save.done")
    return FileRef(relpath, writer.nbytes, writer.hasher.digest().hex())


def load_array(root: str, ref: FileRef) -> np.ndarray:
    """Memory-map a data file read-only (pickles refused)."""
    full = os.path.join(root, ref.path)
    try:
        arr = np.load(full, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise CorruptDatabaseError(full, "data file named by the catalog is missing") from None
    except ValueError as exc:
        if "empty" in str(exc) or "mmap length" in str(exc):
            try:
                return np.load(full, allow_pickle=False)  # zero-length arrays cannot be mapped
            except (ValueError, OSError) as again:  # a truncated file is too short to map too
                raise CorruptDatabaseError(full, f"truncated data file: {again}") from None
        raise CorruptDatabaseError(full, f"unreadable data file: {exc}") from None
    # a plain ndarray view over the map: np.memmap's subclass hooks cost on every indexing
    return arr.view(np.ndarray)


def file_checksum(path: str) -> tuple[int, str]:
    """(size, mmh3 x64-128 hex digest) of a file, streamed."""
    hasher = mmh3.mmh3_x64_128()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.digest().hex()
