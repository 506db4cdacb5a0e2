"""Immutable data files: atomic ``.npy`` writes, checksums, memory-mapped loads.

Every data file is written once under a temporary name, fsync'd, renamed into
place and never modified again; the catalog points at it only after that.  The
checksum is mmh3 x64-128 over the file's bytes, computed while writing.

A database is untrusted input: its catalog may name any path and its directory may hold
symlinks, FIFOs or device nodes, and a folder inside it may be swapped for a symlink at any
moment.  Every file kmerdb opens, creates, links, renames or deletes under a database is
reached through :func:`at_path`: one folder at a time from a descriptor of the database
directory, never following a symlink, and then acted on relative to its folder's
descriptor.  Every data file is opened by :func:`open_data_file` (regular files only,
never blocking), so nothing outside the database directory is ever read, written or
removed because a database says so, however its folders change meanwhile
(docs/format.md, "What a database may contain").

Files written by tasks (data files, spill files) are *fenced*: a task runs under the
writer's epoch token (:func:`fenced`), and creates or renames a file only while the
database's ``locks/epoch`` still holds that token, under a shared flock of that file that
a new writer takes exclusively to replace the token (see :mod:`kmerdb.store.lock`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import math
import os
import stat
import threading
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, cast

import mmh3
import numpy as np

from kmerdb.errors import CorruptDatabaseError, DiskFullError, FencedError, KmerDBError
from kmerdb.store.crashpoint import crashpoint

__all__ = [
    "DATA_DIR",
    "FileRef",
    "EPOCH_FILE",
    "check_relpath",
    "at_path",
    "folder_at",
    "open_at",
    "open_data_file",
    "check_no_symlinks",
    "fenced",
    "fence_tokens",
    "write_guard",
    "rename_noreplace",
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
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_NOFOLLOW | _O_CLOEXEC
#: The file holding the epoch token of the database's latest writer (kmerdb.store.lock writes it).
EPOCH_FILE = "locks/epoch"
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


def _split_components(root: str, relpath: object, what: str) -> list[str]:
    """The plain names of ``relpath``; a spelling that could leave ``root`` is refused."""
    parts = relpath.split("/") if isinstance(relpath, str) else []
    if not parts or "\x00" in str(relpath) or any(part in ("", ".", "..") for part in parts):
        raise CorruptDatabaseError(os.path.join(root, str(relpath)), f"{what} path {relpath!r} is not a plain relative path")
    return parts


def _refuse_component(root: str, done: list[str], name: str, parent: int, what: str, exc: OSError) -> KmerDBError:
    """The error for a folder on the path that did not open as a folder without following it."""
    full = os.path.join(root, *done, name)
    try:
        mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except OSError:
        mode = 0
    if stat.S_ISLNK(mode) or exc.errno == errno.ELOOP:
        return CorruptDatabaseError(full, f"{what} path goes through a symlink; a database holds none, so it is not followed")
    return CorruptDatabaseError(full, f"{what} path goes through {_kind_of(mode) if mode else 'something'}, not a folder")


def _open_folder(parent: int, name: str, root: str, done: list[str], create: bool, what: str) -> int:
    """Open folder ``name`` of ``parent`` (O_DIRECTORY | O_NOFOLLOW), creating it if asked."""
    for attempt in (0, 1):
        try:
            return os.open(name, _O_DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create or attempt:
                raise FileNotFoundError(errno.ENOENT, "no such folder", os.path.join(root, *done, name)) from None
            with contextlib.suppress(FileExistsError):  # made meanwhile by another task: fine
                os.mkdir(name, 0o755, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _refuse_component(root, done, name, parent, what, exc) from None
            raise
    raise AssertionError("unreachable")


def _walk(root: str, folders: list[str], create: bool, what: str) -> int:
    """A descriptor of ``root/folders...``, each folder opened from the one above, no symlink followed."""
    # the database directory itself is the user's to name: it may be a symlink; it is never created
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
    done: list[str] = []
    try:
        for name in folders:
            child = _open_folder(fd, name, root, done, create, what)
            os.close(fd)
            fd = child
            done.append(name)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def at_path(root: str, relpath: object, *, create: bool = False, what: str = "data file") -> Iterator[tuple[int, str]]:
    """The folder holding ``root/relpath``, reached without following any symlink.

    The one way kmerdb reaches a file under a database to open, create, link, rename or
    delete it.  The database directory ``root`` is opened (the user named it: it may be a
    symlink), then every folder of ``relpath`` from the descriptor of the one above
    (``O_DIRECTORY | O_NOFOLLOW``), so a folder swapped for a symlink at any moment is
    refused, never followed.  The caller acts on the last name relative to the yielded
    descriptor: ``dir_fd=`` (and ``O_NOFOLLOW``, see :func:`open_at`), ``src_dir_fd=`` /
    ``dst_dir_fd=``.

    Parameters
    ----------
    root : str
        The database directory.  It must exist: it is never created, so a task that
        outlives its operation cannot bring a removed directory back.
    relpath : str
        Plain names separated by ``/`` (no ``..``, ``.``, empty or absolute part).
    create : bool
        Create the missing folders on the way.
    what : str
        What the file is, for error messages.

    Yields
    ------
    (int, str)
        The descriptor of the file's folder (closed when the block ends) and the file's
        name in it.

    Raises
    ------
    CorruptDatabaseError
        A folder on the path is a symlink or not a folder, or the spelling could leave
        ``root``; naming the path.
    FileNotFoundError
        ``root``, or without ``create`` a folder on the path, is missing.
    """
    parts = _split_components(root, relpath, what)
    fd = _walk(root, parts[:-1], create, what)
    try:
        yield fd, parts[-1]
    finally:
        os.close(fd)


@contextmanager
def folder_at(root: str, relpath: object, *, create: bool = False, what: str = "folder") -> Iterator[int]:
    """A descriptor of the folder ``root/relpath`` itself (to list it, or act in it), as :func:`at_path`."""
    fd = _walk(root, _split_components(root, relpath, what), create, what)
    try:
        yield fd
    finally:
        os.close(fd)


def open_at(dir_fd: int, name: str, flags: int, full: str, what: str = "data file", mode: int = 0o644) -> int:
    """``os.open`` of ``name`` in folder ``dir_fd`` without following a symlink (``O_NOFOLLOW``).

    Raises
    ------
    CorruptDatabaseError
        ``name`` is a symlink (naming ``full``).
    """
    try:
        return os.open(name, flags | _O_NOFOLLOW | _O_CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptDatabaseError(full, f"{what} is a symlink; a database holds none") from None
        raise


def open_data_file(root: str, relpath: object, what: str = "data file") -> int:
    """Open a data file of the database for reading; returns a file descriptor.

    The path's spelling is checked (:func:`check_relpath`), its folders reached by
    :func:`at_path`, the file opened without following a symlink nor waiting
    (``O_NONBLOCK``: a FIFO returns at once) and refused unless it is a regular file (a
    FIFO, a device, a directory, a socket).

    Raises
    ------
    CorruptDatabaseError
        The path leaves the database, the file is missing, or it is not a regular file.
    """
    full = os.path.join(root, str(relpath))
    problem = check_relpath(relpath)
    if problem:
        raise CorruptDatabaseError(full, f"{what} path {relpath!r} {problem}")
    try:
        with at_path(root, relpath, what=what) as (folder, name):
            fd = os.open(name, _O_READ, dir_fd=folder)
    except FileNotFoundError:
        raise CorruptDatabaseError(full, f"{what} named by the catalog is missing") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the file itself is a symlink
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


# -- fencing: files written by the tasks of a writer that is no longer the writer --------------

_fence = threading.local()


@contextmanager
def fenced(tokens: tuple[str, ...]) -> Iterator[None]:
    """Run the block (a task) under the epoch tokens of the writer that sent it.

    While it runs, this thread creates and renames files under a database only while the
    database's ``locks/epoch`` holds one of ``tokens`` (:func:`write_guard`).  With no
    tokens the block runs unfenced (the writer itself, or a task of no writer).
    """
    before = getattr(_fence, "tokens", ())
    _fence.tokens = tuple(tokens)
    try:
        yield
    finally:
        _fence.tokens = before


def fence_tokens() -> tuple[str, ...]:
    """The tokens this thread runs under (empty outside :func:`fenced`)."""
    return tuple(getattr(_fence, "tokens", ()))


@contextmanager
def write_guard(root: str, full: str) -> Iterator[None]:
    """Hold the database's epoch steady while the block creates or renames one file.

    In a fenced task (:func:`fenced`): a shared flock on ``locks/epoch``, whose token must
    be one of the task's, else :class:`~kmerdb.errors.FencedError`.  A new writer takes the
    flock exclusively to write its own token, so a file created or renamed inside the
    block was so either before the new writer started (its recovery then removes it) or
    not at all.  A database without the file (a merge's staging folder, which no writer
    lock covers) is not fenced.  Outside a fenced task the block just runs.
    """
    tokens = fence_tokens()
    if not tokens:
        yield
        return
    try:
        with at_path(root, EPOCH_FILE, what="epoch file") as (folder, name):
            fd = open_at(folder, name, os.O_RDONLY | os.O_NONBLOCK, os.path.join(root, EPOCH_FILE), "epoch file")
    except FileNotFoundError:
        yield  # no writer lock was ever taken here: nothing to fence against
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a new writer holds it exclusively only to write its token
        token = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if token not in tokens:
            raise FencedError(full)
        yield
    finally:
        os.close(fd)  # releases the flock


_RENAME_NOREPLACE = 1  # from <linux/fs.h>


def rename_noreplace(folder: int, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` inside ``folder``, failing with ``FileExistsError`` if ``dst`` exists.

    ``renameat2(RENAME_NOREPLACE)`` where the kernel has it, else a hard link and an unlink
    (both atomic against an existing ``dst``), else a plain rename after a check.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.renameat2(folder, os.fsencode(src), folder, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), dst)
    except AttributeError:
        pass  # no renameat2 in this libc
    try:
        os.link(src, dst, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        with contextlib.suppress(FileNotFoundError):
            os.stat(dst, dir_fd=folder, follow_symlinks=False)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from None
        os.rename(src, dst, src_dir_fd=folder, dst_dir_fd=folder)
        return
    os.unlink(src, dir_fd=folder)


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
    an fsync of every directory (so renames inside them are durable too).

    The folders are walked by descriptor (``os.fwalk``), never through a symlink.
    """
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
    for _, _, _, dirfd in os.fwalk(root):
        os.fsync(dirfd)


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_array(root: str, relpath: str, array: np.ndarray) -> FileRef:
    """Write ``array`` as ``root/relpath`` (an .npy file) atomically.

    Refuses to replace an existing file: data files are immutable.  The folders are
    reached (and made) by :func:`at_path`, the temporary file is created exclusively
    without following a symlink and renamed into place without replacing anything
    (:func:`rename_noreplace`).  In a fenced task both happen under :func:`write_guard`.

    Raises
    ------
    CorruptDatabaseError
        The path is refused, or the file exists already.
    FencedError
        The task's writer is no longer the database's writer; nothing is left behind.
    DiskFullError
        No space left; nothing is left behind.
    """
    full = os.path.join(root, relpath)
    problem = check_relpath(relpath)
    if problem:
        raise CorruptDatabaseError(full, f"data file path {relpath!r} {problem}")
    try:
        with write_guard(root, full), at_path(root, relpath, create=True) as (folder, name):
            # the folder stays open: everything below happens in it, whatever is renamed meanwhile
            folder = os.dup(folder)
    except OSError as exc:
        raise DiskFullError.from_error(exc, full) or exc from None
    try:
        return _save_in(root, folder, name, full, relpath, array)
    finally:
        os.close(folder)


