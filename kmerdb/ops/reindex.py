"""Reindex: rebuild the evidence of every layer from its unitigs (exact <-> approx).

The unitigs hold every layer's k-mers whatever the evidence kind, so a reindex reads each
layer's k-mers from its unitigs and writes what finds them anew:

- going exact, a minimizer dictionary (:mod:`kmerdb.core.dictionary`), whose slots are the
  unitig orders of the k-mers: the column groups are rewritten in that order (the same rows);
- going approx from a dictionary, an MPHF and B-bit fingerprints, the column groups
  rewritten in MPHF slot order;
- going approx from a layer that has an MPHF already (other fingerprint bits, or exact
  evidence of formats 1-3), new fingerprints only; colour classes laid out in unitig order
  find a slot's class through exact evidence, so they are rewritten with a class id per slot
  (the same classes and counts).

Going exact -> approx -> exact therefore gives back a dictionary equal to the original's,
and lookups equal to the original's.

A change of z alone writes no file: z is applied by queries, so only the configuration
changes.  Everything is one operation of a transaction (``with db.transaction():
db.reindex(...)``), committed as one new generation; the old evidence files stay for the
readers of older generations until a vacuum.  Layers are processed one partition per
task, by any executor (serial, local processes, or a Dask cluster: ``scheduler=``); a
task reads the layer files and writes its new evidence files under the database
directory, and the caller alone commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kmerdb.config import Config
from kmerdb.engine.executor import open_executor
from kmerdb.errors import (
    CorruptDatabaseError,
    InvalidParameterError,
)
from kmerdb.store.catalog import LayerRecord, Snapshot
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.layer import Layer, groups_by_slot, layer_prefix, rewrite_group, write_evidence, write_lookup
from kmerdb.store.storage import load_array

__all__ = ["ReindexContext", "ReindexReport", "reindex_partition", "reindex_snapshot", "target_config"]

#: progress(phase, done, total): phase "reindex", counted in partitions.
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class ReindexReport:
    """What :func:`reindex` did.

    Attributes
    ----------
    path : str
        The database.
    evidence, fp_bits, z
        The configuration it has now.
    layers_rewritten : int
        Layers that got a new evidence file (0 when only z changed, or nothing did).
    generation : int
        The generation committed (unchanged when there was nothing to do).
    seconds : float
    """

    path: str
    evidence: str
    fp_bits: int
    z: int
    layers_rewritten: int
    generation: int
    seconds: float


def target_config(config: Config, evidence: str, fp_bits: int | None = None, z: int | None = None) -> Config:
    """The configuration a reindex to ``evidence`` makes from ``config``.

    For approx evidence, ``fp_bits`` and ``z`` default to the current ones when the index
    is approx already, else to 8 and 0.  Exact evidence takes neither.

    Raises
    ------
    InvalidParameterError
        Unknown kind, bits outside 1..32, z < 0, or bits/z given with exact evidence.
    """
    if evidence not in ("exact", "approx"):
        raise InvalidParameterError("evidence", evidence, "must be 'exact' or 'approx'")
    if evidence == "exact":
        if fp_bits or z:
            name, value = ("fp_bits", fp_bits) if fp_bits else ("z", z)
            raise InvalidParameterError(name, value, "fingerprint bits and z apply to approx evidence only")
        return replace(config, evidence="exact", fp_bits=0, z=0)
    for name, value in (("fp_bits", fp_bits), ("z", z)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidParameterError(name, value, "must be an integer")
    was_approx = config.evidence == "approx"
    bits = fp_bits if fp_bits is not None else (config.fp_bits if was_approx else 8)
    zz = z if z is not None else (config.z if was_approx else 0)
    return replace(config, evidence="approx", fp_bits=bits, z=zz)  # Config validates the ranges


@dataclass(frozen=True)
class ReindexContext:
    """What every reindex task shares.

    Attributes
    ----------
    root : str
        The database directory (at the same path on every worker).
    snapshot : Snapshot
        The snapshot being reindexed.
    config : Config
        The configuration the new evidence is written for.
    generation : int
        The generation the new files belong to.
    """

    root: str
    snapshot: Snapshot
    config: Config
    generation: int


def _layer_wants(layer: Layer, cfg: Config) -> bool:
    """Whether a layer's evidence differs from what ``cfg`` asks for."""
    if cfg.evidence == "exact":
        return layer.evidence_kind != "exact"
    return layer.evidence_kind != "approx" or layer.fp_bits != cfg.fp_bits


