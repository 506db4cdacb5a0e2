"""Removing genomes and compacting partitions of a snapshot (called by the transaction).

A removal only drops the genomes from the snapshot: their columns stay in the files until a
compaction rewrites every partition that is not compact (one layer, one column group with
exactly the genomes of the index) as one layer, one task per partition through an executor
(serial, local processes or a Dask cluster), dropping the k-mers no genome holds any more.
A partition is read as sparse rows (memory proportional to its (k-mer, genome)
occurrences), so a colour-class group written anew holds only the colours still in use.
Nothing here commits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kmerdb.config import Config
from kmerdb.core.colours import SparseRows
from kmerdb.engine.executor import open_executor
from kmerdb.errors import GenomeNotFoundError
from kmerdb.ops.add import collect, layer_rows
from kmerdb.params import resolve_threads
from kmerdb.store.catalog import GenomeRecord, Snapshot
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.layer import write_layer
from kmerdb.store.storage import deferred_sync

__all__ = ["CompactContext", "remove_genomes", "compact_snapshot"]

#: progress(phase, done, total); phase "compact" counts partitions.
Progress = Callable[[str, int, "int | None"], None]


def remove_genomes(base: Snapshot, generation: int, labels: Sequence[str]) -> tuple[Snapshot, dict]:
    """Drop genomes from ``base``: their columns stay in the files until a compact."""
    if isinstance(labels, str):
        labels = [labels]
    present = {g.label for g in base.genomes}
    for label in labels:
        if label not in present:
            raise GenomeNotFoundError(label)
    drop = set(labels)
    new = replace(base, generation=generation, genomes=tuple(g for g in base.genomes if g.label not in drop))
    return new, {"genomes": list(labels)}


@dataclass(frozen=True)
class CompactContext:
    """What every compaction task shares: the database (absolute path), its configuration,
    the genomes kept, the base snapshot's layers by partition, the new generation, and the
    id base of the new layers (partition ``p``'s is ``layer_id0 + p``)."""

    root: str
    config: Config
    genomes: tuple[GenomeRecord, ...]
    partitions: tuple
    generation: int
    layer_id0: int


def _compact_task(ctx: CompactContext, p: int):
    """Task: rewrite one partition as one layer with one column group."""
    with deferred_sync():  # the writer syncs the whole tree once before it commits
        return _compact_partition(ctx, p)


def _compact_partition(ctx: CompactContext, p: int):
    cfg = ctx.config
    genomes = ctx.genomes
    pieces = [layer_rows(ctx.root, rec, genomes, cfg.counts) for rec in ctx.partitions[p]]
    keys = np.concatenate([k for k, _ in pieces]) if pieces else np.zeros(0, np.uint64)
    rows = SparseRows.vstack([r for _, r in pieces], len(genomes))
    if not cfg.counts:
        rows = rows.presence()
    del pieces
    order = np.argsort(keys)
    keys, rows = keys[order], rows.take(order)
    crashpoint("compact.rows")
    if not keys.size:
        return p, ()
    ids = tuple(g.id for g in genomes)
    # one group written from the rows themselves: its colour classes are exactly the distinct
    # colours left (classes no k-mer uses any more are gone, duplicates folded into one)
    record = write_layer(ctx.root, p, ctx.layer_id0 + p, ctx.generation, keys, [(ids, rows)], cfg)
    crashpoint("compact.layer")
    return p, (record,)


def _is_compact(layers: tuple, ids: tuple) -> bool:
    return len(layers) == 0 or (
        len(layers) == 1 and len(layers[0].groups) == 1 and tuple(layers[0].groups[0].genome_ids) == ids
    )


def compact_snapshot(
    root: str,
    base: Snapshot,
    generation: int,
    threads: int | None = None,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
) -> tuple[Snapshot, dict]:
    """Rewrite every partition that is not compact already into one layer with one column group.

    k-mers that no genome of the index holds any more (after removals) are dropped.
    ``scheduler`` runs the partition tasks on a Dask cluster that sees ``root``.
    """
    resolve_threads(threads)
    ids = tuple(g.id for g in base.genomes)
    todo = [p for p, layers in enumerate(base.partitions) if not _is_compact(layers, ids)]
    if not todo:
        return base, {"partitions": 0}
    context = CompactContext(
        os.path.abspath(root), base.config, tuple(base.genomes), tuple(base.partitions), generation, base.next_layer_id
    )
    with open_executor(threads, scheduler, n_tasks=len(todo)) as executor:
        tasks = [(p,) for p in todo]
        results = collect(executor.map(_compact_task, context, tasks), len(tasks), progress, "compact")
    partitions = list(base.partitions)
    for p, records in results:
        partitions[p] = records
    new = replace(
        base,
        generation=generation,
        partitions=tuple(partitions),
        next_layer_id=base.next_layer_id + base.config.n_partitions,
    )
    return new, {"partitions": len(todo)}