def _save_in(root: str, folder: int, name: str, full: str, relpath: str, array: np.ndarray) -> FileRef:
    """:func:`save_array` once its folder is open."""
    with contextlib.suppress(FileNotFoundError):
        os.stat(name, dir_fd=folder, follow_symlinks=False)
        raise CorruptDatabaseError(full, "data file exists already; data files are never rewritten")
    tmp = f"{name}.tmp-{os.getpid()}-{threading.get_native_id()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=folder)  # left by a killed writer of the same PID
    try:
        with write_guard(root, full):
            fd = open_at(folder, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, full)
        with os.fdopen(fd, "wb") as fh:
            writer = _HashingWriter(fh)
            np.lib.format.write_array(writer, np.ascontiguousarray(array), allow_pickle=False)
            fh.flush()
            if not getattr(_deferred, "active", False):
                os.fsync(fh.fileno())
        crashpoint("save.tmp")
        with write_guard(root, full):
            rename_noreplace(folder, tmp, name)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder)  # a partial file, or one of a fenced-off writer: of no use
        if isinstance(exc, FileExistsError):
            raise CorruptDatabaseError(full, "data file exists already; data files are never rewritten") from None
        full_disk = DiskFullError.from_error(exc, full) if isinstance(exc, OSError) else None
        if full_disk is not None:
            raise full_disk from None
        raise
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
    against the file's size before anything is mapped or allocated.  The mapped bytes are
    hashed and compared with the catalog's checksum before the array is returned, so a file damaged behind a valid header (a flipped byte, another
    file of the same size) is refused instead of answering wrong; the hash runs at several
    GB/s over pages a reader maps anyway.

    Raises
    ------
    CorruptDatabaseError
        The path is refused, the file is missing or not regular, its header is unreadable
        or disagrees with its size, or its bytes disagree with the catalog's checksum.
    """
    fd = open_data_file(root, ref.path)
    full = os.path.join(root, ref.path)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fd).st_size
        if size != ref.nbytes:  # cheap, and catches a truncated or replaced file before its header
            raise CorruptDatabaseError(full, f"data file has {size} bytes, the catalog records {ref.nbytes}")
        shape, fortran, dtype, offset = _read_npy_header(fh, full, size)
        order: Literal["C", "F"] = "F" if fortran else "C"
        try:
            mapped = np.memmap(fh, dtype=np.uint8, mode="r", shape=(size,))
        except (ValueError, OSError) as exc:
            raise CorruptDatabaseError(full, f"cannot map the data file: {exc}") from None
    raw: np.ndarray = mapped.view(np.ndarray)  # a plain view: np.memmap's subclass hooks cost on every indexing
    hasher = mmh3.mmh3_x64_128()
    view = memoryview(cast(Any, raw))
    for lo in range(0, size, _HASH_CHUNK):
        hasher.update(view[lo : lo + _HASH_CHUNK])
    if hasher.digest().hex() != ref.checksum:
        raise CorruptDatabaseError(full, "data file checksum differs from the catalog's")
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype=dtype, order=order)
    body = raw[offset:]
    if fortran:
        return body.view(dtype).reshape(shape[::-1]).T
    return body.view(dtype).reshape(shape)


#: Bytes hashed per update when a mapped file is checked.
_HASH_CHUNK = 1 << 22


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
