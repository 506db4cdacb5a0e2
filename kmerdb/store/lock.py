"""Locks of a database directory: one writer at a time, and registered readers.

Both live under ``DB/locks/`` and use ``fcntl.flock``, which the kernel releases when
the holder dies, however it dies.

Writer lock (``locks/writer``)
    A writer holds an exclusive flock on this file for the length of a transaction
    (and a vacuum) and writes its PID into it; a second writer fails with
    :class:`~kmerdb.errors.LockedError` naming that PID, or waits.  A clean release
    empties the file, so a writer that finds a PID in it knows the previous writer
    died mid-operation and clears what it left behind (files no generation names).

Epoch (``locks/epoch``)
    Every writer, once it holds the lock and before it removes anything, writes a new
    random token into ``locks/epoch`` (holding an exclusive flock of that file while it
    does).  Tasks sent to Dask workers (and to local workers) carry their writer's token
    and create or rename a file only under a shared flock of ``locks/epoch`` that still
    holds it (:func:`kmerdb.store.storage.write_guard`): a task of a dead writer, which
    nothing can stop on a remote worker, writes nothing once the next writer has started.

Reader registrations (``locks/readers/*.reader``)
    Every open handle holds an exclusive flock on a file of its own whose content is
    the generation it reads (``*`` while it is between generations: opening or
    refreshing).  :func:`live_readers` tells vacuum which generations are still seen.
    A file whose flock can be taken belongs to a process that is gone.

    A handle that cannot register (a directory it cannot write: another user's database,
    a read-only mount) reads without a registration, and says so once on the ``kmerdb``
    logger.  It is not registered elsewhere either: the vacuum that could remove its files
    runs as the owner, who could not see a registration in this user's runtime directory.
    What keeps it safe is that a read handle maps every data file of its snapshot when it
    opens, and a mapped file stays readable after it is unlinked; only a refresh racing a
    commit and a vacuum of the owner can fail (with CorruptDatabaseError, never an answer
    from a mix of generations).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
import uuid
import weakref

from kmerdb.errors import CorruptDatabaseError, DiskFullError, KmerDBError, LockedError
from kmerdb.store.storage import EPOCH_FILE, at_path, check_no_symlinks, folder_at, open_at

__all__ = [
    "LOCKS_DIR",
    "WriterLock",
    "ReaderRegistration",
    "live_readers",
    "forget_inherited",
    "held_writer_roots",
    "held_writer_tokens",
    "register_worker",
]

log = logging.getLogger(__name__)
# databases whose unregistered reads were logged already: once per database and process
_UNREGISTERED_NOTED: set[str] = set()

LOCKS_DIR = "locks"
_WRITER = "writer"
_READERS = "readers"
_WORKERS = "workers"
#: Seconds a new writer waits for the processes of a dead writer to end before it gives up.
FENCE_TIMEOUT = 60.0
_ANY = "*"
_WIDTH = 24  # registration content is rewritten in place at this fixed width
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: What a writer refuses to find as a symlink (relative to the database).
_WRITER_PATHS = ("catalog", "data", "spill", LOCKS_DIR, f"{LOCKS_DIR}/{_WRITER}", f"{LOCKS_DIR}/{_READERS}")

# Every lock object of this process with an open lock file.  A flock belongs to the open
# file, which a forked child shares: a child keeping its copy would keep the lock after
# its parent released it, so long-lived children drop their copies (forget_inherited).
_HOLDERS: weakref.WeakSet[WriterLock | ReaderRegistration] = weakref.WeakSet()


def forget_inherited() -> None:
    """In a forked child: close the child's copies of its parent's lock files.

    The parent's locks stay as they are (the parent still has the files open); the
    child's lock objects no longer hold anything.
    """
    for holder in list(_HOLDERS):
        fd, holder.fd = holder.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
    _HOLDERS.clear()


class WriterLock:
    """The exclusive writer lock of one database.

    Parameters
    ----------
    root : str
        Database directory.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(root, LOCKS_DIR, _WRITER)
        self.fd: int | None = None
        #: True when the previous holder died without releasing cleanly.
        self.previous_crashed = False
        #: This holder's epoch token (in ``locks/epoch`` from acquire on), or None.
        self.token: str | None = None

    def acquire(self, wait: bool | float = False) -> WriterLock:
        """Take the lock.

        Parameters
        ----------
        wait : bool or float
            False: fail at once if another writer holds it; True: wait as long as it takes;
            a number: wait at most that many seconds.

        Raises
        ------
        LockedError
            Another process holds the lock (and waiting was not asked for or timed out).
        """
        # a writer writes its PID into locks/writer, files under data/ and spill/ and the
        # catalog: none of them may lead out of the database (a symlinked data/ would let a
        # vacuum delete a foreign folder's files), so refuse before writing anything
        check_no_symlinks(self.root, _WRITER_PATHS)
        # the lock file is reached folder by folder: a ``locks`` swapped for a symlink
        # after the check above is refused, not followed
        try:
            with at_path(self.root, f"{LOCKS_DIR}/{_WRITER}", create=True, what="writer lock") as (folder, name):
                fd = self.fd = open_at(folder, name, os.O_RDWR | os.O_CREAT, self.path, "writer lock")
        except OSError as exc:
            raise DiskFullError.from_error(exc, self.path) or exc from None
        _HOLDERS.add(self)  # from now on: a fork while waiting must not keep the file either
        try:
            if wait is True:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                deadline = time.monotonic() + (0.0 if wait is False else float(wait))
                if not _flock_until(fd, deadline, 0.05):
                    raise LockedError(self.root, _read_pid(fd))
            content = os.pread(fd, 64, 0).strip()
            self.previous_crashed = bool(content)
            # nothing of the previous writer may still run once this one starts: its local
            # workers are waited for; its Dask tasks are fenced off by a new epoch
            _fence_workers(self.root, content)
            self.token = _new_epoch(self.root)
            # one write over the old content (never empty in between), so that dying right
            # here still tells the next writer to clean up
            os.pwrite(fd, f"{os.getpid()} {_start_time(os.getpid())}".ljust(_WIDTH - 1).encode() + b"\n", 0)
            os.fsync(fd)
        except BaseException as exc:
            self.fd = None
            _HOLDERS.discard(self)
            os.close(fd)
            # a full disk refuses even the few bytes of the lock files
            full = DiskFullError.from_error(exc, self.path) if isinstance(exc, OSError) else None
            if full is not None:
                raise full from None
            raise
        return self

    def release(self, clean: bool = True) -> None:
        """Release the lock; ``clean=False`` leaves the PID so the next writer cleans up."""
        if self.fd is None:
            return
        try:
            if clean:
                os.ftruncate(self.fd, 0)
        finally:
            _HOLDERS.discard(self)
            os.close(self.fd)
            self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def held_writer_roots() -> tuple[str, ...]:
    """The databases whose writer lock this process holds (their workers register there)."""
    return tuple(h.root for h in list(_HOLDERS) if isinstance(h, WriterLock) and h.fd is not None)


