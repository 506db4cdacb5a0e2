"""The query engine: lookups and sequence queries over the opened layers of one snapshot.

A :class:`QueryEngine` answers from the layers it was given and never changes them; the
database handle builds one for each snapshot it opens and closes the old one when it moves
on.  A query is batched and vectorized: sequences -> canonical k-mers -> partitions -> per
layer: MPHF slot -> evidence check -> column rows, tallied per sequence and genome.  With
``threads > 1`` a large query is split between the calling thread and worker processes
forked once per engine (:class:`~kmerdb.query.pool.QueryPool`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from kmerdb.config import Config
from kmerdb.core import kernels
from kmerdb.core.colours import SparseRows
from kmerdb.core.evidence import z_rule
from kmerdb.core.kmers import (
    Scratch,
    canonical,
    kmers_from_strings,
    minimizer_anchors,
    reverse_complement,
    sequence_anchors,
)
from kmerdb.errors import InvalidParameterError, InvalidTypeError, WorkerError
from kmerdb.query.pool import QueryPool, SharedArray
from kmerdb.store.encodings import ColumnEncoding
from kmerdb.store.layer import Layer

__all__ = ["QueryEngine", "QueryResult", "query_batches", "QUERY_BATCH_BASES"]

_log = logging.getLogger(__name__)

#: Bases of sequence a streaming query (:func:`query_batches`) holds at a time: the reads of a
#: batch and the arrays of their k-mer positions, about 100 bytes per base: ~100 MB.
QUERY_BATCH_BASES = 1_000_000

# Positions x genomes of dense groups per query batch: bounds the presence bytes of dense
# groups (colour-class groups tally per class and cost no genome factor).
_QUERY_CELLS = 1 << 25
# Work arrays a thread keeps from one query to the next (about 70 bytes per base of a batch);
# a larger batch's are let go when its call ends.
_KEEP_BYTES = 256 << 20
# Below this many bases a query runs in the calling thread whatever ``threads`` says.
_PARALLEL_MIN_BASES = 1 << 18
# Class hits of a batch add up in the narrowest of these integer types whose largest value
# bounds every sequence's positions (int64 past them).
_NARROW: tuple[tuple[type, int], ...] = ((np.int8, 2**7 - 1), (np.int16, 2**15 - 1), (np.int32, 2**31 - 1))
# Bins of the (sequence, byte value) tables of a batch's tallies of presence bytes (int64: 32 MiB).
_TALLY_BINS = 1 << 22
# Row v of entry w: the w bits of value v, most significant first (as np.packbits puts genomes).
_VALUE_BITS = [
    ((np.arange(1 << w)[:, None] >> np.arange(w - 1, -1, -1)) & 1).astype(np.float64) for w in range(9)
]


@dataclass(frozen=True)
class QueryResult:
    """Answer to :meth:`Database.query` (and :meth:`QueryEngine.query`).

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
    found_raw: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    found: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    z: int = 0

    @property
    def ratio(self) -> np.ndarray:
        """``hits / n_kmers`` (0 where a sequence has no k-mer)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.hits / self.n_kmers[:, None]
        return np.where(self.n_kmers[:, None] > 0, r, 0.0)


class QueryEngine:
    """Lookups and queries over the opened layers of one snapshot.

    Parameters
    ----------
    config : Config
        The index configuration (k, m, partitions, the default z, counts).
    labels : tuple of str
        Genome labels in column order.
    layers : sequence of sequence of Layer
        The opened layers of every partition, in partition order.

    Notes
    -----
    An engine may be shared between threads.  Its query workers are forked on the first
    query that asks for more than one thread and kept until :meth:`close`.
    """

    def __init__(self, config: Config, labels: tuple[str, ...], layers: Sequence[Sequence[Layer]]) -> None:
        self.config = config
        self.labels = tuple(labels)
        self.layers = [list(part) for part in layers]
        # with approx evidence a key may be answered by several layers: their rows are combined
        self._any_approx = any(not layer.exact for part in self.layers for layer in part)
        # genomes whose presence a batch reads as dense bytes (the colour-class groups of
        # many genomes tally by class): a batch holds about _QUERY_CELLS of them
        dense = max(
            (sum(g.cols.size for g in layer.groups if g.live and not g.tallies_by_class) for part in self.layers for layer in part),
            default=0,
        )
        self._batch_bases = max(1, _QUERY_CELLS // max(1, dense, min(len(self.labels), 8)))
        # colour-class groups of many genomes expand into a (sequences, genomes) block per batch
        by_class = any(g.live and g.tallies_by_class for part in self.layers for layer in part for g in layer.groups)
        caps = [_QUERY_CELLS // len(self.labels)] if by_class else []
        # groups that tally presence bytes count (sequence, byte value) pairs in a table per
        # byte layout, 2**(genomes of the byte) bins per sequence: at most _TALLY_BINS in all
        layouts = {
            tuple(g.genome_ids) for part in self.layers for layer in part for g in layer.groups
            if g.live and not g.tallies_by_class
        }
        per_seq = sum((len(ids) // 8) * 256 + ((1 << (len(ids) % 8)) if len(ids) % 8 else 0) for ids in layouts)
        if per_seq:
            caps.append(_TALLY_BINS // per_seq)
        self._batch_seqs = max(1, min(caps)) if caps else None
        self._pool: QueryPool | None = None
        self._pool_lock = threading.Lock()
        self._closed = False
        # per thread: the work arrays of a batch's k-mers, kept from batch to batch and call to
        # call up to _KEEP_BYTES (fresh ones cost their pages: 61 against 53 ns per k-mer of a
        # three-genome query; smaller batches to keep them small cost more than that)
        self._local = threading.local()

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the query workers (empty before the first parallel query and after close)."""
        pool = self._pool
        return tuple(pool.pids) if pool is not None else ()

    def _scratch(self) -> Scratch:
        """This thread's work arrays (see :class:`~kmerdb.core.kmers.Scratch`)."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = Scratch()
        return scratch

    def close(self) -> None:
        """End the query workers and let go of the work arrays; later queries run in the
        calling thread."""
        self._local = threading.local()
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _query_pool(self, n_workers: int) -> QueryPool | None:
        """The engine's query workers (forked on first use, again after one died), None once closed."""
        with self._pool_lock:
            if self._closed:
                return None
            pool = self._pool
            if pool is not None and (pool.broken or pool.n_workers < n_workers):
                pool.close()
                pool = self._pool = None
            if pool is None:
                pool = self._pool = QueryPool(self._query_share, n_workers, self.layers)
            return pool

    def _locate(
        self,
        kmers: np.ndarray,
        hashes: np.ndarray,
        anchors: np.ndarray,
        others: np.ndarray,
        positions: np.ndarray | None = None,
        starts: np.ndarray | None = None,
        per_seq: np.ndarray | None = None,
        missed: list[np.ndarray] | None = None,
    ) -> list[tuple[Layer, np.ndarray, np.ndarray]]:
        """Find canonical k-mers: a list of (layer, tags of the keys found, their slots).

        ``hashes``, ``anchors`` and ``others`` are the keys' minimizer hashes, anchors and
        reverse complements (:func:`~kmerdb.core.kmers.sequence_anchors`,
        :func:`~kmerdb.core.kmers.minimizer_anchors`).  The tag of ``kmers[i]`` is ``i``, or
        with ``positions`` (ascending) and the ``starts`` of the sequences, the sequence that
        holds it; ``per_seq`` (zeroed) then receives each sequence's keys.  With exact
        layers, ``missed`` receives the tags of the keys no layer holds.  The layers of a
        partition hold disjoint k-mers, so a key an exact layer finds is looked for no
        further.  A key an approx layer accepts may be a false positive there and a true
        member of a later layer: it is looked for in every layer, and a tag may then come back
        from several layers (callers combine their rows).
        """
        out: list[tuple[Layer, np.ndarray, np.ndarray]] = []
        n_parts = self.config.n_partitions
        # keys grouped by partition in one stable pass, so that the runs of a sequence's
        # keys that share a minimizer stay together; each field contiguous per partition
        scratch = self._scratch()
        grouped = scratch.get("located.grouped", 4 * kmers.size).reshape(4, kmers.size)
        marks = scratch.get("located.marks", kmers.size, np.uint8)
        bounds = np.empty(n_parts + 1, dtype=np.int64)
        tagged = positions is not None and starts is not None and per_seq is not None
        kernels.partition_scatter(
            np.ascontiguousarray(hashes, dtype=np.uint64), n_parts,
            np.ascontiguousarray(kmers, dtype=np.uint64), np.ascontiguousarray(others, dtype=np.uint64),
            np.ascontiguousarray(positions, dtype=np.int64) if tagged else np.zeros(0, dtype=np.int64),
            np.ascontiguousarray(starts, dtype=np.int64) if tagged else np.zeros(0, dtype=np.int64),
            np.ascontiguousarray(anchors, dtype=np.uint8), grouped, marks, bounds, np.empty(n_parts, dtype=np.int64),
            per_seq if tagged else np.zeros(0, dtype=np.int64),
        )
        # the first layer of each partition answers into one array of the batch (no fresh
        # arrays per partition: their pages were a tenth of a three-genome query)
        found_all = scratch.get("located.found", kmers.size, bool)
        slots_all = scratch.get("located.slots", kmers.size, np.int64)
        for p, layers in enumerate(self.layers):
            lo, hi = int(bounds[p]), int(bounds[p + 1])
            if lo == hi:
                continue
            if not layers:  # a partition without k-mers
                if missed is not None:
                    missed.append(grouped[3, lo:hi].view(np.int64))
                continue
            keys, rc, hs, ids, ms = grouped[0, lo:hi], grouped[1, lo:hi], grouped[2, lo:hi], grouped[3, lo:hi], marks[lo:hi]
            into: tuple[np.ndarray, np.ndarray] | None = (found_all[lo:hi], slots_all[lo:hi])
            for layer in layers:
                found, slots = layer.find(keys, hs, ms, rc, scratch, into)
                into = None  # a later layer's keys are a subset: its answers are its own
                if found.all():  # no gathers
                    out.append((layer, ids.view(np.int64), slots))
                    if layer.exact:
                        ids = ids[:0]
                        break
                    continue
                hit = np.flatnonzero(found)
                if hit.size:
                    out.append((layer, ids.take(hit).view(np.int64), slots.take(hit)))
                if layer.exact and hit.size:  # (none found: the rest are all)
                    rest = np.flatnonzero(~found)
                    if len(layers) > 1:
                        keys, rc, hs, ms = keys.take(rest), rc.take(rest), hs.take(rest), ms.take(rest)
                    ids = ids.take(rest)
            if missed is not None and ids.size:
                missed.append(ids.view(np.int64))
        return out

    def _rows(self, kmers: np.ndarray, hashes: np.ndarray, counts: bool, anchors: np.ndarray) -> np.ndarray:
        """(len(kmers), n_genomes) presence (bool) or counts for canonical k-mers.

        Layers with colour-class groups of many genomes write their (k-mer, genome)
        occurrences straight into the output; dense layers go through a block of their rows.
        """
        dtype = np.uint32 if counts else bool
        out = np.zeros((kmers.size, len(self.labels)), dtype=dtype)
        union = self._any_approx
        for layer, idx, slots in self._locate(kmers, hashes, anchors, reverse_complement(kmers, self.config.k)):
            if any(g.live and g.tallies_by_class for g in layer.groups):
                rows = layer_rows(layer, slots, counts, len(self.labels))
                at, cols = idx[rows.row_of()], rows.columns
                values = rows.value_counts() if counts else True
                # pairs of one layer are distinct: plain assignment, a maximum for a union
                out[at, cols] = np.maximum(out[at, cols], values) if union else values
                continue
            block = np.zeros((idx.size, len(self.labels)), dtype=dtype)
            layer.fill_rows(slots, block, counts)
            # several layers answer only with approx evidence: union of presence, largest count
            out[idx] = np.maximum(out[idx], block) if union else block
        return out

    def lookup(self, kmers: Iterable[str | bytes] | np.ndarray, counts: bool = False) -> np.ndarray:
        """Which genomes hold each k-mer: see :meth:`kmerdb.Database.lookup`."""
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
        hashes, anchors = minimizer_anchors(codes, k, self.config.m)
        return self._rows(codes, hashes, counts, anchors)

    def query(
        self,
        sequences: str | bytes | Sequence[str | bytes],
        names: Sequence[str] | None = None,
        threads: int = 1,
        z: int | None = None,
    ) -> QueryResult:
        """Which genomes hold the k-mers of each sequence, and how many: see :meth:`kmerdb.Database.query`."""
        if isinstance(sequences, (str, bytes)):
            sequences = [sequences]
        n_seqs = len(sequences)
        if names is not None and len(names) != n_seqs:
            raise InvalidParameterError("names", len(names), f"expected one name per sequence ({n_seqs})")
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise InvalidParameterError("threads", threads, "must be an integer >= 1")
        z = self.config.z if z is None else z
        if not isinstance(z, int) or isinstance(z, bool) or z < 0:
            raise InvalidParameterError("z", z, "must be an integer >= 0")
        # all sequences in one buffer, a separator (not a base: it breaks k-mers) after each;
        # str encodes one byte per character ("?" for any other than ASCII), so its length holds
        kinds = set(map(type, sequences))
        if kinds <= {str}:
            joined = memoryview("\x00".join(cast(Sequence[str], sequences)).encode("ascii", "replace"))
        elif kinds <= {bytes}:
            joined = memoryview(b"\x00".join(cast(Sequence[bytes], sequences)))
        else:
            sequences = [s.encode("ascii", "replace") if isinstance(s, str) else bytes(s) for s in sequences]
            joined = memoryview(b"\x00".join(cast(list[bytes], sequences)))
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=n_seqs)
        starts = _starts(lengths)
        results = None
        hits: np.ndarray | None = None
        if threads > 1 and lengths.sum() >= _PARALLEL_MIN_BASES:
            shares = _split(lengths, threads)
            if len(shares) > 1:
                tasks = [(bytes(_span(joined, starts, lengths, lo, hi)), lengths[lo:hi], z, lo) for lo, hi in shares]
                pool = self._query_pool(len(shares) - 1)
                # every share writes its rows of the hits in place (sent back pickled, 10,000
                # reads' rows over 1,000 genomes took as long as answering them)
                shared = SharedArray.create((n_seqs, len(self.labels)), np.int64) if pool is not None else None
                try:
                    results = pool.try_map(tasks, shared) if pool is not None else None
                    if results is not None:
                        hits = shared.private() if shared is not None else np.concatenate([r[0] for r in results])
                except WorkerError as exc:
                    _log.warning("%s; answering in this thread", exc)
                finally:
                    if shared is not None:
                        shared.close()
        if results is None or hits is None:
            results = [self._query_share(joined, lengths, z)]
            hits = cast(np.ndarray, results[0][0])  # the answer as it is: no copy of its hits
        n_kmers = np.concatenate([r[1] for r in results])
        found = np.concatenate([r[2] for r in results], axis=1)
        return QueryResult(
            self.labels, hits, n_kmers, tuple(names) if names is not None else None,
            found_raw=found[0], found=found[1], z=z,
        )

    def _query_share(
        self, joined, lengths: np.ndarray, z: int, first: int = 0, out: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, ...]:
        """(hits, n_kmers, found) of sequences joined by separators, in batches of bounded memory.

        With ``out`` (zeros, a row per sequence of the whole query), the hits go into its rows
        from ``first`` on, and None is returned for them."""
        n_g, n = len(self.labels), lengths.size
        hits = np.zeros((n, n_g), dtype=np.int64) if out is None else out[first : first + n]
        n_kmers = np.zeros(n, dtype=np.int64)
        found = np.zeros((2, n), dtype=np.int64)  # raw, after the z rule
        joined, starts = memoryview(joined), _starts(lengths)
        for lo, hi in _batches(lengths, self._batch_bases, self._batch_seqs):
            batch = _span(joined, starts, lengths, lo, hi)
            self._query_batch(batch, lengths[lo:hi], hits[lo:hi], n_kmers[lo:hi], found[:, lo:hi], z)
        if self._scratch().nbytes > _KEEP_BYTES:
            self._local.scratch = None
        return (hits if out is None else None), n_kmers, found

    def _query_batch(
        self,
        joined: memoryview,
        lengths: np.ndarray,
        hits: np.ndarray,
        n_kmers: np.ndarray,
        found: np.ndarray,
        z: int = 0,
    ) -> None:
        k, n_g = self.config.k, len(self.labels)
        starts = _starts(lengths)
        # the whole batch in one pass, its letters coded there; the separators code as INVALID
        windows = sequence_anchors(joined, k, self.config.m, self._scratch(), coded=False)
        positions, kmers, hashes = windows.positions, windows.kmers, windows.hashes
        anchors, others = windows.anchors, windows.others
        n_seqs = lengths.size
        # with approx evidence a position may be answered by several layers: union of rows
        union = self._any_approx
        if not union and not z:
            # exact evidence: each position is answered by at most one layer; the grouping
            # by partition tags each key with its sequence and counts them
            per_seq = np.zeros(n_seqs, dtype=np.int64)
            missed: list[np.ndarray] = []
            located = self._locate(kmers, hashes, anchors, others, positions, starts, per_seq, missed)
            n_kmers += per_seq
            # found = all but the missed, usually few (none when reads come from indexed genomes)
            per_found = per_seq - np.bincount(np.concatenate(missed), minlength=n_seqs) if missed else per_seq
            found[0] += per_found
            found[1] += per_found
            _tally(located, hits, int(per_seq.max(initial=0)))
            return
        # positions are ascending: count them per sequence by searching the starts
        per_seq = np.diff(np.searchsorted(positions, np.append(starts, len(joined))))
        n_kmers += per_seq
        seq_of = np.repeat(np.arange(n_seqs, dtype=np.int64), per_seq)
        located = self._locate(kmers, hashes, anchors, others)
        hit = np.zeros(kmers.size, dtype=bool)
        answers = np.zeros(kmers.size, dtype=np.int32)
        for _, idx, _ in located:
            hit[idx] = True
            answers[idx] += 1  # a layer answers a position once
        bounds = np.zeros(n_seqs + 1, dtype=np.int64)
        np.cumsum(per_seq, out=bounds[1:])

        def per_sequence(mask: np.ndarray) -> np.ndarray:
            total = np.zeros(mask.size + 1, dtype=np.int64)
            np.cumsum(mask, out=total[1:])
            return total[bounds[1:]] - total[bounds[:-1]]

        found[0] += per_sequence(hit)
        kept = z_rule(positions, hit, z) if z and kmers.size else hit
        found[1] += per_sequence(kept)
        # a kept position answered by one layer is tallied like an exact one; the few answered
        # by several (an approx false positive beside a true member) are united genome by genome
        single = []
        pos_parts, col_parts = [], []
        for layer, idx, slots in located:
            keep = kept[idx]
            many = keep & (answers[idx] > 1)
            if many.any():
                rows = layer_rows(layer, slots[many], False, n_g)
                pos_parts.append(idx[many][rows.row_of()])
                col_parts.append(rows.columns.astype(np.int64))
                keep &= ~many
            if keep.all():
                single.append((layer, seq_of[idx], slots))
            elif keep.any():
                single.append((layer, seq_of[idx[keep]], slots[keep]))
        _tally(single, hits, int(lengths.max(initial=0)))
        if pos_parts:
            cells = np.concatenate(pos_parts) * n_g + np.concatenate(col_parts)
            cells.sort()
            cells = cells[_firsts(cells)]  # a genome counts once per position
            pos = cells // n_g
            hits += np.bincount(seq_of[pos] * n_g + (cells - pos * n_g), minlength=n_seqs * n_g).reshape(n_seqs, n_g)


