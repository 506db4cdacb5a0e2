"""Adding genomes to a snapshot: the core shared by merge, ``db.merge`` and appends.

Adding genomes (``merge``, ``db.merge``, ``db.append_genomes``) follows the merge design:

1. validation before any write: every source ready, equal k, m and partition count,
   the same evidence, counts where counts are asked for, unique labels (or renamed
   ``label.1``, ``label.2``, ... in order);
2. per partition, one task per partition through an executor (serial, local processes or
   a Dask cluster; see :mod:`kmerdb.engine.executor`): the k-mers of the new genomes (the
   layers of other databases, or k-mers counted from FASTA/FASTQ files through the build's
   scatter, :mod:`kmerdb.ops.scatter`) are united into sorted keys and their sparse rows
   (:class:`~kmerdb.core.colours.SparseRows`, read a block of slots at a time);
   pass 1 classifies every k-mer as a hit (the destination layer and slot holding it)
   or a miss; pass 2 writes, for every destination layer, one column group with the new
   genomes' columns, and puts all misses into one new layer whose columns for the
   genomes already there are all absent;
3. genome records rebuilt under their final labels (counts: from the counts; presence:
   the source's own record).

Every layer of every partition so keeps one column per genome, and one operation adds at
most one layer and one column group per layer to a partition.  No k-mer x genome matrix is
made: a task's memory is that of the new genomes' (k-mer, genome) occurrences, plus a row
pointer per slot of the layer whose new group it writes, so appending one genome costs about
what counting it does, whatever the number of genomes already there.  Nothing here commits: the
new files are written (immutable, durable) and a new snapshot is returned for the
transaction (or, for ``merge`` into a new directory, committed there once).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kmerdb.config import Config
from kmerdb.core.colours import SparseRows
from kmerdb.engine.executor import Executor, open_executor
from kmerdb.errors import (
    CorruptDatabaseError,
    DuplicateLabelError,
    IncompatibleIndexError,
    InvalidParameterError,
    InvalidTypeError,
    MissingCountsError,
    MixedEvidenceError,
    NotReadyError,
)
from kmerdb.ops.inputs import GenomeInput, resolve_genomes
from kmerdb.ops.scatter import check_min_count, count_bucket, scatter_inputs
from kmerdb.ops.spill import Bucket, spill_folder
from kmerdb.params import path_argument
from kmerdb.store.catalog import GenomeRecord, LayerRecord, Snapshot, read_as_reader
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.layer import Layer, layer_prefix, write_group, write_layer
from kmerdb.store.lock import ReaderRegistration
from kmerdb.store.storage import deferred_sync

__all__ = [
    "Source",
    "AddContext",
    "read_sources",
    "release_sources",
    "check_compatible",
    "dropped_counts",
    "final_labels",
    "add_genomes",
    "add_database_genomes",
    "add_input_genomes",
    "layer_rows",
    "slot_rows",
    "all_rows",
    "block_slots",
    "collect",
]

#: progress(phase, done, total); phases here: "scatter" (input bases), "merge" (partitions).
Progress = Callable[[str, int, "int | None"], None]

_U32_MAX = np.iinfo(np.uint32).max
#: Bytes of temporaries a block of slots read from a layer may take.
_BLOCK_BYTES = 32 << 20
_BYTES_PER_PAIR = 32
_MIN_BLOCK_SLOTS = 1024
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # multiplicative hashing (Fibonacci)


@dataclass(frozen=True)
class Source:
    """A database read as a source: its directory, the snapshot read from it, and the
    registration that keeps a vacuum of the source from removing that snapshot's files."""

    path: str
    snapshot: Snapshot
    registration: ReaderRegistration | None = None


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------


def read_sources(paths: Iterable) -> list[Source]:
    """Read the latest snapshot of every source database (paths, or open handles), registered
    as a reader of it; nothing is written.

    Raises
    ------
    DatabaseNotFoundError
        A source is not a kmerdb database.
    NotReadyError
        A source was never completed (its build failed or is running).
    """
    out: list[Source] = []
    if isinstance(paths, (str, bytes, os.PathLike)) or not isinstance(paths, Iterable):
        raise InvalidTypeError("sources", paths, "a list of database paths")
    try:
        for path in paths:
            path = path_argument(path.path if hasattr(path, "snapshot") else path, "sources")  # a Database, or a path
            snap, registration = read_as_reader(path)
            out.append(Source(path, snap, registration))
            if snap.state != "ready":
                raise NotReadyError(f"{path}: not ready (state {snap.state!r}); only complete indexes can be merged")
    except BaseException:
        release_sources(out)
        raise
    return out


