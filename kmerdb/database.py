"""The database handle: ``kmerdb.open(path)``.

A handle reads the catalog once, in one read transaction, and memory-maps every data
file the catalog names: that is its snapshot.  Data files are never modified, so a
handle keeps answering from its snapshot whatever commits later, until it is refreshed
or reopened; it is registered as a reader of its generation so that a vacuum keeps those
files.  A read handle may be shared between threads for queries; in another process, open
the database again (after ``fork`` too).  A handle opened with ``mode="a"`` also writes,
through ``with db.transaction():`` (see :mod:`kmerdb.transaction` and docs/transactions.md).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from kmerdb.config import Config
from kmerdb.core.evidence import z_rule
from kmerdb.core.kmers import (
    canonical,
    encode,
    kmer_minimizer_hashes,
    kmers_from_strings,
    partition_of,
    sequence_kmers,
)
from kmerdb.errors import (
    GenomeNotFoundError,
    IncompleteDatabaseError,
    InvalidParameterError,
    KmerDBError,
    WorkerError,
)
from kmerdb.query.pool import QueryPool
from kmerdb.store.catalog import Catalog, GenomeRecord, Snapshot
from kmerdb.store.layer import Layer
from kmerdb.store.structures import structure_stats, unitig_summary

__all__ = ["Database", "QueryResult", "open_database"]

_log = logging.getLogger(__name__)

# Positions x genomes per query batch: bounds the (positions, genomes) presence matrix.
_QUERY_CELLS = 1 << 25
# Below this many bases a query runs in the calling thread whatever ``threads`` says.
_PARALLEL_MIN_BASES = 1 << 18
# Bins of one (sequence, byte value) histogram before the tally counts genome by genome.
_TALLY_BINS = 1 << 22
# Row v of entry w: the w bits of value v, most significant first (as np.packbits puts genomes).
_VALUE_BITS = [
    ((np.arange(1 << w)[:, None] >> np.arange(w - 1, -1, -1)) & 1).astype(np.float64) for w in range(9)
]


@dataclass(frozen=True)
class QueryResult:
    """Answer to :meth:`Database.query`.

    Attributes
    ----------
    labels : tuple of str
        Genome labels, the columns of ``hits``.
    hits : ndarray of int64, shape (n_sequences, n_genomes)
        How many of each sequence's k-mer positions hold a k-mer the genome has.
    n_kmers : ndarray of int64, shape (n_sequences,)
        Valid k-mer positions per sequence (windows of k bases, all ACGT).
    names : tuple of str or None
        Sequence names when the caller gave them.
    found_raw : ndarray of int64, shape (n_sequences,)
        k-mer positions whose k-mer the index holds, as its evidence says (with approx
        evidence this includes false positives, about 2**-b of the absent k-mers).
    found : ndarray of int64, shape (n_sequences,)
        Of those, the positions inside a run of at least z+1 consecutive found positions
        (the z rule, see docs/evidence.md); ``hits`` counts only these.  Equal to
        ``found_raw`` when z = 0.
    z : int
        The z the query applied.
    """

    labels: tuple[str, ...]
    hits: np.ndarray
    n_kmers: np.ndarray
    names: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)
    found_raw: np.ndarray | None = None
    found: np.ndarray | None = None
    z: int = 0

    @property
    def ratio(self) -> np.ndarray:
        """``hits / n_kmers`` (0 where a sequence has no k-mer)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.hits / self.n_kmers[:, None]
        return np.where(self.n_kmers[:, None] > 0, r, 0.0)


