"""Set operations over the genomes of an index, written as a new database.

``setop(source, op, out, genomes=None, q=None)`` selects genomes of ``source`` (all by
default, in the order given), keeps the k-mers the operation picks, and writes a normal
database at ``out``: same ``k``, ``m``, partitions and count/presence kind as the source,
exact evidence, one layer per partition and **one genome column** named for the result
(``label``, by default the operation, e.g. ``intersection`` or ``at-least-3``), as the
output of ``kmc_tools simple`` is one k-mer set.  It opens, queries, merges and appends
like any index built by ``kmerdb build``.

Operations (``n`` = number of k-mers' selected genomes that hold it; the universe is
the k-mers of at least one selected genome):

==================  ==================================  ===============================
op                  keeps a k-mer when                  its count (counts index)
==================  ==================================  ===============================
``union``           ``n >= 1``                          sum over the selected genomes
``intersection``    ``n == len(genomes)``               minimum over the selected genomes
``difference``      the first genome holds it, no       count in the first genome
                    other selected genome does
``at-least``        ``n >= q``                          sum over the selected genomes
``exactly``         ``n == q``                          sum over the selected genomes
``at-most``         ``1 <= n <= q``                     sum over the selected genomes
==================  ==================================  ===============================

Work runs one task per partition, a block of slots at a time, on any executor (serial,
local processes, or a Dask cluster: ``scheduler=``); each task writes its partition's
layer under ``out``; the catalog is written last, by the caller, in one transaction, and
a failure removes ``out``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kmerdb.config import Config
from kmerdb.core.colours import SparseRows
from kmerdb.engine.executor import open_executor
from kmerdb.errors import (
    DuplicateLabelError,
    GenomeNotFoundError,
    IncompleteDatabaseError,
    InvalidParameterError,
    InvalidTypeError,
)
from kmerdb.ops.add import block_slots, slot_rows
from kmerdb.params import parse_size, path_argument
from kmerdb.store.catalog import GenomeRecord, LayerRecord, Snapshot, read_as_reader
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.layer import Layer, write_layer
from kmerdb.store.lock import ReaderRegistration
from kmerdb.store.scaffold import new_database

__all__ = ["OPS", "SetOpContext", "SetOpReport", "setop", "setop_partition"]

OPS = ("union", "intersection", "difference", "at-least", "exactly", "at-most")
_QUORUM = ("at-least", "exactly", "at-most")

#: Bytes of temporaries a block of slots a worker reads at a time may take.
_BLOCK_BYTES = 32 << 20
_U32_MAX = np.iinfo(np.uint32).max

Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class SetOpReport:
    """What a set operation wrote.

    Attributes
    ----------
    path : str
        The new database.
    op : str
        The operation.
    label : str
        The label of its one genome column.
    genomes : tuple of str
        The source genomes it was computed over, in order.
    n_kmers : int
        Distinct k-mers kept.
    seconds : float
        Wall time.
    """

    path: str
    op: str
    label: str
    genomes: tuple[str, ...]
    n_kmers: int
    seconds: float


@dataclass(frozen=True)
class SetOpContext:
    """What every set-operation task shares.

    Attributes
    ----------
    root : str
        The source database directory.
    out : str
        The new database directory (tasks write their partition's layer there).
    config, out_config : Config
        The source's configuration and the output's.
    partitions : tuple of tuple of LayerRecord
        The source snapshot's layers, per partition.
    genome_ids : tuple of int
        The source's genome ids in column order.
    cols : tuple of int
        The source columns selected, in the order of the operation.
    op : str
    q : int or None
    block_bytes : int
        Bytes of temporaries a task takes for a block of slots (see :func:`~kmerdb.ops.add.block_slots`).
    """

    root: str
    out: str
    config: Config
    out_config: Config
    partitions: tuple[tuple[LayerRecord, ...], ...]
    genome_ids: tuple[int, ...]
    cols: tuple[int, ...]
    op: str
    q: int | None
    block_bytes: int


def _keep_mask(op: str, rows: SparseRows, q: int | None) -> np.ndarray:
    """Rows over the selected genomes (column 0 the first) that the operation keeps."""
    n = rows.sizes
    if op == "union":
        return n >= 1
    if op == "intersection":
        return n == rows.n_columns
    if op == "difference":
        # held by the first genome alone: one column, and it is column 0
        first = np.zeros(rows.n, dtype=bool)
        one = np.flatnonzero(n == 1)
        first[one] = rows.columns[rows.indptr[one]] == 0
        return first
    if op == "at-least":
        return n >= q
    if op == "exactly":
        return n == q
    return (n >= 1) & (n <= q)


def _values(op: str, rows: SparseRows) -> np.ndarray:
    """Counts of the kept rows (none empty): min, first genome's, or sum over the selection."""
    if not rows.n:
        return np.zeros(0, dtype=np.int64)
    counts = rows.value_counts().astype(np.int64)
    starts = rows.indptr[:-1]
    if op == "intersection":
        return np.minimum.reduceat(counts, starts)
    if op == "difference":
        return counts[starts]
    return np.add.reduceat(counts, starts)


def setop_partition(ctx: SetOpContext, p: int) -> tuple[int, LayerRecord, int, int, dict[int, int]]:
    """Task: the k-mers partition ``p`` keeps, written as the output's layer of that partition.

    Layers are read a block of slots at a time as sparse rows over the selected genomes.

    Returns
    -------
    (int, LayerRecord, int, int, dict)
        ``p``, the layer written, its k-mers, their total count (the k-mers on a presence
        index) and their count spectrum (``{count: k-mers}``, empty on a presence index).
    """
    cfg = ctx.config
    column_of = {gid: i for i, gid in enumerate(ctx.genome_ids)}
    n_db = len(ctx.genome_ids)
    n_sel = len(ctx.cols)
    # database column -> position in the selection (-1: not selected)
    selection = np.full(n_db, -1, dtype=np.int64)
    selection[np.array(ctx.cols, dtype=np.int64)] = np.arange(n_sel)
    keys_out, vals_out = [], []
    step = block_slots(n_db, ctx.block_bytes)
    for rec in ctx.partitions[p]:
        if rec.n_kmers == 0:
            continue
        layer = Layer(ctx.root, rec, column_of)
        kmers = layer.kmers()
        for lo in range(0, layer.n, step):
            hi = min(layer.n, lo + step)
            rows = slot_rows(layer, np.arange(lo, hi, dtype=np.int64), n_db, cfg.counts).remap(selection, n_sel)
            keep = np.flatnonzero(_keep_mask(ctx.op, rows, ctx.q))
            if not keep.size:
                continue
            keys_out.append(np.asarray(kmers[lo:hi])[keep])
            if cfg.counts:
                vals_out.append(_values(ctx.op, rows.take(keep)))
    keys = np.concatenate(keys_out) if keys_out else np.zeros(0, dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    indptr = np.arange(keys.size + 1, dtype=np.int64)
    column = np.zeros(keys.size, dtype=np.int32)
    if cfg.counts:
        values = np.concatenate(vals_out)[order] if vals_out else np.zeros(0, dtype=np.int64)
        rows = SparseRows(indptr, column, np.minimum(values, _U32_MAX).astype(np.uint32), 1)
        s = np.sort(values)
        starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]])) if s.size else np.zeros(0, np.intp)
        spectrum = dict(zip(s[starts].tolist(), np.diff(np.append(starts, s.size)).tolist()))
        total = int(values.sum())
    else:
        rows = SparseRows(indptr, column, None, 1)
        spectrum = {}
        total = int(keys.size)
    record = write_layer(ctx.out, p, p, 1, keys, [((0,), rows)], ctx.out_config)
    crashpoint("setop.layer")
    return p, record, int(keys.size), total, spectrum


