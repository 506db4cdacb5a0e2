"""Immutable data files: atomic ``.npy`` writes, checksums, memory-mapped loads.

Every data file is written once under a temporary name, fsync'd, renamed into
place and never modified again; the catalog points at it only after that.  The
checksum is mmh3 x64-128 over the file's bytes, computed while writing.

A database is untrusted input: its catalog may name any path and its directory may hold
symlinks, FIFOs or device nodes.  Every path kmerdb opens, links, replaces or deletes
under a database goes through :func:`resolve_inside`, and every data file is opened by
:func:`open_data_file` (no symlink followed, regular files only, never blocking), so
nothing outside the database directory is ever read, written or removed because a
database says so (docs/format.md, "What a database may contain").
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import math
import os
import stat
import threading
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Literal

import mmh3
import numpy as np

from kmerdb.errors import CorruptDatabaseError, DiskFullError
from kmerdb.store.crashpoint import crashpoint

__all__ = [
    "DATA_DIR",
    "FileRef",
    "check_relpath",
    "resolve_inside",
    "open_data_file",
    "check_no_symlinks",
    "save_array",
    "load_array",
    "file_checksum",
    "data_file_checksum",
    "fsync_dir",
    "deferred_sync",
    "sync_tree",
]

#: Folder of the data files; every path the catalog names lies under it.
DATA_DIR = "data"
#: Longest relative path accepted from a catalog (bytes of the usual PATH_MAX).
_MAX_PATH = 4096
# O_NOFOLLOW and O_CLOEXEC where the OS has them; O_NONBLOCK so that opening a FIFO
# returns at once (it is then refused as not a regular file) instead of waiting for a writer.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_READ = os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
#: dtype kinds a data file may hold: booleans, integers, floats (never objects, strings, records).
_DATA_KINDS = frozenset("biuf")


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
        """Read a catalog file record, refusing wrong types and paths that leave ``data/``.

        Raises
        ------
        ValueError
            Saying what is wrong (the catalog reader names the record).
        """
        if not isinstance(rec, dict):
            raise ValueError(f"a file record is {type(rec).__name__}, not a map")
        path, nbytes, checksum = rec["path"], rec["nbytes"], rec["checksum"]
        problem = check_relpath(path)
        if problem:
            raise ValueError(f"file path {path!r} {problem}")
        if type(nbytes) is not int or nbytes < 0:
            raise ValueError(f"file {path!r}: size {nbytes!r} is not a non-negative integer")
        if not isinstance(checksum, str):
            raise ValueError(f"file {path!r}: checksum {checksum!r} is not a string")
        return cls(path, nbytes, checksum)


def check_relpath(relpath: object) -> str | None:
    """What is wrong with ``relpath`` as the path of a data file, or None.

    A data file's path is a string relative to the database directory, under ``data/``,
    made of plain names: not absolute, no ``..``, ``.`` or empty component, no NUL byte.
    Only the spelling is checked here (no file system access).
    """
    if not isinstance(relpath, str):
        return f"is a {type(relpath).__name__}, not a string"
    if not relpath or len(relpath) > _MAX_PATH or "\x00" in relpath or "\\" in relpath:
        return "is not a valid relative path"
    if relpath.startswith("/"):
        return "is absolute"
    parts = relpath.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "has an empty, '.' or '..' component"
    if parts[0] != DATA_DIR or len(parts) < 2:
        return f"is not under {DATA_DIR}/"
    return None


def resolve_inside(root: str, relpath: object, what: str = "data file") -> str:
    """The full path of ``relpath`` under the database ``root``, once proved to stay inside.

    The one gate of every path a database names: its spelling (:func:`check_relpath`),
    then the real path: no component may be a symlink, so the file is exactly
    ``realpath(root)/relpath``.  The file itself need not exist.

    Raises
    ------
    CorruptDatabaseError
        Naming the path and why it is refused.
    """
    problem = check_relpath(relpath)
    if problem:
        raise CorruptDatabaseError(os.path.join(root, str(relpath)), f"{what} path {relpath!r} {problem}")
    assert isinstance(relpath, str)
    real_root = os.path.realpath(root)
    expected = os.path.join(real_root, relpath)
    if os.path.realpath(expected) != expected:
        raise CorruptDatabaseError(
            os.path.join(root, relpath), f"{what} path goes through a symlink; a database holds none"
        )
    return expected


def open_data_file(root: str, relpath: object, what: str = "data file") -> int:
    """Open a data file of the database for reading; returns a file descriptor.

    The path is checked by :func:`resolve_inside`, opened without following a symlink
    (``O_NOFOLLOW``) nor waiting (``O_NONBLOCK``: a FIFO returns at once), and refused
    unless it is a regular file (a FIFO, a device, a directory, a socket).

    Raises
    ------
    CorruptDatabaseError
        The path leaves the database, the file is missing, or it is not a regular file.
    """
    full = resolve_inside(root, relpath, what)
    try:
        fd = os.open(full, _O_READ)
    except FileNotFoundError:
        raise CorruptDatabaseError(full, f"{what} named by the catalog is missing") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the last component turned into a symlink
            raise CorruptDatabaseError(full, f"{what} is a symlink; a database holds none") from None
        raise CorruptDatabaseError(full, f"cannot open the {what}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise CorruptDatabaseError(full, f"cannot read the {what}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise CorruptDatabaseError(full, f"{what} is not a regular file ({_kind_of(mode)})")
    return fd


def _kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return name
    return "not a file"


def check_no_symlinks(root: str, names: tuple[str, ...]) -> None:
    """Refuse a database whose folders or lock files ``names`` (relative) are symlinks.

    Writers call it before writing anything: a symlinked ``data/`` would let a vacuum
    delete files elsewhere, a symlinked ``locks/writer`` would have the PID written over
    another file.

    Raises
    ------
    CorruptDatabaseError
        Naming the symlink.
    """
    for name in names:
        full = os.path.join(root, name)
        if os.path.islink(full):
            raise CorruptDatabaseError(full, "is a symlink; a database holds none, so no writer touches it")


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

    Refuses to replace an existing file: data files are immutable.  The folder it goes
    into is checked to lie inside ``root`` (no symlinked partition folder), and the
    temporary file is created exclusively without following a symlink.
    """
    final = resolve_inside(root, relpath)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    final = resolve_inside(root, relpath)  # again: a folder made above may be a symlink now
    if os.path.lexists(final):
        raise CorruptDatabaseError(final, "data file exists already; data files are never rewritten")
    tmp = f"{final}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a killed writer of the same PID
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        with os.fdopen(fd, "wb") as fh:
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