def release_sources(sources: Iterable[Source]) -> None:
    """End the reader registrations of sources read by :func:`read_sources`."""
    for src in sources:
        if src.registration is not None:
            src.registration.close()


def _evidence(cfg: Config) -> str:
    return "exact" if cfg.evidence == "exact" else f"approx (b={cfg.fp_bits}, z={cfg.z})"


def check_compatible(first: tuple[str, Config], others: Sequence[Source], counts: bool) -> None:
    """Check that ``others`` can be combined with an index of config ``first``.

    Raises
    ------
    IncompatibleIndexError
        k, m or the partition count differ.
    MixedEvidenceError
        The evidence differs (exact vs approx, or other fingerprint bits or z).
    MissingCountsError
        ``counts`` is asked for and a source keeps presence only.
    """
    path0, cfg0 = first
    for src in others:
        cfg = src.snapshot.config
        if (cfg.k, cfg.m, cfg.n_partitions) != (cfg0.k, cfg0.m, cfg0.n_partitions):
            raise IncompatibleIndexError(
                f"{src.path}: k={cfg.k}, m={cfg.m}, partitions={cfg.n_partitions} differ from {path0} "
                f"(k={cfg0.k}, m={cfg0.m}, partitions={cfg0.n_partitions}); indexes combine only with equal "
                "k, m and partition count"
            )
    for src in others:
        cfg = src.snapshot.config
        if (cfg.evidence, cfg.fp_bits, cfg.z) != (cfg0.evidence, cfg0.fp_bits, cfg0.z):
            raise MixedEvidenceError(src.path, _evidence(cfg), f"{_evidence(cfg0)} of {path0}")
    if counts:
        for src in others:
            if not src.snapshot.config.counts:
                raise MissingCountsError(src.path)


def dropped_counts(others: Sequence[Source], counts: bool, into: str, hint: str) -> tuple[str, ...]:
    """The sources whose counts an index of presence bits (``counts`` False) drops.

    Logged as a warning on the ``kmerdb`` logger (``hint`` says how to keep them), since
    the result looks complete either way.
    """
    if counts:
        return ()
    counted = tuple(src.path for src in others if src.snapshot.config.counts)
    if counted:
        logging.getLogger("kmerdb").warning(
            "%s keeps presence only: the counts of %s are dropped (%s)", into, ", ".join(counted), hint
        )
    return counted


def final_labels(taken: Sequence[str], incoming: Sequence[str], rename_duplicates: bool) -> list[str]:
    """Labels for ``incoming`` genomes next to ``taken`` ones.

    A label already used raises :class:`DuplicateLabelError`, or with ``rename_duplicates``
    becomes ``label.1``, ``label.2``, ... (the first suffix not in use), in order.
    """
    used = set(taken)
    out = []
    for label in incoming:
        if label in used:
            if not rename_duplicates:
                raise DuplicateLabelError(label, "rename it, or merge with --rename-duplicates (label.1, label.2, ...)")
            i = 1
            while f"{label}.{i}" in used:
                i += 1
            label = f"{label}.{i}"
        used.add(label)
        out.append(label)
    return out


def collect(results: Iterator, n_tasks: int, progress: Progress | None, phase: str) -> list:
    """All results of an executor map, reporting ``progress(phase, done, n_tasks)`` as they complete."""
    out = []
    for done, result in enumerate(results, 1):
        out.append(result)
        if progress is not None:
            progress(phase, done, n_tasks)
    return out


def _is_sorted_unique(keys: np.ndarray) -> bool:
    return keys.size < 2 or bool((keys[1:] > keys[:-1]).all())