def layer_rows(layer: Layer, slots: np.ndarray, counts: bool, n_columns: int) -> SparseRows:
    """Rows of ``slots`` of a layer over the database's ``n_columns`` genomes, all its groups
    together (counts from groups that keep them when ``counts``)."""
    parts = [g.rows(slots) for g in layer.groups if g.live]
    if not counts:
        parts = [p.presence() for p in parts]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return SparseRows.empty(np.asarray(slots).size, n_columns, counts)
    # groups hold disjoint genomes: their (row, column) pairs only need sorting together
    with_counts = counts and any(p.counts is not None for p in parts)
    return SparseRows.from_pairs(
        np.concatenate([p.row_of() for p in parts]),
        np.concatenate([p.columns for p in parts]),
        parts[0].n,
        parts[0].n_columns,
        np.concatenate([p.value_counts() for p in parts]) if with_counts else None,
    )


def _firsts(sorted_values: np.ndarray) -> np.ndarray:
    """Mask of the first of every run of equal values in a sorted array."""
    first = np.empty(sorted_values.size, dtype=bool)
    if first.size:
        first[0] = True
        np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    return first


class _Hits:
    """The (sequence, class) tallies of one batch's colour-class groups, expanded to genomes.

    A class is expanded to its members, or for a class of most of its group's genomes to all
    the group's genomes (one amount per sequence and group layout) less the few it lacks.
    Each group expands its pairs itself, decoding each class from its table in place
    (:meth:`~kmerdb.store.classes.ColourClasses.add_class_hits`): a pair found ``a`` times adds
    ``a`` to each of its cells, with no member list and no array of cells.  (Visiting the
    hits a block of sequences at a time, every group in turn, measured slower at 1,000
    genomes whatever the block: the class tables are then read once per block.)
    """

    def __init__(self, hits: np.ndarray, most: int) -> None:
        self.hits = hits
        self.n_seqs, self.n_g = hits.shape
        # database columns of a group (as bytes) -> (columns, amount per sequence of its
        # core classes)
        self.everyone: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        # Class hits add up in the narrowest integer type that holds ``most`` (which bounds a
        # sequence's positions, so every final cell: a class's genomes get its amount, those a
        # large class lacks minus it, the rest is ``everyone``'s).  Intermediate sums may leave
        # the type's range (a difference subtracts what its parent added): they wrap, and the
        # final cell, being in range, is exact.  Fewer bytes per row, fewer cache lines from
        # memory per class: reads of 150 bases over 1,000 genomes need a byte per cell, and a
        # batch of 20,000 of them then stays in the last-level cache (20 MB, not 80 in int32).
        self.narrow: np.ndarray | None = None
        self.narrow_type = next((t for t, top in _NARROW if most <= top), None)

    def add(self, group: ColumnEncoding, seq: np.ndarray, ids: np.ndarray, amount: np.ndarray) -> None:
        """Pairs of one group (a sequence's best together): sequence, class id, times found."""
        key = group.cols.tobytes()
        if key not in self.everyone:
            self.everyone[key] = (group.cols, np.zeros(self.n_seqs, dtype=np.int64))
        if self.narrow_type is None:
            group.add_class_hits(self.hits, self.everyone[key][1], seq, ids, amount)
            return
        if self.narrow is None:
            # rows of whole words: one-byte cells then take a group's bitmaps eight at a time
            self.narrow = np.zeros((self.n_seqs, -(-self.n_g // 8) * 8), dtype=self.narrow_type)
        group.add_class_hits(self.narrow, self.everyone[key][1], seq, ids, amount)

    def finish(self) -> None:
        # the core classes' amounts go into the narrow sums (each at most ``most``: their
        # final cells fit, as every cell does), so the int64 hits take one pass
        target = self.hits if self.narrow is None else self.narrow[:, : self.n_g]
        for cols, amounts in self.everyone.values():
            if not amounts.any():
                continue
            part = amounts.astype(target.dtype)[:, None]
            if cols.size == self.n_g:  # every column of the database
                target += part
            else:
                target[:, cols] += part
        if self.narrow is not None:
            # the hits are zeros here (see _tally): one write of each int64 cell, no read, casting
            # the narrow sums (in range, so exact) as they go
            np.copyto(self.hits, target, casting="unsafe")
            self.narrow = None
        self.everyone = {}


def _tally(located: list[tuple[Layer, np.ndarray, np.ndarray]], hits: np.ndarray, most: int) -> None:
    """Count one hit per (sequence, genome) for every found position into ``hits`` (zeros on
    entry: the expansion's sums are copied, not added).

    ``located`` holds (layer, sequence of each position, its slot), each position once.
    Dense groups give their presence as packed bytes (eight genomes to a byte): a table per
    byte layout counts the (sequence, byte value) pairs in one compiled pass
    (:meth:`~kmerdb.store.encodings.ColumnEncoding.tally_presence_bytes`, through
    :func:`kmerdb.core.kernels.byte_tally` or, for unitig-ordered classes of up to 8 genomes,
    :func:`kmerdb.core.kernels.run_byte_tally`; batches are sized so that the tables hold at
    most :data:`_TALLY_BINS` bins in all), and a small product with the bits of each value
    gives the per-genome sums.  Colour-class groups of many genomes give each position's
    (sequence, class) to the expansion, which expands each class a sequence reaches once to
    the genomes of its class.  Neither makes a (positions, genomes) matrix.  ``most`` bounds
    the positions of any one sequence.
    """
    n_seqs = hits.shape[0]
    tables: dict[tuple[int, ...], np.ndarray] = {}

    def table_for(cols: np.ndarray) -> np.ndarray:
        layout = tuple(cols.tolist())
        if layout not in tables:
            tables[layout] = np.zeros(n_seqs << cols.size, dtype=np.int64)
        return tables[layout]

    tally = _Hits(hits, most)
    for layer, seqs, slots in located:
        for group in layer.groups:
            if not group.live:
                continue
            if group.tallies_by_class:
                _tally_classes(group, seqs, slots, tally)
                continue
            group.tally_presence_bytes(slots, seqs, table_for)
    tally.finish()
    for layout, table in tables.items():
        width = len(layout)
        # float64 product: exact for any count below 2**53
        sums = np.rint(table.reshape(n_seqs, 1 << width).astype(np.float64) @ _VALUE_BITS[width]).astype(np.int64)
        for j, col in enumerate(layout):
            if col >= 0:
                hits[:, col] += sums[:, j]


def _tally_classes(group: ColumnEncoding, seqs: np.ndarray, slots: np.ndarray, tally: _Hits) -> None:
    """Tally the found positions of one colour-class group: each position's (sequence,
    class), expanded to the class's genomes (or to all but the few a large class lacks).

    A partition's keys keep their order, so each sequence's positions come together and the
    expansion adds up a class's repeats within a sequence itself before expanding it once; no
    sort into distinct pairs is needed (any order is exact, only slower).
    """
    if not seqs.size:
        return
    tally.add(group, seqs, group.class_ids(slots), np.ones(seqs.size, dtype=np.int64))


def _batches(lengths: np.ndarray, max_positions: int, max_seqs: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ranges of sequences of about ``max_positions`` bases each (at least one
    sequence), and of at most ``max_seqs`` sequences."""
    cum = np.cumsum(lengths)
    total = int(cum[-1]) if cum.size else 0
    # a batch ends with the sequence that reaches the next multiple of max_positions
    ends = np.searchsorted(cum, np.arange(max_positions, total, max_positions), side="left") + 1
    cuts: list[np.ndarray] = [np.array([0, lengths.size]), ends]
    if max_seqs is not None:
        cuts.append(np.arange(max_seqs, lengths.size, max_seqs))
    bounds = np.unique(np.concatenate(cuts))
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


def query_batches(
    query: Callable[..., QueryResult],
    records: Iterable[tuple[str, bytes]],
    batch_bases: int | None = None,
    **options,
) -> Iterator[QueryResult]:
    """Query a stream of records in batches of bounded size, one result per batch.

    Memory is bounded by the batch whatever the length of the stream: the records of one
    batch are held, queried and dropped before the next is read.

    Parameters
    ----------
    query : callable
        ``query(sequences, names=..., **options) -> QueryResult``, such as
        :meth:`kmerdb.Database.query`.
    records : iterable of (str, bytes)
        ``(name, sequence)`` pairs, read lazily (for example from
        :func:`kmerdb.ops.inputs.read_records`).
    batch_bases : int, optional
        Bases per batch (default :data:`QUERY_BATCH_BASES`, read at call time).  A batch
        closes with the record that reaches it, so a record longer than this is a batch of
        its own.
    **options
        Passed to ``query`` (``threads``, ``z``).

    Yields
    ------
    QueryResult
        The answer for the records of one batch, in input order, with their names.
    """
    if not callable(query):
        raise InvalidTypeError("query", query, "a callable such as Database.query")
    if isinstance(records, (str, bytes)) or not hasattr(records, "__iter__"):
        raise InvalidTypeError("records", records, "an iterable of (name, sequence) pairs")
    limit = QUERY_BATCH_BASES if batch_bases is None else batch_bases
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidParameterError("batch_bases", limit, "must be an integer >= 1")
    names: list[str] = []
    seqs: list[bytes] = []
    held = 0
    for name, seq in records:
        names.append(name)
        seqs.append(seq)
        held += len(seq)
        if held >= limit:
            yield query(seqs, names=names, **options)
            names, seqs, held = [], [], 0
    if seqs:
        yield query(seqs, names=names, **options)