def setop(
    source,
    op: str,
    out: str | os.PathLike,
    genomes: Sequence[str] | None = None,
    q: int | None = None,
    label: str | None = None,
    threads: int | None = None,
    max_memory: int | str | None = None,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
    force: bool = False,
) -> SetOpReport:
    """Write the k-mers a set operation selects from ``source`` as a new database.

    Parameters
    ----------
    source : Database or str or PathLike
        An open database (the snapshot it reads), or the path of one (its latest generation).
    op : {"union", "intersection", "difference", "at-least", "exactly", "at-most"}
        The operation; see the module documentation.  ``difference`` keeps the k-mers of
        the first selected genome that no other selected genome holds.
    out : str or PathLike
        Directory of the new database; must not exist.
    genomes : sequence of str, optional
        Labels of the genomes to operate on, in order (default: all, in column order).
    q : int, optional
        Quorum for ``at-least``, ``exactly`` and ``at-most`` (1 <= q; at most the number of
        genomes for ``at-least`` and ``exactly``).
    label : str, optional
        Label of the output's genome column (default: the operation, with ``q``).
    threads : int, optional
        Worker processes (default: all CPUs).
    max_memory : int or str, optional
        Bounds the rows a worker holds at a time.
    progress : callable, optional
        ``progress("setop", partitions done, partitions)``.
    scheduler : str or distributed.Client, optional
        Run the partition tasks on this Dask cluster (its workers see the source and ``out``
        at the same paths).
    force : bool
        Remove what a set operation into ``out`` that never finished left there (else it is
        refused with :class:`~kmerdb.errors.AbandonedBuildError`); a finished database at
        ``out`` is never replaced.

    Returns
    -------
    SetOpReport

    Raises
    ------
    InvalidParameterError
        Unknown operation, missing or out-of-range ``q``, no genome selected.
    GenomeNotFoundError, DuplicateLabelError
        A selected label is unknown or given twice.
    DatabaseExistsError
        ``out`` exists (it is left untouched).
    DatabaseNotFoundError, IncompleteDatabaseError
        ``source`` is not a complete database.
    WorkerError
        A task failed in a worker; ``out`` is removed.
    """
    t0 = time.perf_counter()
    if op not in OPS:
        raise InvalidParameterError("op", op, f"expected one of {', '.join(OPS)}")
    if not isinstance(force, bool):
        raise InvalidTypeError("force", force, "True or False")
    registration = None
    if hasattr(source, "snapshot") and hasattr(source, "path"):  # an open handle: what it reads
        root, snap = source.path, source.snapshot
    else:
        root, snap, registration = _read_source(path_argument(source, "source"))
    try:
        return _setop(
            root, snap, op, path_argument(out, "out"), genomes, q, label, threads, max_memory, progress, scheduler, t0,
            force,
        )
    finally:
        if registration is not None:
            registration.close()