def reindex_partition(ctx: ReindexContext, p: int) -> tuple[int, list[LayerRecord], int]:
    """Task: new evidence for the layers of partition ``p``.

    Returns
    -------
    (int, list of LayerRecord, int)
        ``p``, the partition's layer records (new evidence where rewritten) and how many
        layers were rewritten.

    Raises
    ------
    CorruptDatabaseError
        A layer's MPHF does not map its own k-mers one-to-one.
    """
    root, cfg = ctx.root, ctx.config
    out, rewritten = [], 0
    for rec in ctx.snapshot.partitions[p]:
        ids = sorted({g for group in rec.groups for g in group.genome_ids})
        layer = Layer(root, rec, {g: i for i, g in enumerate(ids)})
        if not _layer_wants(layer, cfg):
            out.append(rec)
            continue
        slots = layer.slots_of_unitig_kmers()  # k-mer r of the unitigs has unitig order r
        if layer.n and (slots.min() < 0 or np.bincount(slots, minlength=layer.n).max() != 1):
            raise CorruptDatabaseError(layer.lookup_file, "the MPHF does not map the layer's k-mers one-to-one")
        if cfg.evidence == "approx" and layer.mphf is not None:
            new = _new_fingerprints(ctx, p, rec, layer, slots)
        else:
            new = _new_slots(ctx, p, rec, layer, slots)
        crashpoint("reindex.layer")
        del layer  # its maps are closed before the next layer's are opened
        out.append(new)
        rewritten += 1
    return p, out, rewritten


def _new_fingerprints(ctx: ReindexContext, p: int, rec: LayerRecord, layer: Layer, slots: np.ndarray) -> LayerRecord:
    """The record of a layer that keeps its MPHF, with new approximate evidence."""
    kmers = layer.unitig_kmers()
    ordinals = np.arange(kmers.size, dtype=np.int64)
    ref = write_evidence(ctx.root, layer_prefix(p, rec.id), ctx.generation, ctx.config, kmers, slots, ordinals)
    groups = groups_by_slot(ctx.root, layer_prefix(p, rec.id), ctx.generation, layer)
    return replace(rec, files={**rec.files, "evidence": ref}, groups=groups)


def _new_slots(ctx: ReindexContext, p: int, rec: LayerRecord, layer: Layer, slots: np.ndarray) -> LayerRecord:
    """The record of a layer whose slots change (to or from a dictionary): new lookup files and
    every column group rewritten in the new slot order, with the same rows."""
    root, cfg = ctx.root, ctx.config
    prefix = layer_prefix(p, rec.id)
    keys = layer.unitig_kmers()
    ordinals = np.arange(keys.size, dtype=np.int64)
    files, new = write_lookup(root, prefix, ctx.generation, cfg, load_array(root, rec.files["unitigs"]), keys, ordinals)
    placed = cfg.evidence == "exact" and cfg.colours != "dense" and len(rec.groups) == 1
    groups = [
        rewrite_group(root, prefix, ctx.generation, group, opened, slots, new, cfg, placed)
        for group, opened in zip(rec.groups, layer.groups)
    ]
    return replace(rec, files={"unitigs": rec.files["unitigs"], **files}, groups=tuple(groups))


def reindex_snapshot(
    root: str,
    snap: Snapshot,
    generation: int,
    evidence: str,
    fp_bits: int | None = None,
    z: int | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
) -> tuple[Snapshot, dict]:
    """Write the new evidence files of a reindex and return the snapshot that uses them.

    Nothing is committed: this is an operation for :meth:`kmerdb.Transaction.apply`.
    One task per partition that has layers, run by :func:`~kmerdb.engine.executor.open_executor`.

    Parameters
    ----------
    root : str
        The database directory.
    snap : Snapshot
        The snapshot to reindex.
    generation : int
        The generation the new files belong to.
    evidence, fp_bits, z
        As :func:`target_config` takes them.
    threads : int, optional
        Worker processes (default: all CPUs).
    progress : callable, optional
        ``progress("reindex", partitions done, partitions)``.
    scheduler : str or distributed.Client, optional
        Run the tasks on this Dask cluster instead.

    Returns
    -------
    (Snapshot, dict)
        The new snapshot (``snap`` itself when nothing changes) and the history arguments.
    """
    cfg = target_config(snap.config, evidence, fp_bits, z)
    args: dict = {"evidence": cfg.evidence, "fp_bits": cfg.fp_bits, "z": cfg.z}
    if cfg == snap.config and not _any_layer_differs(root, snap, cfg):
        return snap, args
    parts = list(snap.partitions)
    todo = [p for p, layers in enumerate(parts) if layers]
    rewritten = 0
    ctx = ReindexContext(root, snap, cfg, generation)
    if progress is not None:
        progress("reindex", 0, len(todo))
    with open_executor(threads, scheduler, n_tasks=len(todo)) as executor:
        results = executor.map(reindex_partition, ctx, ((p,) for p in todo))
        for done, (p, records, n) in enumerate(results, 1):
            parts[p] = tuple(records)
            rewritten += n
            if progress is not None:
                progress("reindex", done, len(todo))
    args["layers_rewritten"] = rewritten
    return snap.with_changes(config=cfg, partitions=tuple(parts)), args


def _any_layer_differs(root: str, snap: Snapshot, cfg: Config) -> bool:
    """Whether some layer's evidence file is not what ``cfg`` asks for (read from headers)."""
    for layers in snap.partitions:
        for rec in layers:
            if _layer_wants(Layer(root, rec, {}), cfg):
                return True
    return False
