"""The partition tasks of the analytics, run through an executor.

Every analytics call reads one snapshot: its partitions are dealt into balanced jobs (a few
per worker, largest first) and each job is one task, ``fn(context, partitions)``, where the
context (:class:`ScanContext`) is a frozen record of the database directory, the snapshot's
layer records, the genome column map and the block budget.  Tasks open the layers they read
themselves, so they run alike here, in forked or spawned processes and on Dask workers, and
two calls on one handle from two threads share nothing.

Two tasks: :func:`compare_task` reduces partitions to colour classes (and, asked to, to pair
counts or count min-sums); :func:`weights_task` sums per-genome tallies (and count
histograms) of the column groups.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from kmerdb.analysis.classes import (
    BLOCK_BYTES,
    ClassAccumulator,
    ClassTable,
    distinct_bytes,
    empty_rows,
    layer_classes,
    layer_count_parts,
)
from kmerdb.analysis.pairs import GEMM_GENOMES, PairCounts, add_min_sums, weighted_colsum
from kmerdb.config import Config
from kmerdb.engine.executor import open_executor
from kmerdb.params import parse_size
from kmerdb.store.catalog import LayerRecord, Snapshot
from kmerdb.store.encodings import ColumnEncoding
from kmerdb.store.layer import Layer

__all__ = ["HIST_CAP", "ScanContext", "compare_task", "weights_task", "balanced_jobs", "scan", "Progress"]

Progress = Callable[[str, int, "int | None"], None]

#: Counts below this are histogrammed densely; larger ones are kept as values.
HIST_CAP = 4096


@dataclass(frozen=True)
class ScanContext:
    """What the tasks of one analytics call share (picklable, sent to every worker).

    Attributes
    ----------
    root : str
        Absolute path of the database directory.
    config : Config
        The index configuration.
    partitions : tuple of tuple of LayerRecord
        The snapshot's layers, partition by partition.
    column_of : mapping of int to int
        Genome id -> column in the snapshot's genome order.
    block_bytes : int
        Temporaries a task may use to reduce one block of rows.
    mode : {"presence", "counts"}
        Class layout the compare task reduces rows to.
    reduce : bool
        Compare task: reduce the classes to pair counts (presence) or min-sums (counts).
    spectrum : bool
        Weights task: also histogram the counts.
    """

    root: str
    config: Config
    partitions: tuple[tuple[LayerRecord, ...], ...]
    column_of: Mapping[int, int] = field(repr=False)
    block_bytes: int = BLOCK_BYTES
    mode: str = "presence"
    reduce: bool = False
    spectrum: bool = False

    @property
    def n_genomes(self) -> int:
        return len(self.column_of)

    def layers(self, p: int) -> list[Layer]:
        """The layers of partition ``p``, opened."""
        return [Layer(self.root, rec, self.column_of) for rec in self.partitions[p]]


def compare_task(ctx: ScanContext, partitions: list[int]):
    """Reduce some partitions to a class table, or to pair counts (``ctx.reduce``).

    Pair counts of presence are summed layer by layer when the pair histograms fit their
    budget; otherwise (and for count min-sums) the job's class tables are merged first and
    reduced once.

    Returns
    -------
    (partitions done, result)
        ``(rows, weights)`` of the classes; with ``reduce``, the (G, G) pair counts, or
        ``(min-sums, column sums)`` on counts.
    """
    mode, g = ctx.mode, ctx.n_genomes
    if ctx.reduce and mode == "counts" and g >= GEMM_GENOMES:
        return len(partitions), _min_sums(ctx, partitions)
    acc = ClassAccumulator(empty_rows(mode, g))
    pc = PairCounts(g) if ctx.reduce else None
    # byte-pair histograms are summed layer by layer; products are taken once on the merged classes
    by_layer = pc is not None and mode == "presence" and pc.keep and not pc.gemm
    for p in partitions:
        for layer in ctx.layers(p):
            if layer.n == 0:
                continue
            raw, weights = layer_classes(layer, mode, g, ctx.block_bytes)
            if pc is not None and by_layer:
                pc.add(raw, weights)
            else:
                acc.add(raw, weights)
    if pc is None:
        return len(partitions), acc.result()
    if by_layer:
        return len(partitions), pc.result()
    raw, weights = acc.result()
    if mode == "presence":
        pc.add(raw, weights)
        return len(partitions), pc.result()
    counts = np.ascontiguousarray(raw).view(np.uint32)
    colsum = (counts.astype(np.int64) * weights[:, None]).sum(axis=0) if weights.size else np.zeros(g, dtype=np.int64)
    mins = np.zeros((g, g), dtype=np.int64)
    add_min_sums(pc, mins, counts, weights)
    return len(partitions), (mins, colsum)


def _min_sums(ctx: ScanContext, partitions: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Count min-sums and column sums of some partitions of many genomes, from presence
    classes and the rows of counts less one (see :func:`~kmerdb.analysis.classes.layer_count_parts`):
    no table of every distinct count row."""
    g = ctx.n_genomes
    presence = ClassAccumulator(empty_rows("presence", g))
    beyond = ClassAccumulator(empty_rows("counts", g))
    for p in partitions:
        for layer in ctx.layers(p):
            if layer.n == 0:
                continue
            parts = layer_count_parts(layer, g, ctx.block_bytes)
            if parts is None:  # dense groups only: split the count classes themselves
                raw, weights = layer_classes(layer, "counts", g, ctx.block_bytes)
                counts = np.ascontiguousarray(raw).view(np.uint32)
                presence.add(*distinct_bytes(np.packbits(counts > 0, axis=1), weights))
                less = np.maximum(counts.astype(np.int64) - 1, 0).astype(np.uint32)
                high = less.any(axis=1)
                if high.any():
                    beyond.add(*distinct_bytes(less[high].view(np.uint8).reshape(int(high.sum()), -1), weights[high]))
                continue
            presence.add(*parts[0])
            beyond.add(*parts[1])
    raw, weights = presence.result()
    pc = PairCounts(g)
    pc.add(raw, weights)
    mins = pc.result()
    colsum = weighted_colsum(ClassTable("presence", g, raw, weights))
    raw, weights = beyond.result()
    if weights.size:
        counts = np.ascontiguousarray(raw).view(np.uint32)
        add_min_sums(PairCounts(g), mins, counts, weights)
        colsum += (counts.astype(np.int64) * weights[:, None]).sum(axis=0)
    return mins, colsum