def _read_source(path: str) -> tuple[str, Snapshot, ReaderRegistration]:
    """The latest snapshot of a database, read as a reader registered for it (as a handle is)."""
    snap, registration = read_as_reader(path)
    if snap.state != "ready":
        registration.close()
        raise IncompleteDatabaseError(path, snap.state)
    return path, snap, registration


def _setop(
    root: str,
    snap: Snapshot,
    op: str,
    out: str,
    genomes: Sequence[str] | None,
    q: int | None,
    label: str | None,
    threads: int | None,
    max_memory: int | str | None,
    progress: Progress | None,
    scheduler: Any,
    t0: float,
    force: bool = False,
) -> SetOpReport:
    labels = snap.labels
    selected = labels if genomes is None else tuple(genomes)
    if not selected:
        raise InvalidParameterError("genomes", list(selected), "select at least one genome")
    seen = set()
    for g in selected:
        if g not in labels:
            raise GenomeNotFoundError(g)
        if g in seen:
            raise DuplicateLabelError(g, "select each genome once")
        seen.add(g)
    if op in _QUORUM:
        if q is None or not isinstance(q, (int, np.integer)) or isinstance(q, bool) or q < 1:
            raise InvalidParameterError("q", q, f"'{op}' needs a quorum q >= 1")
        if op != "at-most" and q > len(selected):
            raise InvalidParameterError("q", q, f"only {len(selected)} genome(s) are selected")
        q = int(q)
    elif q is not None:
        raise InvalidParameterError("q", q, f"'{op}' takes no quorum")
    if label is None:
        label = f"{op}-{q}" if op in _QUORUM else op
    if not isinstance(label, str) or not label or label != label.strip() or "\t" in label or "\n" in label:
        raise InvalidParameterError("label", label, "a non-empty label without tabs, newlines or surrounding spaces")
    budget = parse_size(max_memory)
    src_cfg: Config = snap.config
    out_config = Config(
        k=src_cfg.k, m=src_cfg.m, n_partitions=src_cfg.n_partitions, counts=src_cfg.counts, colours=src_cfg.colours
    )
    column = {lab: i for i, lab in enumerate(labels)}
    with new_database(out, out_config, argument="out", force=force) as new_db:
        # the largest partitions first, so that the last tasks to finish are short ones
        tasks = list(range(src_cfg.n_partitions))
        tasks.sort(key=lambda p: -sum(rec.n_kmers for rec in snap.partitions[p]))
        written: dict[int, LayerRecord] = {}
        n_kmers = total = 0
        spectrum: dict[int, int] = {}
        with open_executor(threads, scheduler, n_tasks=len(tasks)) as executor:
            n_workers = executor.n_workers
            block_bytes = (
                _BLOCK_BYTES if budget is None else max(1 << 20, min(_BLOCK_BYTES, budget // (4 * (n_workers + 1))))
            )
            ctx = SetOpContext(
                root=root,
                out=out,
                config=src_cfg,
                out_config=out_config,
                partitions=snap.partitions,
                genome_ids=tuple(g.id for g in snap.genomes),
                cols=tuple(column[g] for g in selected),
                op=op,
                q=q,
                block_bytes=block_bytes,
            )
            results = executor.map(setop_partition, ctx, ((p,) for p in tasks))
            for done, (p, layer_record, n, tot, spec) in enumerate(results, 1):
                written[p] = layer_record
                n_kmers += n
                total += tot
                for count, how_many in spec.items():
                    spectrum[count] = spectrum.get(count, 0) + how_many
                if progress is not None:
                    progress("setop", done, len(tasks))
        layers = [written[p] for p in range(src_cfg.n_partitions)]
        record = GenomeRecord(
            0,
            label,
            tuple(f"{root}#{g}" for g in selected),
            n_kmers,
            total,
            tuple((int(c), int(n)) for c, n in sorted(spectrum.items()) if c > 0),
        )
        with new_db.commit() as w:
            w.put_genomes([record])
            for p, layer in enumerate(layers):
                w.put_partition(p, [layer])
            w.put_state("ready", 1, 1, src_cfg.n_partitions)
            w.add_history(
                "setop",
                {"op": op, "q": q, "source": root, "genomes": list(selected), "label": label},
                1,
            )
    return SetOpReport(out, op, label, selected, n_kmers, time.perf_counter() - t0)