def _union(pieces: list[tuple[np.ndarray, SparseRows, int]], n_cols: int, counts: bool) -> tuple[np.ndarray, SparseRows]:
    """Unite (keys, rows, column offset) pieces into sorted distinct keys and their rows over
    ``n_cols`` columns (a piece's column j becomes column ``offset + j``); pieces of the same
    columns hold disjoint keys."""
    if not pieces:
        return np.zeros(0, np.uint64), SparseRows.empty(0, n_cols, counts)
    if len(pieces) == 1 and _is_sorted_unique(pieces[0][0]):
        keys, rows, off = pieces[0]
        return keys, _shifted(rows, off, n_cols)
    # one argsort of all keys gives the union and every key's row in it (much faster than
    # searchsorted of unsorted keys)
    allk = np.concatenate([p[0] for p in pieces])
    order = np.argsort(allk)
    sk = allk[order]
    del allk
    first = np.empty(sk.size, dtype=bool)
    if sk.size:
        first[0] = True
        np.not_equal(sk[1:], sk[:-1], out=first[1:])
    union = sk[first]
    del sk
    row_of = np.empty(order.size, dtype=np.int64)
    row_of[order] = np.cumsum(first) - 1
    del order, first
    rows_at, cols, vals = [], [], []
    lo = 0
    for keys, rows, off in pieces:
        rows_at.append(row_of[lo : lo + keys.size][rows.row_of()])
        cols.append(rows.columns + np.int32(off))
        if counts:
            vals.append(rows.value_counts())
        lo += keys.size
    del row_of
    return union, SparseRows.from_pairs(
        np.concatenate(rows_at), np.concatenate(cols), union.size, n_cols, np.concatenate(vals) if counts else None
    )


def _shifted(rows: SparseRows, offset: int, n_columns: int) -> SparseRows:
    """``rows`` with every column moved ``offset`` columns on, in a space of ``n_columns``."""
    return SparseRows(rows.indptr, rows.columns + np.int32(offset), rows.counts, int(n_columns))


def _placed(rows: SparseRows, at: np.ndarray, n: int) -> SparseRows:
    """``n`` rows: ``rows[i]`` at row ``at[i]`` (distinct), the others empty."""
    order = np.argsort(at, kind="stable")
    placed = rows.take(order)
    sizes = np.zeros(n, dtype=np.int64)
    sizes[at[order]] = placed.sizes
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=indptr[1:])
    return SparseRows(indptr, placed.columns, placed.counts, rows.n_columns)