class Database:
    """A handle on a kmerdb database.  Use :func:`kmerdb.open`.

    Read-only (``mode="r"``) or writable (``mode="a"``: changes go through
    :meth:`transaction`).  The handle answers from the generation it opened until
    :meth:`refresh` or its own commit moves it; it releases the catalog once it has read it.
    """

    def __init__(
        self, path: str, catalog: Catalog, snapshot: Snapshot, mode: str = "r", registration=None
    ) -> None:
        self.path = path
        self.mode = mode
        self._txn = None
        self._pool, self._pool_lock = None, threading.Lock()
        self._registration = registration
        self._catalog = catalog
        if mode == "a":
            # a writer often only writes: its layers are opened when something reads them
            if snapshot.state != "ready":
                raise IncompleteDatabaseError(path, snapshot.state)
            self._loaded, self._loaded_snapshot = [], None
            self.snapshot, self._pending = snapshot, snapshot
        else:
            self._load(snapshot)
        if registration is not None:
            registration.set(snapshot.generation)

    def _load(self, snapshot: Snapshot) -> None:
        if snapshot.state != "ready":
            raise IncompleteDatabaseError(self.path, snapshot.state)
        column_of = {g.id: i for i, g in enumerate(snapshot.genomes)}
        layers: list[list[Layer]] = [
            [Layer(self.path, rec, column_of) for rec in layers] for layers in snapshot.partitions
        ]
        self.snapshot, self._loaded, self._loaded_snapshot, self._pending = snapshot, layers, snapshot, None
        self._close_pool()  # its workers read the layers opened before

    @property
    def _layers(self) -> list[list[Layer]]:
        """The opened layers of every partition (a staged snapshot is opened when first needed)."""
        if self.__dict__.get("_pending") is not None:
            self._load(self._pending)
        return self._loaded

    @_layers.setter
    def _layers(self, value) -> None:
        self._loaded, self._pending = value, None

    def _switch(self, snapshot: Snapshot, committed: bool = True) -> None:
        """Read ``snapshot`` from now on (a committed generation, or a transaction's working one).

        A transaction's working snapshot is opened only when something reads its layers, so
        that staging and committing an operation does not open every layer twice.
        """
        if committed and self._registration is not None:
            self._registration.set(None)  # between generations: vacuum keeps them all
        loaded = self.__dict__.get("_loaded_snapshot")
        if snapshot is loaded:
            self.snapshot, self._pending = snapshot, None
        elif committed and loaded is not None and snapshot is not self.snapshot:
            self._load(snapshot)  # another generation for a handle that reads: open it now
        else:
            self.snapshot, self._pending = snapshot, snapshot
        if committed and self._registration is not None:
            self._registration.set(snapshot.generation)

    # -- generations and transactions ------------------------------------------------------
    def refresh(self) -> bool:
        """Move to the latest committed generation; True if it changed.

        A handle keeps answering from the generation it opened (its snapshot) whatever
        commits later, until it refreshes or is reopened.
        """
        from kmerdb.errors import TransactionError

        if self._txn is not None:
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
        self._switch(snapshot, committed=True)
        return True

    def transaction(self, wait: bool | float = False):
        """A write transaction: ``with db.transaction(): ...`` commits at the end of the block,
        or rolls back if it raises.

        Takes the writer lock (one writer at a time): with ``wait`` False a second writer gets
        :class:`~kmerdb.errors.LockedError` at once; True waits for the lock, a number waits
        at most that many seconds.  Inside the block, :meth:`append_genome`, :meth:`merge`,
        :meth:`remove_genome` and :meth:`compact` stage changes that commit together as one
        new generation; the handle sees them as they are staged.

        Raises
        ------
        ReadOnlyError
            The handle was opened read-only.
        TransactionError
            A transaction of this handle is already open.
        LockedError
        """
        from contextlib import contextmanager

        from kmerdb.errors import ReadOnlyError, TransactionError
        from kmerdb.ops.transaction import Transaction

        if self.mode != "a":
            raise ReadOnlyError(f"{self.path}: opened read-only; open it with mode='a' to write")
        if self._txn is not None:
            raise TransactionError("a transaction is already open on this handle (they do not nest)")

        @contextmanager
        def run():
            txn = Transaction(self, wait)
            self._txn = txn
            try:
                yield txn
            except BaseException:
                txn.rollback()
                raise
            else:
                txn.commit()
            finally:
                self._txn = None

        return run()

    def _writing(self):
        from kmerdb.errors import ReadOnlyError, TransactionError

        if self.mode != "a":
            raise ReadOnlyError(f"{self.path}: opened read-only; open it with mode='a' to write")
        if self._txn is None:
            raise TransactionError("writes happen inside 'with db.transaction():'")
        return self._txn

    def append_genome(self, label: str, paths, rename_duplicates: bool = False, threads: int | None = None, progress=None) -> None:
        """Add one genome read from FASTA/FASTQ ``paths`` (a path or a list), in a transaction.

        Its column holds counts or presence as the index keeps them.
        """
        self._writing().append_genomes({label: paths}, rename_duplicates, threads, progress)

    def append_genomes(self, genomes, rename_duplicates: bool = False, threads: int | None = None, progress=None) -> None:
        """Add several genomes (``label -> path(s)``, or :class:`GenomeInput` s) as one operation."""
        self._writing().append_genomes(genomes, rename_duplicates, threads, progress)

    def merge(self, sources, rename_duplicates: bool = False, threads: int | None = None, progress=None) -> None:
        """Add the genomes of other databases (a path or a list of paths), in a transaction."""
        self._writing().merge(sources, rename_duplicates, threads, progress)

    def remove_genome(self, label) -> None:
        """Remove a genome (or a list of labels), in a transaction.

        Its column stops being part of the index at once; the k-mers no genome holds any more
        are dropped, and the bytes reclaimed, by the next :meth:`compact` and vacuum.
        """
        self._writing().remove_genomes(label)

    def compact(self, threads: int | None = None, progress=None) -> None:
        """Rewrite each partition into one layer with one column group, in a transaction."""
        self._writing().compact(threads, progress)

    def reindex(
        self,
        evidence: str,
        fp_bits: int | None = None,
        z: int | None = None,
        threads: int | None = None,
        progress=None,
    ) -> dict:
        """Rebuild the evidence of every layer from its unitigs, in a transaction.

        ``evidence`` is ``"exact"`` or ``"approx"`` (with ``fp_bits`` 1..32 and ``z`` >= 0,
        defaulting to the current ones or 8 and 0).  MPHFs, unitigs and columns are kept;
        a change of ``z`` alone writes no file.  Exact -> approx -> exact gives lookups
        equal to the original's.  See :mod:`kmerdb.reindex`.

        Returns
        -------
        dict
            The new ``evidence``, ``fp_bits``, ``z`` and ``layers_rewritten``.
        """
        from kmerdb.ops.reindex import reindex_snapshot

        txn = self._writing()
        done: dict = {}

        def operation(snap, generation):
            new, args = reindex_snapshot(self.path, snap, generation, evidence, fp_bits, z, threads, progress)
            done.update(args)
            return new, args

        txn.apply(operation, "reindex")
        return done

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
        return sum(layer.n for layers in self._layers for layer in layers)

    def genome(self, label: str) -> GenomeRecord:
        """The record of one genome by label."""
        for g in self.snapshot.genomes:
            if g.label == label:
                return g
        raise GenomeNotFoundError(label)

    def info(self) -> dict:
        """A summary: configuration, genomes, sizes on disk and bits per k-mer."""
        n = self.n_kmers
        disk = _dir_size(self.path)
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
            "n_layers": sum(len(layers) for layers in self._layers),
            "bytes_on_disk": disk,
            "bits_per_kmer": (8 * disk / n) if n else 0.0,
            "structures": {role: {"bytes": b, "bits_per_kmer": (8 * b / n) if n else 0.0} for role, b in sizes.items()},
            "unitigs": unitig_summary(layer for layers in self._layers for layer in layers),
            "genomes": [
                {"label": g.label, "n_kmers": g.n_kmers, "total": g.total, "sources": list(g.sources)}
                for g in self.snapshot.genomes
            ],
        }

    def export_unitigs(self, out, genome: str | None = None) -> tuple[int, int]:
        """Write the unitigs of every layer as FASTA (one line per unitig).

        Parameters
        ----------
        out : str, PathLike or binary file
            Destination file (created or truncated) or an open binary stream.
        genome : str, optional
            Only the k-mers of this genome, compacted into maximal unitigs layer by layer.

        Returns
        -------
        (records, bases) : tuple of int

        Raises
        ------
        GenomeNotFoundError
        """
        from kmerdb.core.unitigs import write_unitigs

        if isinstance(out, (str, os.PathLike)):
            with open(out, "wb") as fh:
                return write_unitigs(self, fh, genome)
        return write_unitigs(self, out, genome)

    def stats(self, lengths: bool = True) -> dict:
        """Bits per k-mer of every structure (MPHF, evidence, unitigs, columns) and unitig figures.

        See :func:`kmerdb.structures.structure_stats`.
        """
        return structure_stats(self, lengths)

    # -- lookups -----------------------------------------------------------------------
    def _locate(
        self, kmers: np.ndarray, hashes: np.ndarray, tags: np.ndarray | None = None
    ) -> list[tuple[Layer, np.ndarray, np.ndarray]]:
        """Find canonical k-mers: a list of (layer, tags of the keys found, their slots).

        The tag of ``kmers[i]`` is ``tags[i]`` (non-negative int64, such as the sequence
        a k-mer comes from) or, without ``tags``, ``i``.  The layers of a partition hold
        disjoint k-mers, so a key an exact layer finds is looked for no further.  A key
        an approx layer accepts may be a false positive there and a true member of a
        later layer: it is looked for in every layer, and a tag may then come back from
        several layers (callers combine their rows).
        """
        out = []
        n_parts = self.config.n_partitions
        parts = partition_of(hashes, n_parts, np.uint16)
        # stable argsort of uint16 is a radix sort: ~10x faster than on int64
        order = np.argsort(parts, kind="stable")
        bounds = np.zeros(n_parts + 1, dtype=np.int64)
        np.cumsum(np.bincount(parts, minlength=n_parts), out=bounds[1:])
        # key and tag side by side: one gather in partition order fetches both (a gather
        # through the permutation costs a cache miss per run of neighbouring positions)
        pairs = np.empty((kmers.size, 2), dtype=np.uint64)
        pairs[:, 0] = kmers
        pairs[:, 1] = tags if tags is not None else np.arange(kmers.size)
        pairs = pairs.take(order, axis=0)
        for p, layers in enumerate(self._layers):
            lo, hi = int(bounds[p]), int(bounds[p + 1])
            if lo == hi or not layers:
                continue
            keys, ids = pairs[lo:hi, 0], pairs[lo:hi, 1]
            for layer in layers:
                found, slots = layer.find(keys)
                hit = np.flatnonzero(found)
                if hit.size == keys.size:  # all found: no gathers
                    out.append((layer, ids.view(np.int64), slots))
                    if layer.exact:
                        break
                    continue
                if hit.size:
                    out.append((layer, ids.take(hit).view(np.int64), slots.take(hit)))
                    if len(layers) > 1 and layer.exact:
                        rest = np.flatnonzero(~found)
                        if not rest.size:
                            break
                        keys, ids = keys.take(rest), ids.take(rest)
        return out

    def _rows(self, kmers: np.ndarray, hashes: np.ndarray, counts: bool) -> np.ndarray:
        """(len(kmers), n_genomes) presence (bool) or counts for canonical k-mers."""
        dtype = np.uint32 if counts else bool
        out = np.zeros((kmers.size, len(self.genomes)), dtype=dtype)
        union = any(not layer.exact for layers in self._layers for layer in layers)
        for layer, idx, slots in self._locate(kmers, hashes):
            block = np.zeros((idx.size, len(self.genomes)), dtype=dtype)
            layer.fill_rows(slots, block, counts)
            # several layers answer only with approx evidence: union of presence, largest count
            out[idx] = np.maximum(out[idx], block) if union else block
        return out

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
        k = self.config.k
        if counts and not self.config.counts:
            raise InvalidParameterError("counts", True, "this index keeps presence only (build it with counts)")
        if isinstance(kmers, np.ndarray) and kmers.dtype.kind in "ui":
            codes = kmers.astype(np.uint64, copy=False).ravel()
            if codes.size and int(codes.max()) >= 4**k:
                raise InvalidParameterError("kmers", int(codes.max()), f"a 2-bit code of a {k}-mer is below 4**{k}")
            if kmers.dtype.kind == "i" and codes.size and int(kmers.min()) < 0:
                raise InvalidParameterError("kmers", int(kmers.min()), "k-mer codes are non-negative")
            codes = canonical(codes, k)
        else:
            codes = kmers_from_strings(list(kmers), k)
        hashes = kmer_minimizer_hashes(codes, k, self.config.m)
        return self._rows(codes, hashes, counts)

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
        if isinstance(sequences, (str, bytes)):
            sequences = [sequences]
        seqs = [s.encode("ascii", "replace") if isinstance(s, str) else bytes(s) for s in sequences]
        if names is not None and len(names) != len(seqs):
            raise InvalidParameterError("names", len(names), f"expected one name per sequence ({len(seqs)})")
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise InvalidParameterError("threads", threads, "must be an integer >= 1")
        z = self.config.z if z is None else z
        if not isinstance(z, int) or isinstance(z, bool) or z < 0:
            raise InvalidParameterError("z", z, "must be an integer >= 0")
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        # all sequences in one buffer, a separator (not a base: it breaks k-mers) after each
        joined = memoryview(b"\x00".join(seqs))
        starts = _starts(lengths)
        results = None
        if threads > 1 and lengths.sum() >= _PARALLEL_MIN_BASES:
            shares = _split(lengths, threads)
            if len(shares) > 1:
                tasks = [(bytes(_span(joined, starts, lengths, lo, hi)), lengths[lo:hi], z) for lo, hi in shares]
                try:
                    results = self._query_pool(len(shares) - 1).try_map(tasks)
                except WorkerError as exc:
                    _log.warning("%s; answering in this thread", exc)
        if results is None:
            results = [self._query_share(joined, lengths, z)]
        hits = np.concatenate([r[0] for r in results])
        n_kmers = np.concatenate([r[1] for r in results])
        found = np.concatenate([r[2] for r in results], axis=1)
        return QueryResult(
            self.genomes, hits, n_kmers, tuple(names) if names is not None else None,
            found_raw=found[0], found=found[1], z=z,
        )

    def _query_share(self, joined, lengths: np.ndarray, z: int) -> tuple[np.ndarray, ...]:
        """(hits, n_kmers, found) of sequences joined by separators, in batches of bounded memory."""
        n_g, n = len(self.genomes), lengths.size
        hits = np.zeros((n, n_g), dtype=np.int64)
        n_kmers = np.zeros(n, dtype=np.int64)
        found = np.zeros((2, n), dtype=np.int64)  # raw, after the z rule
        joined, starts = memoryview(joined), _starts(lengths)
        for lo, hi in _batches(lengths, max(1, _QUERY_CELLS // max(1, n_g))):
            batch = _span(joined, starts, lengths, lo, hi)
            self._query_batch(batch, lengths[lo:hi], hits[lo:hi], n_kmers[lo:hi], found[:, lo:hi], z)
        return hits, n_kmers, found

    def _query_pool(self, n_workers: int) -> QueryPool:
        """The handle's query workers (forked on first use, again after a new snapshot)."""
        with self._pool_lock:
            layers = self._layers
            pool = self._pool
            if pool is not None and (pool.broken or pool.owner is not layers or pool.n_workers < n_workers):
                pool.close()
                pool = self._pool = None
            if pool is None:
                pool = self._pool = QueryPool(self._query_share, n_workers, layers)
            return pool

    def _close_pool(self) -> None:
        pool, self._pool = self.__dict__.get("_pool"), None
        if pool is not None:
            pool.close()

    def _query_batch(
        self,
        joined: memoryview,
        lengths: np.ndarray,
        hits: np.ndarray,
        n_kmers: np.ndarray,
        found: np.ndarray,
        z: int = 0,
    ) -> None:
        k, n_g = self.config.k, len(self.genomes)
        # one coded array for the whole batch; the separators code as INVALID
        codes = encode(joined)
        starts = _starts(lengths)
        positions, kmers, hashes = sequence_kmers(codes, k, self.config.m)
        # positions are ascending: count them per sequence by searching the starts
        per_seq = np.diff(np.searchsorted(positions, np.append(starts, codes.size)))
        n_kmers += per_seq
        # with approx evidence a position may be answered by several layers: union of rows
        union = any(not layer.exact for layers in self._layers for layer in layers)
        if not union and not z:
            # exact evidence: each position is answered by at most one layer
            self._tally_exact(kmers, hashes, per_seq, hits, found)
            return
        # presence of every k-mer position, in position order, then summed per sequence
        present = np.zeros((kmers.size, n_g), dtype=bool)
        hit = np.zeros(kmers.size, dtype=bool)
        for layer, idx, slots in self._locate(kmers, hashes):
            block = np.zeros((idx.size, n_g), dtype=bool)
            layer.fill_rows(slots, block, False)
            if union:
                present[idx] |= block
            else:
                present[idx] = block
            hit[idx] = True
        bounds = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(per_seq, out=bounds[1:])

        def per_sequence(mask: np.ndarray) -> np.ndarray:
            total = np.zeros(mask.size + 1, dtype=np.int64)
            np.cumsum(mask, out=total[1:])
            return total[bounds[1:]] - total[bounds[:-1]]

        found[0] += per_sequence(hit)
        if z and kmers.size:
            kept = z_rule(positions, hit, z)
            present[hit & ~kept] = False
            found[1] += per_sequence(kept)
        else:
            found[1] += per_sequence(hit)
        if kmers.size:
            # one histogram over (sequence, genome) cells; reduceat along axis 0 is ~20x slower
            rows, cols = np.nonzero(present)
            seq_of = np.repeat(np.arange(lengths.size), per_seq)
            cells = np.bincount(seq_of[rows] * n_g + cols, minlength=lengths.size * n_g)
            hits += cells.reshape(lengths.size, n_g)

    def _tally_exact(
        self,
        kmers: np.ndarray,
        hashes: np.ndarray,
        per_seq: np.ndarray,
        hits: np.ndarray,
        found: np.ndarray,
    ) -> None:
        """Add the hits of a batch whose layers are all exact (no z rule) to ``hits``.

        Each found position's presence comes as packed bytes (eight genomes to a byte);
        one histogram per byte layout over (sequence, byte value) and a small product
        with the bits of each value give the per-genome sums, with no (positions,
        genomes) matrix.
        """
        n_seqs = per_seq.size
        seq_of = np.repeat(np.arange(n_seqs, dtype=np.int64), per_seq)
        found_seqs = []
        codes: dict[tuple[int, ...], list[np.ndarray]] = {}
        for layer, seqs, slots in self._locate(kmers, hashes, seq_of):
            found_seqs.append(seqs)
            for cols, values in layer.presence_bytes(slots):
                width = cols.size
                values >>= np.uint8(8 - width)  # the byte's genomes in its low bits
                codes.setdefault(tuple(cols.tolist()), []).append((seqs << width) | values)
        if not found_seqs:
            return
        n_found = sum(s.size for s in found_seqs)
        per_found = None
        for cols, parts in codes.items():
            width = len(cols)
            merged = np.concatenate(parts)
            if n_seqs << width <= _TALLY_BINS:
                table = np.bincount(merged, minlength=n_seqs << width).reshape(n_seqs, 1 << width)
                if merged.size == n_found:  # every found position has a byte here: its row sums count them
                    per_found = table.sum(axis=1)
                # float64 product: exact for any count below 2**53
                sums = np.rint(table.astype(np.float64) @ _VALUE_BITS[width]).astype(np.int64)
            else:  # too many bins: one histogram per genome
                sums = np.empty((n_seqs, width), dtype=np.int64)
                for j in range(width):
                    has = merged[((merged >> (width - 1 - j)) & 1).astype(bool)]
                    sums[:, j] = np.bincount(has >> width, minlength=n_seqs)
            for j, col in enumerate(cols):
                if col >= 0:
                    hits[:, col] += sums[:, j]
        if per_found is None:
            per_found = np.bincount(np.concatenate(found_seqs), minlength=n_seqs)
        found[0] += per_found
        found[1] += per_found

    def iter_kmers(self) -> Iterator[np.ndarray]:
        """Yield every canonical k-mer of the index as uint64 blocks (one per layer, sorted).

        The k-mers are decoded from the layers' unitigs, whatever the evidence kind.
        """
        for layers in self._layers:
            for layer in layers:
                yield np.sort(layer.unitig_kmers())

    def iter_rows(self, counts: bool | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (k-mers, rows) blocks covering the whole index, sorted within each layer.

        ``rows`` is (n, n_genomes): counts when the index keeps them (or ``counts=True``),
        else booleans.
        """
        counts = self.config.counts if counts is None else counts
        dtype = np.uint32 if counts else bool
        for layers in self._layers:
            for layer in layers:
                keys = layer.kmers()
                order = np.argsort(keys)
                out = np.zeros((layer.n, len(self.genomes)), dtype=dtype)
                layer.fill_rows(order, out, counts)
                yield keys[order], out

    # -- comparisons (kmerdb.analytics, kmerdb.setops) -----------------------------------
    def col_weights(self, threads: int | None = None, max_memory: int | str | None = None):
        """Distinct k-mers of every genome (and occurrences, with counts), from the columns.

        Parameters
        ----------
        threads : int, optional
            Worker processes (default: all CPUs).
        max_memory : int or str, optional
            Bounds the blocks of rows the workers read at once.

        Returns
        -------
        kmerdb.analytics.ColWeights
            ``labels``, ``distinct`` and ``total`` (int64 arrays in column order).
        """
        from kmerdb.analysis.analytics import col_weights

        return col_weights(self, threads=threads, max_memory=max_memory)

    def intersections(self, threads: int | None = None, max_memory: int | str | None = None) -> np.ndarray:
        """(G, G) int64 matrix of the distinct k-mers each pair of genomes shares.

        The diagonal holds each genome's distinct k-mers.  Computed partition by partition
        in worker processes from the distinct presence rows (colour classes).
        """
        from kmerdb.analysis.analytics import intersections

        return intersections(self, threads=threads, max_memory=max_memory)

    def distance(self, metric: str = "jaccard", threads: int | None = None, max_memory: int | str | None = None):
        """A labelled matrix of ``metric`` between every pair of genomes.

        Parameters
        ----------
        metric : {"jaccard", "jaccard-distance", "containment", "mash", "bray-curtis"}
            ``jaccard``: |A and B| / |A or B| (1 when both are empty); ``jaccard-distance``:
            1 - J; ``containment``: row genome's k-mers found in the column genome, divided
            by the row genome's k-mers; ``mash``: -1/k ln(2J / (1 + J)), 1 when J = 0;
            ``bray-curtis`` (counts index): 1 - 2 sum(min) / (sum A + sum B).
        threads, max_memory
            As for :meth:`col_weights`.

        Returns
        -------
        kmerdb.analytics.DistanceMatrix
            ``metric``, ``labels`` and ``matrix``; ``.tree("nj")`` gives a Newick tree.
        """
        from kmerdb.analysis.analytics import distance

        return distance(self, metric, threads=threads, max_memory=max_memory)

    def iter_distances(
        self,
        metric: str = "jaccard-distance",
        max_distance: float | None = None,
        nearest: int | None = None,
        threads: int | None = None,
        max_memory: int | str | None = None,
    ):
        """Stream ``(label_a, label_b, value)`` pairs within ``max_distance`` and/or the
        ``nearest`` of each genome, without a dense matrix; see
        :func:`kmerdb.analytics.iter_distances`."""
        from kmerdb.analysis.analytics import iter_distances

        return iter_distances(self, metric, max_distance=max_distance, nearest=nearest, threads=threads, max_memory=max_memory)

    def spectrum(self, genome: str | None = None, threads: int | None = None) -> dict[str, list[tuple[int, int]]]:
        """k-mer count histograms: label -> ascending ``(count, distinct k-mers)`` pairs.

        From the count columns on an index with counts; on a presence index, the spectra
        the catalog recorded when the genomes were counted (empty when none was).
        """
        from kmerdb.analysis.analytics import spectrum

        return spectrum(self, genome, threads=threads)

    def setop(self, op: str, out: str | os.PathLike, genomes: Sequence[str] | None = None, q: int | None = None, **kwargs):
        """Write the k-mers of a set operation over genomes as a new database at ``out``.

        See :func:`kmerdb.setop` (``union``, ``intersection``, ``difference``, ``at-least``,
        ``exactly``, ``at-most``).
        """
        from kmerdb.ops.setops import setop

        return setop(self, op, out, genomes=genomes, q=q, **kwargs)

    # -- life cycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Release the catalog and the memory maps (rolling back an open transaction)."""
        if getattr(self, "_txn", None) is not None:
            self._txn.rollback()
            self._txn = None
        self._close_pool()
        self._layers = []
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        if getattr(self, "_registration", None) is not None:
            self._registration.close()
            self._registration = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kmerdb.Database {self.path!r} k={self.config.k} genomes={len(self.genomes)} gen={self.generation}>"


def _batches(lengths: np.ndarray, max_positions: int) -> list[tuple[int, int]]:
    """Consecutive ranges of sequences of about ``max_positions`` bases each (at least one)."""
    cum = np.cumsum(lengths)
    total = int(cum[-1]) if cum.size else 0
    # a batch ends with the sequence that reaches the next multiple of max_positions
    ends = np.searchsorted(cum, np.arange(max_positions, total, max_positions), side="left") + 1
    bounds = np.unique(np.concatenate([[0], ends, [lengths.size]]))
    if bounds.size == 1:
        return [(0, 0)]
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _starts(lengths: np.ndarray) -> np.ndarray:
    """Offset of each sequence in a buffer that follows each one with a separator."""
    return np.cumsum(lengths + 1) - (lengths + 1)


def _span(joined: memoryview, starts: np.ndarray, lengths: np.ndarray, lo: int, hi: int) -> memoryview:
    """Sequences ``lo`` to ``hi`` of a joined buffer, with the separators between them."""
    if lo >= hi:
        return joined[0:0]
    return joined[int(starts[lo]) : int(starts[hi - 1] + lengths[hi - 1])]


def _split(lengths: np.ndarray, n: int) -> list[tuple[int, int]]:
    """At most ``n`` consecutive non-empty ranges of sequences with about equal bases."""
    cum = np.cumsum(lengths)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n) / n, side="left") + 1
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, lengths.size), [lengths.size]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
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
    from kmerdb.errors import ReadOnlyError
    from kmerdb.store.lock import ReaderRegistration

    path = os.fspath(path)
    if mode not in ("r", "a"):
        raise InvalidParameterError("mode", mode, "expected 'r' (read) or 'a' (read and write)")
    catalog = Catalog.open(path, readonly=True)
    registration = None
    try:
        if mode == "a" and not os.access(path, os.W_OK):
            raise ReadOnlyError(f"{path}: not writable by this process")
        # registered (as between generations) before the snapshot is read, so that a vacuum
        # never removes the files of the generation about to be read
        registration = ReaderRegistration(path)
        db = Database(path, catalog, catalog.read(), mode=mode, registration=registration)
    except KmerDBError:
        catalog.close()
        if registration is not None:
            registration.close()
        raise
    # the catalog is read: release it, so that no LMDB environment outlives the read
    db._catalog = None
    catalog.close()
    return db
