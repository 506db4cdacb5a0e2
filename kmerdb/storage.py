"""Immutable data files: atomic ``.npy`` writes, checksums, memory-mapped loads.

Every data file is written once under a temporary name, fsync'd, renamed into
place and never modified again; the catalog points at it only after that.  The
checksum is mmh3 x64-128 over the file's bytes, computed while writing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mmh3
import numpy as np

from .errors import CorruptDatabaseError

__all__ = ["FileRef", "save_array", "load_array", "file_checksum", "fsync_dir"]


@dataclass(frozen=True)
class FileRef:
    """A data file as the catalog records it: path relative to the database, size, checksum."""

    path: str
    nbytes: int
    checksum: str

    def to_record(self) -> dict:
        return {"path": self.path, "nbytes": self.nbytes, "checksum": self.checksum}

    @classmethod
    def from_record(cls, rec: dict) -> "FileRef":
        return cls(rec["path"], rec["nbytes"], rec["checksum"])


class _HashingWriter:
    """File wrapper that feeds every byte written to an mmh3 hasher."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.hasher = mmh3.mmh3_x64_128()
        self.nbytes = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.hasher.update(view)
        self.nbytes += view.nbytes
        return self.fh.write(view)


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
    with open(tmp, "wb") as fh:
        writer = _HashingWriter(fh)
        np.lib.format.write_array(writer, np.ascontiguousarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
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
            return np.load(full, allow_pickle=False)  # zero-length arrays cannot be mapped
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