_HEADER_LOCK = threading.Lock()


def _read_npy_header(fh: BinaryIO, full: str, size: int) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and data offset of an .npy file, checked against its size.

    Every value is bounded before anything is allocated: the header's length, the
    dtype (numbers only, no objects), the shape (non-negative integers) and the bytes
    it implies, which must be exactly the bytes the file holds.
    """
    fmt = np.lib.format
    try:
        # one header parse at a time: numpy parses headers with ast.literal_eval, which
        # CPython 3.11 can fail ("AST constructor recursion depth mismatch") when two threads
        # of one process run it at once
        with _HEADER_LOCK:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(fh)
            else:
                raise ValueError(f".npy format version {version} is not one kmerdb writes")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        raise CorruptDatabaseError(full, f"unreadable data file header: {exc}") from None
    if dtype.hasobject or dtype.kind not in _DATA_KINDS or dtype.itemsize == 0:
        raise CorruptDatabaseError(full, f"data file holds dtype {dtype.str}, not numbers")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise CorruptDatabaseError(full, f"data file header has an invalid shape {shape!r}")
    offset = fh.tell()
    expected = offset + math.prod(shape) * dtype.itemsize
    if expected != size:
        what = "truncated data file: its header" if size < expected else "data file header"
        raise CorruptDatabaseError(
            full, f"{what} claims shape {shape} of {dtype.str} ({expected} bytes), the file has {size} bytes"
        )
    return shape, fortran, dtype, offset


def load_array(root: str, ref: FileRef) -> np.ndarray:
    """Memory-map a data file read-only (pickles refused).

    The file is opened through :func:`open_data_file` and its .npy header is checked
    against the file's size before anything is mapped or allocated.

    Raises
    ------
    CorruptDatabaseError
        The path is refused, the file is missing or not regular, or its header is
        unreadable or disagrees with its size.
    """
    fd = open_data_file(root, ref.path)
    full = os.path.join(root, ref.path)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fd).st_size
        if size != ref.nbytes:  # cheap, and catches a truncated or replaced file before its header
            raise CorruptDatabaseError(full, f"data file has {size} bytes, the catalog records {ref.nbytes}")
        shape, fortran, dtype, offset = _read_npy_header(fh, full, size)
        order: Literal["C", "F"] = "F" if fortran else "C"
        if math.prod(shape) == 0:
            return np.zeros(shape, dtype=dtype, order=order)  # zero-length arrays cannot be mapped
        try:
            arr = np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
        except (ValueError, OSError) as exc:
            raise CorruptDatabaseError(full, f"cannot map the data file: {exc}") from None
    # a plain ndarray view over the map: np.memmap's subclass hooks cost on every indexing
    return arr.view(np.ndarray)


def file_checksum(path: str) -> tuple[int, str]:
    """(size, mmh3 x64-128 hex digest) of a file, streamed.

    Opened without following a symlink nor waiting on a FIFO; anything but a regular file
    is refused with :class:`~kmerdb.errors.CorruptDatabaseError`.
    """
    try:
        fd = os.open(path, _O_READ)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptDatabaseError(path, "is a symlink; a database holds none") from None
        raise
    return _checksum_fd(fd, path)


def data_file_checksum(root: str, relpath: object) -> tuple[int, str]:
    """(size, digest) of a data file of ``root``, opened through :func:`open_data_file`."""
    return _checksum_fd(open_data_file(root, relpath), os.path.join(root, str(relpath)))


def _checksum_fd(fd: int, path: str) -> tuple[int, str]:
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CorruptDatabaseError(path, f"is not a regular file ({_kind_of(mode)})")
        hasher = mmh3.mmh3_x64_128()
        size = 0
        while chunk := fh.read(1 << 22):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.digest().hex()
