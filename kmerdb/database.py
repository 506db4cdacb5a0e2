"""The database handle: ``kmerdb.open(path)``.

A handle reads the catalog once, in one read transaction, and memory-maps every data
file the catalog names: that is its snapshot.  Data files are never modified, so a
handle keeps answering from its snapshot whatever commits later, until it is refreshed
or reopened; it is registered as a reader of its generation so that a vacuum keeps those
files.  A read handle may be shared between threads for queries; in another process, open
the database again (after ``fork`` too).  A handle opened with ``mode="a"`` also writes,
through ``with db.transaction():`` (see :mod:`kmerdb.ops.transaction` and docs/transactions.md).

The handle keeps the life cycle and the snapshots; it delegates lookups and queries to a
:class:`~kmerdb.query.engine.QueryEngine` over the opened layers of its snapshot, writes to
its :class:`~kmerdb.ops.transaction.Transaction`, and comparisons to
:mod:`kmerdb.analysis.analytics`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from kmerdb.analysis import analytics
from kmerdb.config import Config
from kmerdb.core.unitigs import write_unitigs
from kmerdb.errors import (
    GenomeNotFoundError,
    IncompleteDatabaseError,
    InvalidParameterError,
    InvalidTypeError,
    KmerDBError,
    ReadOnlyError,
    TransactionError,
)
from kmerdb.ops import setops
from kmerdb.ops.export import open_output
from kmerdb.ops.maintenance import data_files
from kmerdb.ops.reindex import ReindexReport
from kmerdb.ops.transaction import Transaction
from kmerdb.params import path_argument
from kmerdb.query.engine import QueryEngine, QueryResult
from kmerdb.store.catalog import Catalog, GenomeRecord, Snapshot, read_as_reader
from kmerdb.store.layer import Layer
from kmerdb.store.lock import ReaderRegistration
from kmerdb.store.structures import structure_stats, unitig_summary

__all__ = ["Database", "QueryResult", "open_database"]

#: (k-mer, genome) cells of one block of :meth:`Database.iter_rows` (the rows of a dump).
ROW_BLOCK_CELLS = 1 << 24


class Database:
    """A handle on a kmerdb database.  Use :func:`kmerdb.open`.

    Read-only (``mode="r"``) or writable (``mode="a"``: changes go through
    :meth:`transaction`).  The handle answers from the generation it opened until
    :meth:`refresh` or its own commit moves it; it releases the catalog once it has read it.
    """

    def __init__(
        self, path: str, snapshot: Snapshot, mode: str = "r", registration: ReaderRegistration | None = None
    ) -> None:
        if snapshot.state != "ready":
            raise IncompleteDatabaseError(path, snapshot.state)
        self.path = path
        self.mode = mode
        self.snapshot = snapshot
        self._registration = registration
        self._txn: Transaction | None = None
        self._closed = False
        # the snapshot whose layers are open, and the engine over them; a query of another
        # thread may be opening them at the same moment
        self._opened: tuple[Snapshot, QueryEngine] | None = None
        self._open_lock = threading.RLock()
        if mode != "a":
            self._open(snapshot)  # a writer often only writes: it opens layers when something reads them
        if registration is not None:
            registration.set(snapshot.generation)

    # -- snapshots -------------------------------------------------------------------------
    def _open(self, snapshot: Snapshot) -> QueryEngine:
        """Open the layers of ``snapshot`` and make them the ones the handle reads.

        Called from the constructor, or with ``_open_lock`` held.
        """
        if snapshot.state != "ready":
            raise IncompleteDatabaseError(self.path, snapshot.state)
        column_of = {g.id: i for i, g in enumerate(snapshot.genomes)}
        layers = [[Layer(self.path, rec, column_of) for rec in part] for part in snapshot.partitions]
        for part in layers:
            for layer in part:
                layer.check_config(snapshot.config)  # headers only: the k and evidence the config says
        engine = QueryEngine(snapshot.config, snapshot.labels, layers)
        with self._open_lock:
            previous, self._opened = self._opened, (snapshot, engine)
        if previous is not None:
            previous[1].close()  # its workers read the layers opened before
        return engine

    def _engine(self) -> QueryEngine:
        """The query engine over the handle's snapshot, opening its layers if they are not yet."""
        with self._open_lock:
            opened = self._opened
            if opened is not None and opened[0] is self.snapshot:
                return opened[1]
            if self._closed:
                return QueryEngine(self.snapshot.config, self.snapshot.labels, [])
            return self._open(self.snapshot)

    @property
    def layers(self) -> list[list[Layer]]:
        """The opened layers of every partition, in partition order (opened when first needed)."""
        return self._engine().layers

    def set_snapshot(self, snapshot: Snapshot, staged: bool = False) -> None:
        """Read ``snapshot`` from now on: how the handle's transaction moves it.

        Parameters
        ----------
        snapshot : Snapshot
            A committed generation (the one a transaction starts from, commits, or rolls
            back to) or, with ``staged``, the working snapshot of the open transaction.
        staged : bool
            A working snapshot is opened only when something reads its layers, so that
            staging and committing an operation does not open every layer twice; the reader
            registration keeps announcing the committed generation.
        """
        if staged:
            self.snapshot = snapshot
            return
        if self._registration is not None:
            self._registration.set(None)  # between generations: vacuum keeps them all
        with self._open_lock:
            current, opened = self.snapshot, self._opened
            self.snapshot = snapshot
            # a handle that reads opens another generation now (not one it is already moving to)
            if opened is not None and opened[0] is not snapshot and snapshot is not current and not self._closed:
                self._open(snapshot)
        if self._registration is not None:
            self._registration.set(snapshot.generation)

    def refresh(self) -> bool:
        """Move to the latest committed generation; True if it changed.

        A handle keeps answering from the generation it opened (its snapshot) whatever
        commits later, until it refreshes or is reopened.
        """
        if self._active_transaction() is not None:
            raise TransactionError("cannot refresh inside a transaction")
        catalog = Catalog.open(self.path, readonly=True)
        try:
            if catalog.generation() == self.generation:
                return False
            if self._registration is not None:
                self._registration.set(None)
            snapshot = catalog.read()
        finally:
            catalog.close()
        self.set_snapshot(snapshot)
        return True

    # -- writes ----------------------------------------------------------------------------
    def _active_transaction(self) -> Transaction | None:
        txn = self._txn
        return txn if txn is not None and txn.active else None

    def transaction(self, wait: bool | float = False) -> Transaction:
        """Begin a write transaction: ``with db.transaction() as txn: ...`` commits at the end
        of the block, or rolls back if it raises.

        Takes the writer lock (one writer at a time) at once: with ``wait`` False a second
        writer gets :class:`~kmerdb.errors.LockedError`; True waits for the lock, a number
        waits at most that many seconds.  Until the transaction ends, :meth:`append_genome`,
        :meth:`merge`, :meth:`remove_genome`, :meth:`compact` and :meth:`reindex` stage
        changes that commit together as one new generation; the handle sees them as they
        are staged.  Outside a ``with`` block, end it with ``commit()`` or ``rollback()``.

        Raises
        ------
        ReadOnlyError
            The handle was opened read-only.
        TransactionError
            A transaction of this handle is already open.
        LockedError
        """
        if self.mode != "a":
            raise ReadOnlyError(f"{self.path}: opened read-only; open it with mode='a' to write")
        if self._active_transaction() is not None:
            raise TransactionError("a transaction is already open on this handle (they do not nest)")
        if not isinstance(wait, (bool, int, float)) or (not isinstance(wait, bool) and wait < 0):
            raise InvalidParameterError("wait", wait, "expected True, False or a number of seconds >= 0")
        self._txn = Transaction(self, wait)
        return self._txn

    def _writing(self) -> Transaction:
        if self.mode != "a":
            raise ReadOnlyError(f"{self.path}: opened read-only; open it with mode='a' to write")
        txn = self._active_transaction()
        if txn is None:
            raise TransactionError("writes happen inside 'with db.transaction():'")
        return txn

    def append_genome(
        self,
        label: str,
        paths,
        rename_duplicates: bool = False,
        threads: int | None = None,
        progress=None,
        *,
        scheduler=None,
        min_count: int = 1,
    ) -> None:
        """Add one genome read from FASTA/FASTQ ``paths`` (a path or a list), in a transaction.

        Its column holds counts or presence as the index keeps them.  ``scheduler`` (a Dask
        address or ``distributed.Client``) runs the tasks on a cluster, here and in every
        operation that takes it (see docs/cluster.md).  ``min_count``: k-mers seen fewer
        times in the genome's inputs are not indexed for it (as in :func:`kmerdb.build`).
        """
        self._writing().append_genomes(
            {label: paths}, rename_duplicates, threads, progress, scheduler=scheduler, min_count=min_count
        )

    def append_genomes(
        self,
        genomes,
        rename_duplicates: bool = False,
        threads: int | None = None,
        progress=None,
        *,
        scheduler=None,
        min_count: int = 1,
    ) -> None:
        """Add several genomes (``label -> path(s)``, or :class:`GenomeInput` s) as one operation;
        ``min_count`` as in :meth:`append_genome`."""
        self._writing().append_genomes(
            genomes, rename_duplicates, threads, progress, scheduler=scheduler, min_count=min_count
        )

    def merge(
        self, sources, rename_duplicates: bool = False, threads: int | None = None, progress=None, *, scheduler=None
    ) -> None:
        """Add the genomes of other databases (a path or a list of paths), in a transaction."""
        self._writing().merge(sources, rename_duplicates, threads, progress, scheduler=scheduler)

    def remove_genome(self, label) -> None:
        """Remove a genome (or a list of labels), in a transaction.

        Its column stops being part of the index at once; the k-mers no genome holds any more
        are dropped, and the bytes reclaimed, by the next :meth:`compact` and vacuum.
        """
        self._writing().remove_genomes(label)

    def compact(self, threads: int | None = None, progress=None, *, scheduler=None) -> None:
        """Rewrite each partition into one layer with one column group, in a transaction."""
        self._writing().compact(threads, progress, scheduler=scheduler)

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
        """Rebuild the evidence of every layer from its unitigs, in a transaction.

        ``evidence`` is ``"exact"`` or ``"approx"`` (with ``fp_bits`` 1..32 and ``z`` >= 0,
        defaulting to the current ones or 8 and 0).  MPHFs, unitigs and columns are kept;
        a change of ``z`` alone writes no file.  Exact -> approx -> exact gives lookups
        equal to the original's.  See :mod:`kmerdb.ops.reindex`.

        Returns
        -------
        dict
            The new ``evidence``, ``fp_bits``, ``z`` and ``layers_rewritten``.
        """
        return self._writing().reindex(evidence, fp_bits, z, threads, progress, scheduler=scheduler)

    def history(self) -> list:
        """Committed operations, oldest first (:class:`kmerdb.HistoryRecord`)."""
        catalog = Catalog.open(self.path, readonly=True)
        try:
            return catalog.history()
        finally:
            catalog.close()

    # -- description -------------------------------------------------------------------
    @property
    def config(self) -> Config:
        """The index configuration (:class:`kmerdb.Config`)."""
        return self.snapshot.config

    @property
    def genomes(self) -> tuple[str, ...]:
        """Genome labels in column order."""
        return self.snapshot.labels

    @property
    def genome_records(self) -> tuple[GenomeRecord, ...]:
        """Full genome records (sources, k-mer counts, spectrum) in column order."""
        return self.snapshot.genomes

    @property
    def generation(self) -> int:
        """The committed generation this handle reads."""
        return self.snapshot.generation

    @property
    def n_kmers(self) -> int:
        """Distinct canonical k-mers in the index."""
        return sum(layer.n for layers in self.layers for layer in layers)

    def genome(self, label: str) -> GenomeRecord:
        """The record of one genome by label."""
        for g in self.snapshot.genomes:
            if g.label == label:
                return g
        raise GenomeNotFoundError(label)

    def info(self) -> dict:
        """A summary: configuration, genomes, sizes on disk and bits per k-mer.

        ``bytes_on_disk`` is everything under the directory; ``live_bytes`` the data files of
        this handle's generation; ``reclaimable_bytes`` the data files on disk it does not name
        (older generations', removed genomes', compactions', killed writers'), which a vacuum
        removes once no open reader holds their generation.
        """
        n = self.n_kmers
        disk = _dir_size(self.path)
        live_files = self.snapshot.file_paths()
        live = reclaimable = 0
        for rel in data_files(self.path):
            with contextlib.suppress(OSError):  # removed by a vacuum meanwhile
                size = os.path.getsize(os.path.join(self.path, rel))
                if rel in live_files:
                    live += size
                else:
                    reclaimable += size
        sizes: dict[str, int] = {}
        for layers in self.snapshot.partitions:
            for layer in layers:
                for role, ref in layer.files.items():
                    sizes[role] = sizes.get(role, 0) + ref.nbytes
                for g in layer.groups:
                    sizes["columns"] = sizes.get("columns", 0) + g.file.nbytes
        return {
            "path": self.path,
            "format_version": self.snapshot.format_version,
            "generation": self.generation,
            "config": self.config.to_record(),
            "n_genomes": len(self.genomes),
            "n_kmers": n,
            "n_layers": sum(len(layers) for layers in self.layers),
            "bytes_on_disk": disk,
            "live_bytes": live,
            "reclaimable_bytes": reclaimable,
            "bits_per_kmer": (8 * disk / n) if n else 0.0,
            "structures": {role: {"bytes": b, "bits_per_kmer": (8 * b / n) if n else 0.0} for role, b in sizes.items()},
            "unitigs": unitig_summary(layer for layers in self.layers for layer in layers),
            "genomes": [
                {
                    "label": g.label,
                    "n_kmers": g.n_kmers,
                    "total": g.total,
                    "min_count": g.min_count,
                    "sources": list(g.sources),
                }
                for g in self.snapshot.genomes
            ],
        }

    def export_unitigs(self, out, genome: str | None = None) -> tuple[int, int]:
        """Write the unitigs of every layer as FASTA (one line per unitig).

        Parameters
        ----------
        out : str, PathLike or binary file
            Destination file (created or truncated; gzip-compressed when its name ends in
            ``.gz``) or an open binary stream.
        genome : str, optional
            Only the k-mers of this genome, compacted into maximal unitigs layer by layer.

        Returns
        -------
        (records, bases) : tuple of int

        Raises
        ------
        GenomeNotFoundError
        """
        if not isinstance(out, (str, os.PathLike)) and not callable(getattr(out, "write", None)):
            raise InvalidTypeError("out", out, "a path or a binary file open for writing")
        if isinstance(out, (str, os.PathLike)):
            with open_output(path_argument(out, "out")) as fh:
                return write_unitigs(self, fh, genome)
        return write_unitigs(self, out, genome)

    def stats(self, lengths: bool = True) -> dict:
        """Bits per k-mer of every structure (MPHF, evidence, unitigs, columns) and unitig figures.

        See :func:`kmerdb.store.structures.structure_stats`.
        """
        return structure_stats(self, lengths)

    # -- lookups and queries ----------------------------------------------------------
    def lookup(self, kmers: Iterable[str | bytes] | np.ndarray, counts: bool = False) -> np.ndarray:
        """Which genomes hold each k-mer.

        Parameters
        ----------
        kmers : sequence of str, or ndarray of uint64
            k-mers as ACGT strings of length k, or as 2-bit codes (A=0 C=1 G=2 T=3, first base
            most significant); either orientation, they are canonicalized.
        counts : bool
            Return occurrence counts (index built with counts) instead of presence.

        Returns
        -------
        ndarray, shape (n_kmers, n_genomes)
            bool presence, or uint32 counts.

        Raises
        ------
        InvalidParameterError
            A k-mer of the wrong length or with a non-ACGT base, a code >= 4**k, or
            ``counts=True`` on an index without counts.
        """
        if isinstance(kmers, (str, bytes)):
            kmers = [kmers]  # one k-mer, as query takes one sequence
        elif isinstance(kmers, np.ndarray):
            if kmers.dtype.kind not in "uiSUO":
                raise InvalidTypeError("kmers", kmers, "k-mer strings or an integer array of 2-bit codes")
            if kmers.dtype.kind == "O":
                kmers = _strings("kmers", kmers.ravel().tolist())
        else:
            kmers = _strings("kmers", kmers)
        return self._engine().lookup(kmers, _flag("counts", counts))

    def query(
        self,
        sequences: str | bytes | Sequence[str | bytes],
        names: Sequence[str] | None = None,
        threads: int = 1,
        z: int | None = None,
    ) -> QueryResult:
        """Which genomes hold the k-mers of each sequence, and how many.

        Parameters
        ----------
        sequences : str, bytes, or sequence of them
            DNA sequences; characters other than ACGT (any case) break k-mers.
        names : sequence of str, optional
            Names carried into the result.
        threads : int
            Ways to split the sequences: this thread and ``threads - 1`` worker processes
            the handle forks on first use and keeps until its snapshot changes or it is
            closed (see docs/embedding.md).  Calls under 256 Kbp run in this thread.
        z : int, optional
            Consecutive-hit rule: a position counts only inside a run of at least z+1
            consecutive found positions of its sequence (default: the index's z, 0 for exact
            evidence).  See docs/evidence.md for what it does at sequence ends and to true hits.

        Returns
        -------
        QueryResult
            ``hits[i, g]`` counts the k-mer positions of sequence i whose canonical k-mer is
            in genome g (and that pass the z rule); ``n_kmers[i]`` the valid positions;
            ``ratio`` their quotient; ``found_raw`` and ``found`` the positions found before
            and after the z rule.
        """
        if not isinstance(sequences, (str, bytes)):
            sequences = _strings("sequences", sequences)
        if names is not None:
            if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
                raise InvalidTypeError("names", names, "a sequence of str, one per sequence")
            names = list(names)
        return self._engine().query(sequences, names, threads, z)

    @property
    def query_workers(self) -> tuple[int, ...]:
        """Process ids of the handle's query workers (see :meth:`query`).

        Empty until a query with ``threads > 1`` starts them, and again once the handle's
        snapshot changed (the workers read the old one) or it is closed.
        """
        with self._open_lock:
            opened = self._opened
        return opened[1].worker_pids if opened is not None else ()

    def iter_kmers(self) -> Iterator[np.ndarray]:
        """Yield every canonical k-mer of the index as uint64 blocks (one per layer, sorted).

        The k-mers are decoded from the layers' unitigs, whatever the evidence kind.
        """
        for layers in self.layers:
            for layer in layers:
                yield np.sort(layer.unitig_kmers())

    def iter_rows(self, counts: bool | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (k-mers, rows) blocks covering the whole index, sorted within each layer.

        ``rows`` is (n, n_genomes): counts when the index keeps them (or ``counts=True``),
        else booleans.  A layer comes in blocks of about :data:`ROW_BLOCK_CELLS` cells (at
        least one k-mer each), one after the other in k-mer order, so memory stays bounded
        whatever the number of genomes.
        """
        counts = self.config.counts if counts is None else _flag("counts", counts)
        dtype = np.uint32 if counts else bool
        step = max(1, ROW_BLOCK_CELLS // max(1, len(self.genomes)))
        for layers in self.layers:
            for layer in layers:
                keys = layer.kmers()
                order = np.argsort(keys)
                for lo in range(0, layer.n, step):
                    slots = order[lo : lo + step]
                    out = np.zeros((slots.size, len(self.genomes)), dtype=dtype)
                    layer.fill_rows(slots, out, counts)
                    yield keys[slots], out

    # -- comparisons (kmerdb.analysis.analytics, kmerdb.ops.setops) -----------------------------------
    def col_weights(self, threads: int | None = None, max_memory: int | str | None = None, *, scheduler=None):
        """Distinct k-mers of every genome (and occurrences, with counts), from the columns.

        Parameters
        ----------
        threads : int, optional
            Worker processes (default: all CPUs).
        max_memory : int or str, optional
            Bounds the blocks of rows the workers read at once.
        scheduler : str or distributed.Client, optional
            Run the partition tasks on this Dask cluster instead (see docs/cluster.md).

        Returns
        -------
        kmerdb.analytics.ColWeights
            ``labels``, ``distinct`` and ``total`` (int64 arrays in column order).
        """
        return analytics.col_weights(self, threads=threads, max_memory=max_memory, scheduler=scheduler)

    def intersections(
        self, threads: int | None = None, max_memory: int | str | None = None, *, scheduler=None
    ) -> np.ndarray:
        """(G, G) int64 matrix of the distinct k-mers each pair of genomes shares.

        The diagonal holds each genome's distinct k-mers.  Computed partition by partition
        in worker processes from the distinct presence rows (colour classes).
        """
        return analytics.intersections(self, threads=threads, max_memory=max_memory, scheduler=scheduler)

    def distance(
        self, metric: str = "jaccard", threads: int | None = None, max_memory: int | str | None = None, *, scheduler=None
    ):
        """A labelled matrix of ``metric`` between every pair of genomes.

        Parameters
        ----------
        metric : {"jaccard", "jaccard-distance", "containment", "mash", "bray-curtis"}
            ``jaccard``: |A and B| / |A or B| (1 when both are empty); ``jaccard-distance``:
            1 - J; ``containment``: row genome's k-mers found in the column genome, divided
            by the row genome's k-mers; ``mash``: -1/k ln(2J / (1 + J)), 1 when J = 0;
            ``bray-curtis`` (counts index): 1 - 2 sum(min) / (sum A + sum B).
        threads, max_memory, scheduler
            As for :meth:`col_weights`.

        Returns
        -------
        kmerdb.analytics.DistanceMatrix
            ``metric``, ``labels`` and ``matrix``; ``.tree("nj")`` gives a Newick tree.
        """
        return analytics.distance(self, metric, threads=threads, max_memory=max_memory, scheduler=scheduler)

    def iter_distances(
        self,
        metric: str = "jaccard-distance",
        max_distance: float | None = None,
        nearest: int | None = None,
        threads: int | None = None,
        max_memory: int | str | None = None,
        *,
        scheduler=None,
    ):
        """Stream ``(label_a, label_b, value)`` pairs within ``max_distance`` and/or the
        ``nearest`` of each genome, without a dense matrix; see
        :func:`kmerdb.analytics.iter_distances`."""
        return analytics.iter_distances(
            self, metric, max_distance=max_distance, nearest=nearest, threads=threads, max_memory=max_memory,
            scheduler=scheduler,
        )

    def spectrum(
        self, genome: str | None = None, threads: int | None = None, *, scheduler=None
    ) -> dict[str, list[tuple[int, int]]]:
        """k-mer count histograms: label -> ascending ``(count, distinct k-mers)`` pairs.

        From the count columns on an index with counts; on a presence index, the spectra
        the catalog recorded when the genomes were counted (empty when none was).  A genome
        built or appended with ``min_count`` shows its counts below it too (from its record):
        the k-mers cut off, which the index does not hold.
        """
        return analytics.spectrum(self, genome, threads=threads, scheduler=scheduler)

    def setop(self, op: str, out: str | os.PathLike, genomes: Sequence[str] | None = None, q: int | None = None, **kwargs):
        """Write the k-mers of a set operation over genomes as a new database at ``out``.

        See :func:`kmerdb.setop` (``union``, ``intersection``, ``difference``, ``at-least``,
        ``exactly``, ``at-most``).
        """
        return setops.setop(self, op, out, genomes=genomes, q=q, **kwargs)

    # -- life cycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Release the catalog and the memory maps (rolling back an open transaction)."""
        txn = self._active_transaction()
        if txn is not None:
            txn.rollback()
        self._txn = None
        with self._open_lock:
            self._closed = True
            opened, self._opened = self._opened, None
        if opened is not None:
            opened[1].close()
        if self._registration is not None:
            self._registration.close()
            self._registration = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kmerdb.Database {self.path!r} k={self.config.k} genomes={len(self.genomes)} gen={self.generation}>"


def _strings(argument: str, values: object) -> list[str | bytes]:
    """``values`` as a list of str/bytes, or one clear error naming ``argument``.

    One check per item (a sequence or a k-mer, not a base): ``bytes(5)`` would otherwise
    turn a number into five NUL bytes and answer as if it were a sequence.
    """
    if values is None or not isinstance(values, Iterable):
        raise InvalidTypeError(argument, values, "a str or bytes, or a sequence of them")
    items = list(values)
    if not set(map(type, items)) <= {str, bytes}:  # one pass in C; subclasses looked at below
        for item in items:
            if not isinstance(item, (str, bytes)):
                raise InvalidTypeError(argument, item, f"str or bytes items in {argument}")
    return items


def _flag(argument: str, value: object) -> bool:
    """A boolean argument: a string such as ``"no"`` must not count as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidTypeError(argument, value, "True or False")
    return bool(value)


def _dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):  # removed by a vacuum meanwhile
                total += os.path.getsize(os.path.join(root, f))
    return total


def open_database(path: str | os.PathLike, mode: str = "r") -> Database:
    """Open a database.

    Parameters
    ----------
    path : str or PathLike
        The database directory.
    mode : {"r", "a"}
        ``"r"``: read-only handle; ``"a"``: writable handle, changed through
        ``with db.transaction(): ...`` (append, merge, remove, compact).

    Raises
    ------
    DatabaseNotFoundError, IncompleteDatabaseError, FormatVersionError, CorruptDatabaseError
    ReadOnlyError
        ``mode="a"`` on a directory this process cannot write.
    """
    path = path_argument(path)
    if mode not in ("r", "a"):
        raise InvalidParameterError("mode", mode, "expected 'r' (read) or 'a' (read and write)")
    if mode == "a" and os.path.isdir(path) and not os.access(path, os.W_OK):
        raise ReadOnlyError(f"{path}: not writable by this process")
    snapshot, registration = read_as_reader(path)
    try:
        return Database(path, snapshot, mode=mode, registration=registration)
    except KmerDBError:
        registration.close()
        raise


def reindex(
    path: str | os.PathLike,
    evidence: str,
    fp_bits: int | None = None,
    z: int | None = None,
    threads: int | None = None,
    wait: bool | float = False,
    progress=None,
    *,
    scheduler=None,
) -> ReindexReport:
    """Rebuild the evidence of every layer of a database, in one transaction.

    The same as ``with db.transaction() as txn: txn.reindex(...)`` on a handle opened with
    ``mode="a"``.

    Parameters
    ----------
    path : str or PathLike
        The database.
    evidence : {"exact", "approx"}
        The evidence to have.
    fp_bits : int, optional
        Fingerprint bits for approx evidence, 1..32 (default: the current ones, or 8).
    z : int, optional
        Consecutive-hit rule for approx evidence, >= 0 (default: the current one, or 0).
    threads : int, optional
        Worker processes (default: all CPUs).
    wait : bool or float
        Wait for the writer lock (True: as long as it takes; a number: at most that many
        seconds); False fails at once with :class:`~kmerdb.errors.LockedError`.
    progress : callable, optional
        ``progress("reindex", partitions done, partitions)``.
    scheduler : str or distributed.Client, optional
        Run the partition tasks on this Dask cluster (workers see ``path`` at the same place).

    Returns
    -------
    ReindexReport

    Raises
    ------
    InvalidParameterError, LockedError, DatabaseNotFoundError, IncompleteDatabaseError, ReadOnlyError
    WorkerError
        A task failed in a worker; nothing was committed.
    """
    t0 = time.perf_counter()
    with open_database(path, mode="a") as db:
        with db.transaction(wait=wait) as txn:
            args = txn.reindex(evidence, fp_bits, z, threads, progress, scheduler=scheduler)
        cfg = db.config
        return ReindexReport(
            db.path, cfg.evidence, cfg.fp_bits, cfg.z, int(args.get("layers_rewritten", 0)), db.generation,
            time.perf_counter() - t0,
        )