def held_writer_tokens() -> tuple[str, ...]:
    """The epoch tokens of the writer locks this process holds: what its tasks are fenced by."""
    return tuple(h.token for h in list(_HOLDERS) if isinstance(h, WriterLock) and h.fd is not None and h.token)


def _new_epoch(root: str) -> str:
    """Write a new epoch token into ``locks/epoch`` and return it (holding the writer lock).

    Under an exclusive flock of the file: a task of the previous writer that is creating or
    renaming a file right now holds a shared one, and is let to finish that one step (its
    file is then there for this writer's recovery to remove); every later step of it sees
    the new token and refuses.  A flock held past :data:`FENCE_TIMEOUT` (a task stuck in the
    kernel) makes this writer fail with LockedError rather than race it.
    """
    token = uuid.uuid4().hex
    full = os.path.join(root, EPOCH_FILE)
    with at_path(root, EPOCH_FILE, create=True, what="epoch file") as (folder, name):
        fd = open_at(folder, name, os.O_RDWR | os.O_CREAT, full, "epoch file")
    try:
        if not _flock_until(fd, time.monotonic() + FENCE_TIMEOUT, 0.01):
            raise LockedError(root, None)
        # one write of a fixed width over the old token: a reader never sees it half empty
        os.pwrite(fd, (token + "\n").encode(), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    return token


# A worker's registrations: open (and flocked) until the worker process ends.
_worker_fds: list[int] = []


def register_worker(roots: tuple[str, ...]) -> None:
    """In a local worker process of a writer: register it under each database's ``locks/workers``.

    The flock is held until the process ends, however it ends; a later writer waits for
    it (see the module docstring).  A registration that cannot be made (read-only
    directory) is skipped: such a worker cannot write there either.
    """
    for root in roots:
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}.worker"
        try:
            with at_path(root, f"{LOCKS_DIR}/{_WORKERS}/{name}", create=True, what="worker registration") as (folder, leaf):
                fd = open_at(folder, leaf, os.O_RDWR | os.O_CREAT | os.O_EXCL, os.path.join(root, LOCKS_DIR, _WORKERS, name))
        except (OSError, KmerDBError):
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        _worker_fds.append(fd)


