"""Creating a new database directory: one way, one durability rule.

Every operation that writes a new database (build, merge into a new directory, set
operations) goes through :func:`new_database`:

1. the path is refused if it exists (left untouched) or its parent folder is missing;
2. the directory is created with a catalog in state ``building``, which refuses to open,
   so a writer killed at any point leaves a directory that says it is incomplete;
3. the operation writes its data files into :attr:`NewDatabase.root`;
4. :meth:`NewDatabase.commit`: every file, then every directory, made durable, then the one
   catalog transaction that names the files and marks the database ready;
5. on any failure before the commit ends, the directory is removed.

With ``staged=True`` (merge into a new directory, possibly replacing a database with
``force``) the database is written into a staging folder next to the target and moved into
place only once committed: renamed, or atomically exchanged with the database it replaces.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import lmdb
import msgpack

from kmerdb.config import Config
from kmerdb.errors import AbandonedBuildError, DatabaseExistsError, DiskFullError, InvalidParameterError, KmerDBError
from kmerdb.store.catalog import CATALOG_DIR, Catalog, CatalogWriter, _check_catalog_size
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.lock import WriterLock
from kmerdb.store.storage import fsync_dir, sync_tree

__all__ = ["NewDatabase", "new_database", "make_database_dir", "check_new_path"]


def check_new_path(path: str, argument: str = "path") -> None:
    """Refuse a path whose parent folder does not exist."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InvalidParameterError(argument, path, "its parent folder does not exist")


def make_database_dir(path: str, argument: str = "path", force: bool = False) -> None:
    """Create the directory of a new database; refuse an existing path (left untouched).

    The remains of a build that never finished (a catalog in state ``building`` whose
    writer lock nobody holds) are removed first when ``force`` is given, else refused
    with :class:`~kmerdb.errors.AbandonedBuildError`.
    """
    check_new_path(path, argument)
    try:
        os.mkdir(path)
        return
    except FileExistsError:
        if not _is_unfinished_build(path):
            raise DatabaseExistsError(path) from None
    if not force:
        raise AbandonedBuildError(path)
    # a build still running holds the lock: LockedError, and its directory is left alone
    lock = WriterLock(path).acquire(False)
    try:
        shutil.rmtree(path)
    finally:
        lock.release()
    os.mkdir(path)


def _is_unfinished_build(path: str) -> bool:
    """Whether ``path`` is a database directory whose catalog says ``building``."""
    cat_dir = os.path.join(path, CATALOG_DIR)
    if os.path.islink(path) or not os.path.isfile(os.path.join(cat_dir, "data.mdb")):
        return False
    # read without LMDB's lock file, so that a refused path is left untouched (not even
    # lock.mdb); after a size check, so that a truncated catalog is no SIGBUS here either
    try:
        _check_catalog_size(os.path.join(cat_dir, "data.mdb"))
        env = lmdb.open(cat_dir, subdir=True, readonly=True, lock=False, create=False)
    except (KmerDBError, lmdb.Error):
        return False
    try:
        with env.begin() as txn:
            raw = txn.get(b"state")
        record = msgpack.unpackb(raw) if raw is not None else None
    except (lmdb.Error, ValueError, msgpack.UnpackException):
        return False
    finally:
        env.close()
    return isinstance(record, dict) and record.get("state") == "building"


class NewDatabase:
    """A database being created; see :func:`new_database`.

    Attributes
    ----------
    path : str
        Where the database will be.
    root : str
        Where its files are written now: ``path``, or the staging folder.
    catalog : Catalog
        Its catalog, in state ``building`` until :meth:`commit`.
    """

    def __init__(self, path: str, root: str, catalog: Catalog, lock: WriterLock | None = None) -> None:
        self.path = path
        self.root = root
        self.catalog: Catalog | None = catalog
        self.committed = False
        # held while the database is built, so that a build still running is never taken
        # for the remains of a killed one (see make_database_dir)
        self._lock = lock

    @contextmanager
    def commit(self) -> Iterator[CatalogWriter]:
        """Make every file durable, then write the catalog in the one transaction yielded."""
        if self.catalog is None:
            raise RuntimeError("this database is committed already")
        sync_tree(self.root)  # files and directories durable before the catalog names them
        crashpoint("new.synced")
        with self.catalog.write() as writer:
            yield writer
            crashpoint("new.lmdb")
        crashpoint("new.committed")
        self.catalog.close()
        self.catalog = None
        fsync_dir(self.root)
        self.committed = True
        if self._lock is not None:
            self._lock.release()

    def _discard(self) -> None:
        if self.catalog is not None:
            self.catalog.close()
            self.catalog = None
        shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()


def _staging_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.merge-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned_staging(path: str) -> None:
    """Remove staging folders for ``path`` whose process is gone."""
    parent = os.path.dirname(os.path.abspath(path))
    prefix = _staging_prefix(path)
    for name in os.listdir(parent):
        if name.startswith(prefix):
            pid = name[len(prefix) :].split(".")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def _install(staging: str, path: str) -> None:
    """Move a committed staging folder to ``path``, replacing what is there atomically."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path):
        if _exchange(staging, path):
            crashpoint("merge.swapped")
            shutil.rmtree(staging, ignore_errors=True)
        else:
            aside = f"{staging}.replaced"
            os.rename(path, aside)
            os.rename(staging, path)
            shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(staging, path)
    fsync_dir(parent)


@contextmanager
def new_database(
    path: str, config: Config, *, argument: str = "path", staged: bool = False, force: bool = False
) -> Iterator[NewDatabase]:
    """Create a new database at ``path`` for the block to fill and commit.

    Parameters
    ----------
    path : str
        The database directory.  Without ``staged`` it must not exist.
    config : Config
        Written into the new catalog.
    argument : str
        The argument's name, for error messages.
    staged : bool
        Write into a staging folder next to ``path`` and move it there once committed,
        replacing a database at ``path`` (the caller decides whether one may be replaced).
    force : bool
        Without ``staged``: remove the remains of a build of ``path`` that never finished
        (else they are refused with :class:`~kmerdb.errors.AbandonedBuildError`).

    Yields
    ------
    NewDatabase
        Write files under ``.root``; call ``.commit()`` once.  If the block raises, or
        ends without committing, the directory (or staging folder) is removed.

    Raises
    ------
    DatabaseExistsError
        ``path`` exists (without ``staged``).
    InvalidParameterError
        The parent folder of ``path`` does not exist.
    """
    path = os.fspath(path)
    if staged:
        check_new_path(path, argument)
        _remove_abandoned_staging(path)
        root = os.path.join(os.path.dirname(os.path.abspath(path)), f"{_staging_prefix(path)}{os.getpid()}")
        shutil.rmtree(root, ignore_errors=True)
        os.mkdir(root)
    else:
        make_database_dir(path, argument, force=force)
        root = path
    db: NewDatabase | None = None
    lock: WriterLock | None = None
    try:
        if not staged:
            lock = WriterLock(root).acquire(False)
        try:
            catalog = Catalog.create(root, config)
        except Exception as exc:
            full = DiskFullError.from_error(exc, os.path.join(path, "catalog"))
            if full is None or full is exc:
                raise
            raise full from None
        db = NewDatabase(path, root, catalog, lock)
        yield db
        if not db.committed:
            raise RuntimeError("a new database was left without its commit")
        if staged:
            crashpoint("merge.committed")
            _install(root, path)
    except BaseException:
        if db is not None:
            db._discard()
        else:
            shutil.rmtree(root, ignore_errors=True)
            if lock is not None:
                lock.release()
        raise
