"""Reindex: rebuild the evidence of every layer from its unitigs (exact <-> approx).

The unitigs hold every layer's k-mers whatever the evidence kind, and the MPHF does not
depend on the evidence, so a reindex reads each layer's k-mers from its unitigs, asks the
MPHF for their slots and writes one new evidence file per layer: positions in the unitigs
(exact) or B-bit fingerprints (approx).  MPHFs, unitigs and column groups are kept as
they are.  Going exact -> approx -> exact therefore gives back evidence equal to the
original's, and lookups equal to the original's.

A change of z alone writes no file: z is applied by queries, so only the configuration
changes.  Everything is one operation of a transaction (``with db.transaction():
db.reindex(...)``), committed as one new generation; the old evidence files stay for the
readers of older generations until a vacuum.  Layers are processed one partition per
task, by any executor (serial, local processes, or a Dask cluster: ``scheduler=``); a
task reads the layer files and writes its new evidence files under the database
directory, and the caller alone commits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kmerdb.config import Config
from kmerdb.engine.executor import open_executor
from kmerdb.errors import (
    CorruptDatabaseError,
    IncompleteDatabaseError,
    InvalidParameterError,
    ReadOnlyError,
    TransactionError,
)
from kmerdb.ops.maintenance import remove_unreferenced
from kmerdb.store.catalog import Catalog, LayerRecord, Snapshot
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.layer import Layer, layer_prefix, write_evidence
from kmerdb.store.lock import WriterLock
from kmerdb.store.storage import sync_tree

__all__ = ["ReindexContext", "ReindexReport", "reindex", "reindex_partition", "reindex_snapshot", "target_config"]

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
        return layer.evidence.kind != "exact"
    return layer.evidence.kind != "approx" or layer.evidence.fp_bits != cfg.fp_bits


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
        layer = Layer(root, rec, {})
        if not _layer_wants(layer, cfg):
            out.append(rec)
            continue
        kmers = layer.unitig_kmers()
        positions = layer.unitigs.positions()
        slots = layer.mphf.lookup(kmers)
        if kmers.size and (slots.min() < 0 or np.bincount(slots, minlength=layer.n).max() != 1):
            raise CorruptDatabaseError(rec.files["mphf"].path, "the MPHF does not map the layer's k-mers one-to-one")
        ref = write_evidence(
            root, layer_prefix(p, rec.id), ctx.generation, cfg, kmers, slots, positions, layer.unitigs.n_bases
        )
        del layer  # its maps are closed before the next layer's are opened
        out.append(replace(rec, files={**rec.files, "evidence": ref}))
        rewritten += 1
    return p, out, rewritten


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


def reindex(
    path: str | os.PathLike,
    evidence: str,
    fp_bits: int | None = None,
    z: int | None = None,
    threads: int | None = None,
    wait: bool | float = False,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
) -> ReindexReport:
    """Rebuild the evidence of every layer of a database, in one transaction.

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

    Notes
    -----
    This is ``with db.transaction(): db.reindex(...)`` on a handle opened with ``mode="a"``,
    without the handle: the writer lock is taken, the catalog read, the new evidence
    written and made durable, then the new generation committed in one catalog write.
    A failure at any point removes the files written and commits nothing.
    """
    t0 = time.perf_counter()
    path = os.fspath(path)
    Catalog.open(path, readonly=True).close()  # DatabaseNotFoundError, FormatVersionError first
    if not os.access(path, os.W_OK):
        raise ReadOnlyError(f"{path}: not writable by this process")
    snap, args = _commit_alone(
        path,
        "reindex",
        lambda base, generation: reindex_snapshot(
            path, base, generation, evidence, fp_bits, z, threads, progress, scheduler=scheduler
        ),
        wait,
    )
    cfg = snap.config
    return ReindexReport(
        path,
        cfg.evidence,
        cfg.fp_bits,
        cfg.z,
        int(args.get("layers_rewritten", 0)),
        snap.generation,
        time.perf_counter() - t0,
    )


def _commit_alone(
    root: str, command: str, operation: Callable[[Snapshot, int], tuple[Snapshot, dict]], wait: bool | float
) -> tuple[Snapshot, dict]:
    """Run one operation as a transaction of its own; returns the committed snapshot and its arguments.

    The same rule as :class:`~kmerdb.Transaction`: under the writer lock, the operation
    writes new files; they are synced, then the new snapshot, the superseded generation's
    files and the history record are written in one catalog transaction.  Until then no
    reader sees a new file, and a failure removes them.  It passes the crash points of a
    transaction (``txn.locked`` ... ``txn.committed``, see docs/transactions.md).
    """
    lock = WriterLock(root).acquire(wait)
    catalog: Catalog | None = None
    clean = True
    try:
        crashpoint("txn.locked")
        catalog = Catalog.open(root, readonly=False)
        base = catalog.read()
        if base.state != "ready":
            raise IncompleteDatabaseError(root, base.state)
        protected = base.file_paths()
        for files in catalog.generations().values():
            protected.update(files)
        if lock.previous_crashed:  # the files a killed writer left behind
            remove_unreferenced(root, protected)
        try:
            new, args = operation(base, base.generation + 1)
            if new is base:
                return base, args
            new = new.with_changes(generation=base.generation + 1, state="ready")
            crashpoint("txn.commit")
            sync_tree(root)
            crashpoint("txn.fsynced")
            with catalog.write() as w:
                if w.current_generation() != base.generation:
                    raise TransactionError(f"{root}: the catalog moved on under the writer lock")
                w.put_snapshot(new)
                if not w.has_generation(base.generation):
                    w.put_generation(base.generation, base.file_paths())
                w.add_history(command, args, new.generation)
                crashpoint("txn.lmdb")
        except BaseException:
            try:
                remove_unreferenced(root, protected)
            except Exception:
                clean = False  # the next writer finishes the clean-up
            raise
        crashpoint("txn.committed")
        return new, args
    finally:
        if catalog is not None:
            catalog.close()
        lock.release(clean=clean)