def weights_task(ctx: ScanContext, partitions: list[int]):
    """Distinct k-mers, occurrences (and count histograms) per genome of some partitions.

    Returns
    -------
    (partitions done, (distinct, totals, (dense, large)))
        ``dense`` (G, :data:`HIST_CAP`) histograms of counts below the cap and ``large`` the
        larger counts of each genome, with ``ctx.spectrum``; else None and [].
    """
    n_genomes = ctx.n_genomes
    distinct = np.zeros(n_genomes, dtype=np.int64)
    totals = np.zeros(n_genomes, dtype=np.int64)
    dense = np.zeros((n_genomes, HIST_CAP), dtype=np.int64) if ctx.spectrum else None
    large: list[list[np.ndarray]] = [[] for _ in range(n_genomes)] if ctx.spectrum else []
    for p in partitions:
        for layer in ctx.layers(p):
            live = [group for group in layer.groups if group.live]
            if layer.n == 0 or not live:
                continue
            step = int(max(1024, ctx.block_bytes // (16 * max(1, sum(g.row_nbytes for g in live)))))
            for group in live:
                cols = group.cols
                if group.family == "classes":
                    # colour classes: no per-slot rows (presence), sparse rows (counts)
                    _class_weights(group, layer.n, ctx.block_bytes, distinct, totals, dense, large)
                    continue
                for lo in range(0, layer.n, step):
                    hi = min(layer.n, lo + step)
                    d, t = group.tally(lo, hi)
                    distinct[cols] += d
                    totals[cols] += t
                    if dense is not None:
                        _histogram(dense, large, cols, d, group.count_values(lo, hi))
    if dense is not None:
        return len(partitions), (distinct, totals, (dense, [np.concatenate(x) if x else np.zeros(0, np.int64) for x in large]))
    return len(partitions), (distinct, totals, (None, []))


def _class_weights(
    group: ColumnEncoding,
    n: int,
    block_bytes: int,
    distinct: np.ndarray,
    totals: np.ndarray,
    dense: np.ndarray | None,
    large: list,
) -> None:
    """Add the weights (and count histograms) of a colour-class group, by database column.

    Presence: the slots of each class are counted (one bincount of class ids) and each class
    used is decoded once, a class of most genomes as the few it lacks.  Counts: the group's
    sparse rows, a block of slots at a time (memory in proportion to the block's
    occurrences); one histogram over (genome, count) cells per block.
    """
    n_db = distinct.size
    if not group.keeps_counts:
        coded = cast(Any, group)
        weights = np.zeros(max(1, int(coded.n_classes)), dtype=np.int64)
        step = int(max(1024, block_bytes // 16))
        for lo in range(0, n, step):
            weights += np.bincount(coded.class_ids(np.arange(lo, min(n, lo + step), dtype=np.int64)), minlength=weights.size)
        used = np.flatnonzero(weights)
        w = weights[used]
        members, complement = group.members_or_complement(used)
        signed = np.where(complement, -w, w)
        per = np.bincount(members.columns, weights=np.repeat(signed, members.sizes), minlength=n_db)
        held = np.rint(per).astype(np.int64)
        held[group.cols] += int(w[complement].sum())  # the classes listed by what they lack
        distinct += held
        totals += held
        if dense is not None:
            dense[:, 1] += held
        return
    step = int(max(1024, block_bytes // (16 * max(1, group.row_nbytes))))
    for lo in range(0, n, step):
        rows = group.rows(np.arange(lo, min(n, lo + step), dtype=np.int64))
        cols = rows.columns.astype(np.int64)
        counts = rows.value_counts().astype(np.int64)
        distinct += np.bincount(cols, minlength=n_db)
        # float64 sums: exact below 2**53
        totals += np.rint(np.bincount(cols, weights=counts, minlength=n_db)).astype(np.int64)
        if dense is None:
            continue
        capped = np.minimum(counts, HIST_CAP - 1)
        dense += np.bincount(cols * HIST_CAP + capped, minlength=n_db * HIST_CAP).reshape(n_db, HIST_CAP)
        big = counts >= HIST_CAP - 1
        if big.any():
            for c in np.unique(cols[big]).tolist():  # a loop over genomes with large counts
                values = counts[big][cols[big] == c]
                dense[c, HIST_CAP - 1] -= values.size
                large[c].append(values)


def _histogram(dense: np.ndarray, large: list, cols: np.ndarray, distinct: np.ndarray, values: np.ndarray | None) -> None:
    """Add a block's counts to the per-genome histograms (``values`` None: each k-mer held once)."""
    if values is None:
        dense[cols, 1] += distinct
        return
    for j, c in enumerate(cols.tolist()):  # a loop over genome columns, not k-mers
        v = values[:, j].astype(np.int64)
        dense[c] += np.bincount(np.minimum(v, HIST_CAP - 1), minlength=HIST_CAP)
        if dense[c, HIST_CAP - 1]:
            big = v[v >= HIST_CAP - 1]
            dense[c, HIST_CAP - 1] -= big.size
            large[c].append(big)


def balanced_jobs(partitions: tuple[tuple[LayerRecord, ...], ...], n_workers: int) -> list[list[int]]:
    """Partitions with k-mers in balanced lists, a few per worker (largest first)."""
    sizes = {p: sum(rec.n_kmers for rec in layers) for p, layers in enumerate(partitions)}
    todo = sorted((p for p, s in sizes.items() if s), key=lambda p: -sizes[p])
    n_jobs = min(len(todo), 4 * n_workers) if n_workers > 1 else min(len(todo), 1)
    jobs: list[list[int]] = [[] for _ in range(n_jobs)]
    load = [0] * n_jobs
    for p in todo:
        j = load.index(min(load))
        jobs[j].append(p)
        load[j] += sizes[p]
    return [j for j in jobs if j]


def block_bytes(max_memory, n_workers: int) -> int:
    """Row-block temporaries of one task under a ``max_memory`` budget shared by the workers."""
    budget = parse_size(max_memory)
    if budget is None:
        return BLOCK_BYTES
    return int(max(1 << 20, min(BLOCK_BYTES, budget // (4 * (n_workers + 1)))))


def scan(
    root: str,
    snap: Snapshot,
    task: Callable,
    *,
    threads: int | None = None,
    scheduler=None,
    max_memory=None,
    progress: Progress | None = None,
    phase: str = "",
    **options,
) -> Iterator:
    """Run ``task`` over every partition with k-mers of ``snap``; yield the task results.

    Parameters
    ----------
    root : str
        The database directory.
    snap : Snapshot
        The generation read (taken once by the caller, so a commit meanwhile changes nothing).
    task : callable
        :func:`compare_task` or :func:`weights_task`.
    threads, scheduler
        Passed to :func:`~kmerdb.engine.executor.open_executor`.
    max_memory : int or str, optional
        Budget shared by the workers' row blocks.
    progress : callable, optional
        ``progress(phase, partitions done, partitions)``.
    **options
        The :class:`ScanContext` fields ``mode``, ``reduce`` and ``spectrum``.
    """
    n_parts = sum(1 for layers in snap.partitions if any(rec.n_kmers for rec in layers))
    with open_executor(threads, scheduler, n_tasks=n_parts) as executor:
        ctx = ScanContext(
            os.path.abspath(root),
            snap.config,
            snap.partitions,
            {g.id: i for i, g in enumerate(snap.genomes)},
            block_bytes(max_memory, executor.n_workers),
            **options,
        )
        jobs = balanced_jobs(snap.partitions, executor.n_workers)
        total, done = sum(len(j) for j in jobs), 0
        for n, result in executor.map(task, ctx, ((job,) for job in jobs)):
            done += n
            if progress is not None:
                progress(phase, done, total)
            yield result