def _start_time(pid: int) -> str:
    """The start time of a process in clock ticks since boot (Linux), telling a reused PID apart."""
    stat = _proc_stat(pid)
    return stat[19] if stat else "-"


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name, or None (gone, or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _fence_workers(root: str, previous: bytes) -> None:
    """Wait until no process of the previous writer can still write, then drop its worker registrations.

    ``previous`` is the lock file's content: empty after a clean release (the workers
    ended before it), else the PID and start time of a writer that died holding the lock.
    """
    deadline = time.monotonic() + FENCE_TIMEOUT
    fields = previous.decode("ascii", "replace").split()
    if len(fields) == 2 and fields[0].isdigit():
        # The kernel releases a dying process's flocks before it signals its children
        # (PR_SET_PDEATHSIG): wait until the process has exited (zombie or reaped).
        pid = int(fields[0])
        while True:
            stat = _proc_stat(pid)
            if stat is None or stat[0] in ("Z", "X") or stat[19] != fields[1]:
                break
            if time.monotonic() >= deadline:
                raise LockedError(root, pid)
            time.sleep(0.01)
    try:
        with folder_at(root, f"{LOCKS_DIR}/{_WORKERS}", what="worker registrations") as folder:
            for name in os.listdir(folder):
                try:
                    fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
                except OSError:
                    continue  # gone meanwhile, or a symlink: no registration of a worker
                try:
                    # taken once the worker is gone: a flock dies with its process
                    if not _flock_until(fd, deadline, 0.01):
                        raise LockedError(root, _owner_of(name))
                    _unlink(folder, name)
                finally:
                    os.close(fd)
    except (FileNotFoundError, PermissionError):
        return  # none registered (or none can be: read-only), nothing to fence


def _flock_until(fd: int, deadline: float, pause: float) -> bool:
    """Take an exclusive flock on ``fd``, trying until ``deadline``; False if it stayed taken."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)


def _owner_of(registration: str) -> int | None:
    head = registration.partition("-")[0]
    return int(head) if head.isdigit() else None


class ReaderRegistration:
    """A handle's registration as a reader of one generation (see the module docstring).

    Attributes
    ----------
    registered : bool
        False when the directory could not take the registration (not writable by this
        user, or on a read-only mount): the handle reads unregistered.
    """

    def __init__(self, root: str) -> None:
        self.fd: int | None = None
        self.path: str | None = None
        self.root = root
        self.registered = False
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._name = name + ".reader"
        folder = None
        try:
            # registrations are files written into the database: never through a symlink
            check_no_symlinks(root, (LOCKS_DIR, f"{LOCKS_DIR}/{_READERS}"))
            with folder_at(root, f"{LOCKS_DIR}/{_READERS}", create=True, what="reader registrations") as at:
                folder = os.dup(at)
            fd = open_at(folder, name + ".tmp", os.O_RDWR | os.O_CREAT | os.O_EXCL, os.path.join(root, LOCKS_DIR, _READERS, name))
        except (OSError, CorruptDatabaseError) as exc:
            if folder is not None:
                os.close(folder)
            # not writable, a read-only mount, full, or a locks folder that leads elsewhere:
            # reading still works, without a registration
            real = os.path.realpath(root)
            if real not in _UNREGISTERED_NOTED:
                _UNREGISTERED_NOTED.add(real)
                log.info(
                    "%s: cannot register as a reader (%s); reading without a registration "
                    "(a vacuum by its owner does not see this reader)", root, getattr(exc, "strerror", None) or exc
                )
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.pwrite(fd, _ANY.ljust(_WIDTH).encode(), 0)
            # visible under its final name only once locked, so vacuum never takes it for stale
            os.rename(name + ".tmp", self._name, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError:
            os.close(fd)
            _unlink(folder, name + ".tmp")
            return
        finally:
            os.close(folder)
        self.fd, self.path = fd, os.path.join(root, LOCKS_DIR, _READERS, self._name)
        self.registered = True
        self.pid = os.getpid()
        _HOLDERS.add(self)

    def set(self, generation: int | None) -> None:
        """Announce the generation read (None: between generations, protect them all)."""
        if self.fd is not None and os.getpid() == self.pid:
            text = _ANY if generation is None else str(int(generation))
            os.pwrite(self.fd, text.ljust(_WIDTH).encode(), 0)

    def close(self) -> None:
        if self.fd is None:
            return
        if self.path is not None and os.getpid() == self.pid:
            # a forked child closing its copy leaves the parent registered
            with contextlib.suppress(OSError, KmerDBError), at_path(
                self.root, f"{LOCKS_DIR}/{_READERS}/{self._name}", what="reader registration"
            ) as (folder, name):
                _unlink(folder, name)
        _HOLDERS.discard(self)
        os.close(self.fd)
        self.fd = None

    def __del__(self) -> None:  # a handle dropped without close() stops protecting its files
        with contextlib.suppress(Exception):
            self.close()


def live_readers(root: str, remove_stale: bool = True) -> tuple[set[int], bool, int]:
    """Generations seen by readers that are still alive.

    Returns
    -------
    generations : set of int
    any_generation : bool
        Some reader is between generations: every generation must be kept.
    n_live : int
        Live registrations.
    """
    folder_path = os.path.join(root, LOCKS_DIR, _READERS)
    # stale registrations are deleted below: only inside the database
    check_no_symlinks(root, (LOCKS_DIR, f"{LOCKS_DIR}/{_READERS}"))
    gens: set[int] = set()
    wildcard = False
    n_live = 0
    try:
        with folder_at(root, f"{LOCKS_DIR}/{_READERS}", what="reader registrations") as folder:
            for name in os.listdir(folder):
                if not name.endswith(".reader"):
                    if name.endswith(".tmp") and remove_stale:
                        _remove_if_abandoned(folder, name)
                    continue
                try:
                    fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
                except OSError:
                    continue  # gone meanwhile, or a symlink or worse: no registration of a live reader
                try:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        n_live += 1  # held: the reader is alive
                        text = os.pread(fd, _WIDTH, 0).decode("ascii", "replace").strip()
                        try:
                            gens.add(int(text))
                        except ValueError:
                            wildcard = True
                        continue
                    if remove_stale:  # nobody holds it: its process is gone
                        _unlink(folder, name)
                finally:
                    os.close(fd)
    except FileNotFoundError:
        return gens, False, 0
    except OSError as exc:
        raise KmerDBError(f"{folder_path}: cannot list reader registrations: {exc}") from None
    return gens, wildcard, n_live


def _remove_if_abandoned(folder: int, name: str) -> None:
    """Remove a registration that never got its final name (its reader died while opening).

    A young one may belong to a reader between creating and locking it: left alone.
    """
    try:
        if time.time() - os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime < 60:
            return
        fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _unlink(folder, name)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(folder: int, name: str) -> None:
    """Remove ``name`` from the folder open as ``folder`` (gone already is fine)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)
