"""Transactions: the one way to change a database in place.

::

    with kmerdb.open(path, mode="a") as db:
        with db.transaction():
            db.append_genome("ecoli", "ecoli.fna.gz")
            db.remove_genome("old")
        # committed here, as one new generation; an exception rolls everything back

A transaction holds the writer lock (:class:`~kmerdb.lock.WriterLock`) from start to end.
Each operation writes new immutable files and stages a new working snapshot; the handle
sees its own staged changes.  ``commit`` makes the new files durable (one sync of the file
system and of every folder) and then writes the whole new snapshot, the record of the superseded generation's files and one
history record per operation in one LMDB write transaction: the new generation exists
from that instant, and not a moment before.  ``rollback`` (and a commit that fails before
that instant) removes every file the transaction wrote.  A writer killed at any moment
leaves its files unreferenced; the next writer removes them (see docs/transactions.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from kmerdb.errors import IncompleteDatabaseError, TransactionError
from kmerdb.store.catalog import Catalog, Snapshot
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.lock import WriterLock
from kmerdb.store.storage import sync_tree

__all__ = ["Transaction"]


class Transaction:
    """A write transaction on a handle opened with ``mode="a"``.  Use ``db.transaction()``.

    Attributes
    ----------
    base : Snapshot
        The committed snapshot the transaction started from.
    snapshot : Snapshot
        The working snapshot, with every staged operation applied.
    generation : int
        The generation it commits (``base.generation + 1``).
    """

    def __init__(self, db, wait: bool | float = False) -> None:
        from kmerdb.ops.maintenance import remove_unreferenced

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
                db._switch(self.base, committed=True)
        except BaseException:
            self._close(clean=True)
            raise
        self.snapshot = self.base
        self.generation = self.base.generation + 1

    # -- staging ---------------------------------------------------------------------------
    def _protected(self) -> set[str]:
        """Files no writer may remove: the committed generation and every recorded one."""

        keep = self.base.file_paths()
        for files in self._catalog.generations().values():
            keep.update(files)
        return keep

    def apply(self, operation: Callable[[Snapshot, int], tuple[Snapshot, dict]], command: str) -> Snapshot:
        """Run ``operation(working snapshot, generation) -> (new snapshot, history args)`` and stage it.

        If the operation fails, the files it wrote are removed and the working snapshot
        stays as it was; the transaction may go on.
        """
        from kmerdb.ops.maintenance import remove_unreferenced

        if self.state != "active":
            raise TransactionError(f"transaction is {self.state}; start a new one")
        try:
            new, args = operation(self.snapshot, self.generation)
        except BaseException:
            try:
                remove_unreferenced(self.root, self._protected() | self._staged_files | self.snapshot.file_paths())
            except Exception:
                pass
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
        self.db._switch(self.snapshot, committed=False)

    # -- end -------------------------------------------------------------------------------
    def commit(self) -> int:
        """Commit every staged operation as one new generation; returns the handle's generation."""
        from kmerdb.ops.maintenance import remove_unreferenced

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
            with self._catalog.write() as w:
                if w.current_generation() != self.base.generation:
                    raise TransactionError(f"{self.root}: the catalog moved on under the writer lock")
                w.put_snapshot(new)
                if not w.has_generation(self.base.generation):
                    w.put_generation(self.base.generation, base_files)
                for command, args in self.ops:
                    w.add_history(command, args, new.generation)
                crashpoint("txn.lmdb")
        except BaseException:
            self.rollback()
            raise
        self.state = "committed"
        crashpoint("txn.committed")
        try:
            self.db._switch(new, committed=True)
            # files written and superseded inside this transaction: no reader ever saw them
            remove_unreferenced(self.root, self._protected_after(new), only=self._staged_files - new.file_paths())
            crashpoint("txn.cleaned")
        finally:
            self._close(clean=True)
        return new.generation

    def _protected_after(self, new: Snapshot) -> set[str]:

        keep = new.file_paths()
        for files in self._catalog.generations().values():
            keep.update(files)
        return keep

    def rollback(self) -> None:
        """Abandon every staged operation and remove the files they wrote."""
        from kmerdb.ops.maintenance import remove_unreferenced

        if self.state in ("committed", "rolled back"):
            return
        self.state = "rolled back"
        clean = True
        try:
            self.db._switch(self.base, committed=True)
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
        if self.db._txn is self:
            self.db._txn = None

    # -- operations ------------------------------------------------------------------------
    def append_genomes(
        self,
        genomes: Mapping[str, object] | Sequence,
        rename_duplicates: bool = False,
        threads: int | None = None,
        progress=None,
    ) -> Snapshot:
        """Add genomes read from FASTA/FASTQ files (``label -> path(s)``)."""
        from kmerdb.ops.merge import add_input_genomes

        return self.apply(
            lambda snap, gen: add_input_genomes(self.root, snap, gen, genomes, rename_duplicates, threads, progress),
            "append",
        )

    def merge(
        self,
        sources: Sequence[str | os.PathLike],
        rename_duplicates: bool = False,
        threads: int | None = None,
        progress=None,
    ) -> Snapshot:
        """Add the genomes of other databases."""
        from kmerdb.ops.merge import add_database_genomes

        if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "snapshot"):
            sources = [sources]
        return self.apply(
            lambda snap, gen: add_database_genomes(self.root, snap, gen, sources, rename_duplicates, threads, progress),
            "merge",
        )

    def remove_genomes(self, labels: Sequence[str] | str) -> Snapshot:
        """Remove genomes by label."""
        from kmerdb.ops.merge import remove_genomes

        return self.apply(lambda snap, gen: remove_genomes(snap, gen, labels), "remove")

    def compact(self, threads: int | None = None, progress=None) -> Snapshot:
        """Rewrite every partition into one layer with one column group."""
        from kmerdb.ops.merge import compact_snapshot

        return self.apply(lambda snap, gen: compact_snapshot(self.root, snap, gen, threads, progress), "compact")

    def __repr__(self) -> str:
        return f"<kmerdb.Transaction {self.root!r} gen {self.base.generation}->{self.generation} {self.state}>"
