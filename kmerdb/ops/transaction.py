"""Transactions: the one way to change a database in place.

::

    with kmerdb.open(path, mode="a") as db:
        with db.transaction() as txn:
            db.append_genome("ecoli", "ecoli.fna.gz")
            db.remove_genome("old")
        # committed here, as one new generation; an exception rolls everything back

A :class:`Transaction` is its own context manager, as py-lmdb's is: it begins when
``db.transaction()`` returns it, commits on a clean exit from the ``with`` block and rolls
back on an exception.  Outside a block, :meth:`Transaction.commit` and
:meth:`Transaction.rollback` end it.  A transaction that has ended cannot be entered or
used again, and a handle has at most one open transaction.
A transaction holds the writer lock (:class:`~kmerdb.store.lock.WriterLock`) from start to end.
Each operation writes new immutable files and stages a new working snapshot; the handle
sees its own staged changes.  ``commit`` makes the new files durable (one sync of the file
system and of every folder) and then writes the whole new snapshot, the record of the superseded generation's files and one
history record per operation in one LMDB write transaction: the new generation exists
from that instant, and not a moment before.  ``rollback`` (and a commit that fails before
that instant) removes every file the transaction wrote.  A writer killed at any moment
leaves its files unreferenced; the next writer removes them (see docs/transactions.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from kmerdb.errors import DiskFullError, IncompleteDatabaseError, TransactionError
from kmerdb.ops.add import add_database_genomes, add_input_genomes
from kmerdb.ops.compact import compact_snapshot, remove_genomes
from kmerdb.ops.maintenance import remove_unreferenced
from kmerdb.ops.reindex import reindex_snapshot
from kmerdb.store.catalog import Catalog, Snapshot
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.lock import WriterLock
from kmerdb.store.storage import sync_tree

if TYPE_CHECKING:  # the handle imports this module
    from kmerdb.database import Database

__all__ = ["Transaction"]


class Transaction:
    """A write transaction on a handle opened with ``mode="a"``.  Use ``db.transaction()``.

    ``with db.transaction() as txn:`` commits when the block ends and rolls back if it
    raises; the transaction holds the writer lock from the moment it is created until it
    commits or rolls back.

    Attributes
    ----------
    base : Snapshot
        The committed snapshot the transaction started from.
    snapshot : Snapshot
        The working snapshot, with every staged operation applied.
    generation : int
        The generation it commits (``base.generation + 1``).
    """

    def __init__(self, db: Database, wait: bool | float = False) -> None:
        self.db = db
        self.root = db.path
        self._lock = WriterLock(self.root).acquire(wait)
        self._catalog: Catalog | None = None
        self.ops: list[tuple[str, dict]] = []
        self._staged_files: set[str] = set()
        self.state = "active"
        try:
            crashpoint("txn.locked")
            self._catalog = Catalog.open(self.root, readonly=False)
            self.base = self._catalog.read()
            if self.base.state != "ready":
                raise IncompleteDatabaseError(self.root, self.base.state)
            if self._lock.previous_crashed:
                # the previous writer died mid-operation: clear the files it left behind
                remove_unreferenced(self.root, self._protected())
            if self.base.generation != db.generation:
                db.set_snapshot(self.base)  # another writer committed since the handle opened
        except BaseException:
            self._close(clean=True)
            raise
        self.snapshot = self.base
        self.generation = self.base.generation + 1

    @property
    def active(self) -> bool:
        """True until the transaction commits or rolls back."""
        return self.state == "active"

    def __enter__(self) -> Transaction:
        if self.state != "active":
            raise TransactionError(f"transaction is {self.state}; start a new one")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Commit if the block ended cleanly, roll back if it raised (the exception goes on).

        A transaction the block already committed or rolled back is left as it is.
        """
        if self.state != "active":
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    # -- staging ---------------------------------------------------------------------------
    def _protected(self) -> set[str]:
        """Files no writer may remove: the committed generation and every recorded one."""

        return self._with_recorded(self.base)

    def _with_recorded(self, snapshot: Snapshot) -> set[str]:
        """The files of ``snapshot`` and of every generation the catalog records."""
        keep = snapshot.file_paths()
        for files in self._open_catalog().generations().values():
            keep.update(files)
        return keep

    def _open_catalog(self) -> Catalog:
        if self._catalog is None:
            raise TransactionError(f"transaction is {self.state}; its catalog is closed")
        return self._catalog

    def apply(self, operation: Callable[[Snapshot, int], tuple[Snapshot, dict]], command: str) -> Snapshot:
        """Run ``operation(working snapshot, generation) -> (new snapshot, history args)`` and stage it.

        If the operation fails, the files it wrote are removed and the working snapshot
        stays as it was; the transaction may go on.
        """
        if self.state != "active":
            raise TransactionError(f"transaction is {self.state}; start a new one")
        try:
            new, args = operation(self.snapshot, self.generation)
        except BaseException:
            # best effort: the error that matters is the operation's; the next writer cleans up
            with contextlib.suppress(Exception):
                remove_unreferenced(self.root, self._protected() | self._staged_files | self.snapshot.file_paths())
            raise
        if new is self.snapshot:
            return new  # nothing to do (e.g. compact of a compact index)
        self.stage(new, command, args)
        return new

    def stage(self, snapshot: Snapshot, command: str, args: dict) -> None:
        """Make ``snapshot`` the working snapshot, recording ``command`` in the history."""

        if self.state != "active":
            raise TransactionError(f"transaction is {self.state}; start a new one")
        self.snapshot = snapshot.with_changes(generation=self.generation, state="ready")
        self._staged_files |= self.snapshot.file_paths()
        self.ops.append((command, args))
        self.db.set_snapshot(self.snapshot, staged=True)

    # -- end -------------------------------------------------------------------------------
    def commit(self) -> int:
        """Commit every staged operation as one new generation; returns the handle's generation."""
        if self.state != "active":
            raise TransactionError(f"transaction is {self.state}; cannot commit it")
        if not self.ops:
            self.state = "committed"
            self._close(clean=True)
            return self.base.generation
        new = self.snapshot
        try:
            crashpoint("txn.commit")
            base_files = self.base.file_paths()
            # the operations' files were written without a per-file fsync: one sync of the
            # file system and of every folder makes them (and their names) durable
            sync_tree(self.root)
            crashpoint("txn.fsynced")
            with self._open_catalog().write() as w:
                if w.current_generation() != self.base.generation:
                    raise TransactionError(f"{self.root}: the catalog moved on under the writer lock")
                w.put_snapshot(new)
                if not w.has_generation(self.base.generation):
                    w.put_generation(self.base.generation, base_files)
                for command, args in self.ops:
                    w.add_history(command, args, new.generation)
                crashpoint("txn.lmdb")
        except BaseException as exc:
            self.rollback()
            full = DiskFullError.from_error(exc, os.path.join(self.root, "catalog")) if isinstance(exc, Exception) else None
            if full is not None and full is not exc:
                raise full from None  # LMDB aborts a failed commit: the previous generation stands
            raise
        self.state = "committed"
        crashpoint("txn.committed")
        try:
            self.db.set_snapshot(new)
            # files written and superseded inside this transaction: no reader ever saw them
            remove_unreferenced(self.root, self._with_recorded(new), only=self._staged_files - new.file_paths())
            crashpoint("txn.cleaned")
        finally:
            self._close(clean=True)
        return new.generation

    def rollback(self) -> None:
        """Abandon every staged operation and remove the files they wrote."""
        if self.state in ("committed", "rolled back"):
            return
        self.state = "rolled back"
        clean = True
        try:
            self.db.set_snapshot(self.base)
            remove_unreferenced(self.root, self._protected())
        except Exception:
            clean = False  # the next writer finishes the clean-up
            raise
        finally:
            self._close(clean=clean)

    def _close(self, clean: bool) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        self._lock.release(clean=clean)

    # -- operations ------------------------------------------------------------------------
    def append_genomes(
        self,
        genomes: Mapping[str, object] | Sequence,
        rename_duplicates: bool = False,
        threads: int | None = None,
        progress=None,
        *,
        scheduler=None,
        min_count: int = 1,
    ) -> Snapshot:
        """Add genomes read from FASTA/FASTQ files (``label -> path(s)``); ``min_count`` as in
        :func:`kmerdb.build`."""
        return self.apply(
            lambda snap, gen: add_input_genomes(
                self.root, snap, gen, genomes, rename_duplicates, threads, progress, scheduler=scheduler,
                min_count=min_count,
            ),
            "append",
        )

    def merge(
        self,
        sources: str | os.PathLike | Sequence[str | os.PathLike],
        rename_duplicates: bool = False,
        threads: int | None = None,
        progress=None,
        *,
        scheduler=None,
    ) -> Snapshot:
        """Add the genomes of other databases."""
        # one source (a path, or an open Database) or several
        listed: list = [sources] if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "snapshot") else list(sources)
        return self.apply(
            lambda snap, gen: add_database_genomes(
                self.root, snap, gen, listed, rename_duplicates, threads, progress, scheduler=scheduler
            ),
            "merge",
        )

    def remove_genomes(self, labels: Sequence[str] | str) -> Snapshot:
        """Remove genomes by label."""
        return self.apply(lambda snap, gen: remove_genomes(snap, gen, labels), "remove")

    def compact(self, threads: int | None = None, progress=None, *, scheduler=None) -> Snapshot:
        """Rewrite every partition into one layer with one column group."""
        return self.apply(
            lambda snap, gen: compact_snapshot(self.root, snap, gen, threads, progress, scheduler=scheduler), "compact"
        )

    def reindex(
        self,
        evidence: str,
        fp_bits: int | None = None,
        z: int | None = None,
        threads: int | None = None,
        progress=None,
        *,
        scheduler=None,
    ) -> dict:
        """Rebuild the evidence of every layer from its unitigs (see :meth:`kmerdb.Database.reindex`).

        Returns
        -------
        dict
            The new ``evidence``, ``fp_bits``, ``z`` and ``layers_rewritten``.
        """
        done: dict = {}

        def operation(snap: Snapshot, generation: int) -> tuple[Snapshot, dict]:
            new, args = reindex_snapshot(
                self.root, snap, generation, evidence, fp_bits, z, threads, progress, scheduler=scheduler
            )
            done.update(args)
            return new, args

        self.apply(operation, "reindex")
        return done

    def __repr__(self) -> str:
        return f"<kmerdb.Transaction {self.root!r} gen {self.base.generation}->{self.generation} {self.state}>"