def block_slots(n_columns: int, block_bytes: int | None = None) -> int:
    """Slots of a layer read at once when rows have ``n_columns`` columns, so that a block's
    temporaries stay within about ``block_bytes`` even if every k-mer were in every genome
    (reading a group costs up to ~32 bytes per (k-mer, genome) pair, a dense one ~1 byte
    per slot and genome more)."""
    budget = _BLOCK_BYTES if block_bytes is None else block_bytes
    return max(_MIN_BLOCK_SLOTS, budget // (_BYTES_PER_PAIR * max(1, n_columns)))


def slot_rows(layer: Layer, slots: np.ndarray, n_columns: int, counts: bool) -> SparseRows:
    """Rows of ``slots`` over the database's ``n_columns`` genomes, every group of the layer
    together; with ``counts``, presence-only groups count 1 where they hold a k-mer."""
    parts = [g.rows(slots) for g in layer.groups if g.live]
    if not parts:
        return SparseRows.empty(slots.size, n_columns, counts)
    rows = parts[0] if len(parts) == 1 else SparseRows.hstack([(part, 0) for part in parts], n_columns)
    if not counts:
        return rows.presence()
    if rows.counts is None:
        return SparseRows(rows.indptr, rows.columns, rows.value_counts(), rows.n_columns)
    return rows


def all_rows(layer: Layer, n_columns: int, counts: bool) -> SparseRows:
    """Rows of every slot of ``layer`` (slot order), read a block of slots at a time."""
    step = block_slots(n_columns)
    blocks = [
        slot_rows(layer, np.arange(lo, min(layer.n, lo + step), dtype=np.int64), n_columns, counts)
        for lo in range(0, layer.n, step)
    ]
    return SparseRows.vstack(blocks, n_columns) if blocks else SparseRows.empty(0, n_columns, counts)


def layer_rows(root: str, rec: LayerRecord, genomes, counts: bool) -> tuple[np.ndarray, SparseRows]:
    """k-mers of a layer of database ``root`` (slot order) and their rows over ``genomes``
    (records, in column order); rows of no genome are dropped."""
    column_of = {g.id: i for i, g in enumerate(genomes)}
    layer = Layer(root, rec, column_of)
    rows, kept = all_rows(layer, len(genomes), counts).drop_empty()
    keys = np.asarray(layer.kmers())
    if kept.size != keys.size:
        keys = keys[kept]
    return keys, rows


def _classify(layer: Layer, keys: np.ndarray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which of the sorted distinct ``keys`` the layer holds, and their slots (hits only)."""
    n = layer.n
    if n == 0 or keys.size == 0:
        return np.zeros(keys.size, dtype=bool), np.zeros(0, dtype=np.int64)
    if exact and n > 16 * keys.size:
        # a large layer and few keys: MPHF lookups beat reading the whole layer
        found, slots = layer.find(keys)
        return found, slots[found]
    # a bit table of the keys' hashes (4 entries per key) keeps only the layer's k-mers that
    # may be keys (all hits, ~1/4 of the others); those few are sorted and looked up
    members = layer.unitig_kmers()
    bits = min(28, max(10, int(np.ceil(np.log2(4 * keys.size)))))
    shift = np.uint64(64 - bits)
    table = np.zeros(1 << bits, dtype=bool)
    table[(keys * _GOLDEN) >> shift] = True
    candidates = np.sort(members[table[(members * _GOLDEN) >> shift]])
    pos = np.minimum(np.searchsorted(keys, candidates), keys.size - 1)
    ok = keys[pos] == candidates
    hit = np.zeros(keys.size, dtype=bool)
    hit[pos[ok]] = True
    found, slots = layer.find(candidates[ok])
    if not found.all():
        raise CorruptDatabaseError(layer.lookup_file, "a k-mer of the layer is not found in it")
    return hit, slots


def _column_stats(rows: SparseRows, n_columns: int) -> list:
    """Per column ``0..n_columns-1``: (distinct k-mers, occurrences, spectrum values, spectrum
    counts), from one sort of the (column, count) pairs."""
    sel = rows.columns < n_columns
    pairs = (rows.columns[sel].astype(np.uint64) << np.uint64(32)) | rows.value_counts()[sel].astype(np.uint64)
    pairs.sort()
    if pairs.size:
        first = np.empty(pairs.size, dtype=bool)
        first[0] = True
        np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        runs = np.diff(np.append(starts, pairs.size))
        pairs = pairs[starts]
    else:
        runs = np.zeros(0, dtype=np.int64)
    column = (pairs >> np.uint64(32)).astype(np.int64)
    value = (pairs & np.uint64(_U32_MAX)).astype(np.int64)
    bounds = np.searchsorted(column, np.arange(n_columns + 1))
    out = []
    for j in range(n_columns):
        v, c = value[bounds[j] : bounds[j + 1]], runs[bounds[j] : bounds[j + 1]]
        out.append((int(c.sum()), int((v * c).sum()), v, c))
    return out


@dataclass(frozen=True)
class AddContext:
    """What every task adding genomes to a snapshot's partitions shares.

    Attributes
    ----------
    root : str
        The database written (absolute).
    config : Config
        Its configuration.
    generation : int
        The generation the new files belong to.
    need_counts : bool
        Whether the new genomes' rows are gathered as counts (counts kept, or counted inputs).
    new_ids, base_ids : tuple of int
        Ids of the genomes added, and of the genomes already there.
    base_genomes : tuple of GenomeRecord
        The genomes already there.
    base_partitions : tuple
        The base snapshot's layers, by partition.
    sources : tuple of (path, Snapshot)
        The source databases whose genomes are added, as read.
    offsets : tuple of int
        Column of each source's first genome among the new ones.
    spill_dir : str or None
        The spill folder of the inputs' scatter (None without inputs).
    n_inputs : int
        Genomes added from files; their columns come after the sources'.
    inputs_offset : int
        Column of the first of them among the new ones.
    layer_id0 : int
        Partition ``p``'s new layer gets id ``layer_id0 + p``.
    convert_root : str or None
        A count index whose layers become presence layers (merge of a count source into a
        presence output): its directory.
    min_count : int
        Genomes added from files index only the k-mers they hold at least this many times.
    """

    root: str
    config: Config
    generation: int
    need_counts: bool
    new_ids: tuple[int, ...]
    base_ids: tuple[int, ...]
    base_genomes: tuple[GenomeRecord, ...]
    base_partitions: tuple
    sources: tuple[tuple[str, Snapshot], ...]
    offsets: tuple[int, ...]
    spill_dir: str | None
    n_inputs: int
    inputs_offset: int
    layer_id0: int
    convert_root: str | None = None
    min_count: int = 1


def _add_task(ctx: AddContext, p: int, bucket: Bucket | None):
    """Task: add the new genomes' columns to partition ``p`` (see the module docstring)."""
    with deferred_sync():  # the writer syncs the whole tree once before it commits
        return _add_partition(ctx, p, bucket)


def _add_partition(ctx: AddContext, p: int, bucket: Bucket | None):
    cfg = ctx.config
    root = ctx.root
    gen = ctx.generation
    need_counts = ctx.need_counts
    new_ids = ctx.new_ids
    base_ids = ctx.base_ids
    column_of_base = {gid: i for i, gid in enumerate(base_ids)}
    base_layers = list(ctx.base_partitions[p])

    # presence output bootstrapped from a count index: its groups become presence groups
    if ctx.convert_root is not None:
        converted = []
        column_of = {g.id: i for i, g in enumerate(ctx.base_genomes)}
        for rec in base_layers:
            layer = Layer(ctx.convert_root, rec, column_of)
            rows = all_rows(layer, len(column_of), counts=False)
            group = write_group(root, layer_prefix(p, rec.id), gen, base_ids, rows, np.arange(layer.n), cfg)
            converted.append(replace(rec, groups=(group,)))
        base_layers = converted
    if not new_ids:
        return p, tuple(base_layers), None, 0

    # the new genomes' k-mers in this partition, united
    pieces = []
    for (src_path, src_snap), off in zip(ctx.sources, ctx.offsets):
        for rec in src_snap.partitions[p]:
            keys, rows = layer_rows(src_path, rec, src_snap.genomes, need_counts)
            if keys.size:
                pieces.append((keys, rows, off))
    input_stats = None
    if bucket is not None and (bucket.extents or bucket.n_records):
        keys, rows, input_stats = count_bucket(
            ctx.spill_dir or "", bucket, cfg.k, ctx.n_inputs, None, ctx.min_count, counts=need_counts
        )
        pieces.append((keys, rows, ctx.inputs_offset))
    union, united = _union(pieces, len(new_ids), need_counts)
    del pieces
    stats = None
    if need_counts:
        # the counted inputs come with their statistics; database sources' come from the counts
        n_db = ctx.inputs_offset
        stats = _column_stats(united, n_db) if n_db and cfg.counts else [None] * n_db
        if bucket is not None:
            no_input = [(0, 0, np.zeros(1, np.int64))] * ctx.n_inputs
            for nd, tot, spec in input_stats if input_stats is not None else no_input:
                occurring = np.flatnonzero(spec)
                occurring = occurring[occurring > 0]
                stats.append((int(nd), int(tot), occurring.astype(np.int64), spec[occurring].astype(np.int64)))
    crashpoint("add.united")

    # pass 1: classify every k-mer as a hit (layer, slot) or a miss
    where = np.full(union.size, -1, dtype=np.int64)
    slot = np.zeros(union.size, dtype=np.int64)
    layers = [Layer(root, rec, column_of_base) for rec in base_layers]
    remaining: np.ndarray = np.arange(union.size)
    for li, layer in enumerate(layers):
        if not remaining.size:
            break
        hit, slots = _classify(layer, union[remaining], cfg.evidence == "exact")
        where[remaining[hit]] = li
        slot[remaining[hit]] = slots
        remaining = remaining[~hit]
    crashpoint("add.classified")

    # pass 2: the new genomes' columns for every layer (rows by slot), and one new layer for
    # the misses; only the new genomes' occurrences are touched
    values = united if cfg.counts else united.presence()
    del united
    records = []
    for li, (rec, layer) in enumerate(zip(base_layers, layers)):
        sel = np.flatnonzero(where == li)
        rows = _placed(values.take(sel), slot[sel], layer.n)
        group = write_group(root, layer_prefix(p, rec.id), gen, new_ids, rows, np.arange(layer.n), cfg)
        records.append(replace(rec, groups=rec.groups + (group,)))
        crashpoint("add.group")
    misses = np.flatnonzero(where < 0)
    if misses.size:
        rows = _shifted(values.take(misses), len(base_ids), len(base_ids) + len(new_ids))
        record = write_layer(root, p, ctx.layer_id0 + p, gen, union[misses], [(base_ids + new_ids, rows)], cfg)
        records.append(record)
        crashpoint("add.layer")
    return p, tuple(records), stats, int(misses.size)


def add_genomes(
    root: str,
    base: Snapshot,
    generation: int,
    sources: Sequence[Source],
    source_labels: Sequence[str],
    inputs: Sequence[GenomeInput],
    input_labels: Sequence[str],
    threads: int | None,
    progress: Progress | None,
    convert: Source | None = None,
    scheduler: Any = None,
    min_count: int = 1,
) -> Snapshot:
    """Add the genomes of ``sources`` and ``inputs`` to ``base``; returns the new snapshot.

    ``min_count`` applies to the ``inputs``: a k-mer seen fewer times in one is not indexed for it.
    """
    cfg = base.config
    src_genomes = [g for s in sources for g in s.snapshot.genomes]
    n_new = len(src_genomes) + len(inputs)
    new_ids = tuple(range(base.next_genome_id, base.next_genome_id + n_new))
    offsets, off = [], 0
    for s in sources:
        offsets.append(off)
        off += len(s.snapshot.genomes)
    if n_new == 0 and convert is None:
        return replace(base, generation=generation)
    root = os.path.abspath(root)
    context = AddContext(
        root=root,
        config=cfg,
        generation=generation,
        need_counts=cfg.counts or bool(inputs),
        new_ids=new_ids,
        base_ids=tuple(g.id for g in base.genomes),
        base_genomes=tuple(base.genomes),
        base_partitions=tuple(base.partitions),
        sources=tuple((os.path.abspath(s.path), s.snapshot) for s in sources),
        offsets=tuple(offsets),
        spill_dir=None,
        n_inputs=len(inputs),
        inputs_offset=off,
        layer_id0=base.next_layer_id,
        convert_root=None if convert is None else os.path.abspath(convert.path),
        min_count=min_count,
    )
    with open_executor(threads, scheduler, n_tasks=cfg.n_partitions) as executor:
        if inputs:
            with spill_folder(root) as spill_dir:
                buckets = _scatter(list(inputs), cfg, executor, spill_dir, progress)
                crashpoint("append.scattered")
                tasks = [(p, buckets.bucket(p)) for p in range(cfg.n_partitions)]
                context = replace(context, spill_dir=spill_dir)
                results = collect(executor.map(_add_task, context, tasks), len(tasks), progress, "merge")
        else:
            tasks = [(p, None) for p in range(cfg.n_partitions)]
            results = collect(executor.map(_add_task, context, tasks), len(tasks), progress, "merge")
    need_counts = context.need_counts
    partitions = list(base.partitions)
    n_kmers = np.zeros(n_new, dtype=np.int64)
    totals = np.zeros(n_new, dtype=np.int64)
    spec_values: list[list] = [[] for _ in range(n_new)]
    spec_counts: list[list] = [[] for _ in range(n_new)]
    for p, records, stats, _ in results:
        partitions[p] = records
        if stats is not None:
            for j, st_j in enumerate(stats):
                if st_j is None:
                    continue
                nk, tot, values, counts = st_j
                n_kmers[j] += nk
                totals[j] += tot
                spec_values[j].append(values)
                spec_counts[j].append(counts)
    crashpoint("add.done")
    records = []
    for j in range(n_new):
        if need_counts:
            spectrum = _merge_spectrum(spec_values[j], spec_counts[j])
        if j < len(src_genomes):
            g = src_genomes[j]
            if cfg.counts:  # rebuilt from the counts
                if g.min_count > 1:  # the counts below min_count are in the source's spectrum only
                    below = tuple(pair for pair in g.spectrum if pair[0] < g.min_count)
                    spectrum = below + tuple(pair for pair in spectrum if pair[0] >= g.min_count)
                rec = GenomeRecord(
                    new_ids[j], source_labels[j], g.sources, int(n_kmers[j]), int(totals[j]), spectrum, g.min_count
                )
            else:  # presence keeps the source's own record
                rec = replace(g, id=new_ids[j], label=source_labels[j])
        else:
            item = inputs[j - len(src_genomes)]
            rec = GenomeRecord(
                new_ids[j],
                input_labels[j - len(src_genomes)],
                tuple(p if item.record is None else f"{p}#{item.record}" for p in item.paths),
                int(n_kmers[j]),
                int(totals[j]),
                spectrum,
                min_count,
            )
        records.append(rec)
    return replace(
        base,
        generation=generation,
        genomes=tuple(base.genomes) + tuple(records),
        partitions=tuple(partitions),
        next_genome_id=base.next_genome_id + n_new,
        next_layer_id=base.next_layer_id + cfg.n_partitions,
    )


def _scatter(items: list[GenomeInput], config: Config, executor: Executor, spill_dir: str, progress: Progress | None):
    """Read the inputs into per-partition spill buckets (the build's scatter)."""

    def tick(phase: str, done: int, total) -> None:
        crashpoint("append.scatter")
        if progress is not None:
            progress(phase, done, total)

    return scatter_inputs(items, config, executor, spill_dir, tick)


def _merge_spectrum(values: list, counts: list) -> tuple[tuple[int, int], ...]:
    if not values:
        return ()
    v = np.concatenate(values)
    c = np.concatenate(counts)
    if not v.size:
        return ()
    order = np.argsort(v, kind="stable")
    v, c = v[order], c[order]
    first = np.empty(v.size, dtype=bool)
    first[0] = True
    np.not_equal(v[1:], v[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    sums = np.add.reduceat(c, starts)
    return tuple((int(a), int(b)) for a, b in zip(v[starts], sums))


# ---------------------------------------------------------------------------------------
# operations on a working snapshot (called by kmerdb.transaction.Transaction)
# ---------------------------------------------------------------------------------------


def add_database_genomes(
    root: str,
    base: Snapshot,
    generation: int,
    sources: Sequence[str | os.PathLike],
    rename_duplicates: bool = False,
    threads: int | None = None,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
) -> tuple[Snapshot, dict]:
    """Merge the genomes of other databases into ``base`` (``db.merge``).

    ``scheduler`` (a Dask address or ``distributed.Client``) runs the partition tasks on
    that cluster; its workers must see ``root`` and the sources at the same paths.
    """
    srcs = read_sources(sources)
    try:
        if not srcs:
            raise InvalidParameterError("sources", [], "give at least one database to merge")
        check_compatible((root, base.config), srcs, counts=base.config.counts)
        dropped_counts(srcs, base.config.counts, root, "only an index built with counts keeps them")
        labels = final_labels(base.labels, [g.label for s in srcs for g in s.snapshot.genomes], rename_duplicates)
        new = add_genomes(root, base, generation, srcs, labels, (), (), threads, progress, scheduler=scheduler)
    finally:
        release_sources(srcs)
    return new, {"sources": [os.path.abspath(s.path) for s in srcs], "genomes": labels}


def add_input_genomes(
    root: str,
    base: Snapshot,
    generation: int,
    genomes: Mapping[str, object] | Sequence[GenomeInput],
    rename_duplicates: bool = False,
    threads: int | None = None,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
    min_count: int = 1,
) -> tuple[Snapshot, dict]:
    """Append genomes read from FASTA/FASTQ files to ``base`` (``db.append_genome``).

    The inputs are read here and scattered (super-k-mers spilled by the tasks into a spill
    folder inside ``root``, removed at the end); ``scheduler`` runs the tasks on a Dask
    cluster whose workers see ``root`` at the same path.  ``min_count``: as in
    :func:`kmerdb.build`, for the genomes appended.
    """
    min_count = check_min_count(min_count)
    items = resolve_genomes(genomes)
    labels = final_labels(base.labels, [g.label for g in items], rename_duplicates)
    new = add_genomes(
        root, base, generation, (), (), items, labels, threads, progress, scheduler=scheduler, min_count=min_count
    )
    return new, {"genomes": labels, "inputs": [list(g.paths) for g in items], "min_count": min_count}


