"""Maintenance: verify a database, vacuum unreachable files (compact is an operation of
:mod:`kmerdb.merge`, run inside a transaction).

``verify`` reads everything and changes nothing: file sizes and checksums against the
catalog, the column invariant (every layer holds exactly one column per genome), every
colour-class group decoded in full (:func:`check_group`), the MPHF
of each layer minimal and perfect over the layer's k-mers, the evidence consistent with
them, every k-mer canonical, in its partition, and in one layer only.  The partitions are
checked one task each, by any executor (serial, local processes, or a Dask cluster:
``scheduler=``).

``vacuum`` takes the writer lock and removes the data files that neither the current
generation nor a generation still seen by a live reader names, then forgets the
generations nobody sees any more.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from kmerdb.core.kmers import canonical, kmer_minimizer_hashes, partition_of
from kmerdb.engine.executor import open_executor
from kmerdb.errors import CorruptDatabaseError, IncompleteDatabaseError, KmerDBError
from kmerdb.params import path_argument
from kmerdb.store.catalog import Catalog, Snapshot
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.encodings import ColumnEncoding, encoding_for, encoding_for_config
from kmerdb.store.layer import Layer
from kmerdb.store.lock import LOCKS_DIR, WriterLock, live_readers
from kmerdb.store.storage import DATA_DIR, at_path, check_relpath, data_file_checksum

__all__ = [
    "VerifyContext",
    "VerifyReport",
    "VacuumReport",
    "verify",
    "verify_partition",
    "check_group",
    "vacuum",
    "remove_unreferenced",
    "data_files",
]


def data_files(root: str) -> list[str]:
    """Every file under ``root/data``, as paths relative to ``root``.

    Symlinked folders are not entered (``os.walk`` does not follow them) and a symlinked
    ``data/`` itself lists nothing: what lies elsewhere is not the database's.
    """
    if os.path.islink(os.path.join(root, DATA_DIR)):
        return []
    out = []
    for dirpath, _, files in os.walk(os.path.join(root, DATA_DIR)):
        for name in files:
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def remove_unreferenced(root: str, keep: set[str], only: set[str] | None = None) -> tuple[int, int]:
    """Remove data files not in ``keep`` (only among ``only`` when given); (files, bytes) removed.

    Call it holding the writer lock: a file of an operation in progress is not in ``keep``.
    """
    candidates = data_files(root) if only is None else sorted(only)
    removed = nbytes = 0
    for rel in candidates:
        if rel in keep:
            continue
        if check_relpath(rel):
            continue
        try:
            # only a regular file inside data/, reached folder by folder through no symlink
            # and unlinked relative to its folder's descriptor, is ever deleted
            with at_path(root, rel) as (folder, leaf):
                st = os.stat(leaf, dir_fd=folder, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue
                os.unlink(leaf, dir_fd=folder)
        except (CorruptDatabaseError, FileNotFoundError, NotADirectoryError):
            continue
        size = st.st_size
        removed += 1
        nbytes += size
        crashpoint("remove.file")
    if only is None:  # spill files of a killed writer (normally unlinked as soon as created)
        for name in os.listdir(root):
            if name.startswith(".spill-"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
    return removed, nbytes


@dataclass(frozen=True)
class VacuumReport:
    """What :func:`vacuum` did."""

    path: str
    files_removed: int
    bytes_removed: int
    generations_dropped: tuple[int, ...]
    generations_kept: tuple[int, ...]
    live_readers: int


def vacuum(path: str | os.PathLike, wait: bool | float = False) -> VacuumReport:
    """Remove the data files that no generation reaches and no open reader holds.

    Parameters
    ----------
    path : str or PathLike
        The database.
    wait : bool or float
        Wait for the writer lock (True, or at most that many seconds) instead of failing.

    Raises
    ------
    LockedError
        A writer holds the lock.
    """

    path = path_argument(path)
    catalog = Catalog.open(path, readonly=False)
    lock = None
    try:
        snap = catalog.read()
        if snap.state != "ready":
            raise IncompleteDatabaseError(path, snap.state)
        lock = WriterLock(path).acquire(wait)
        crashpoint("vacuum.locked")
        snap = catalog.read()  # the current generation, now that no writer can move it
        recorded = catalog.generations()
        seen, any_generation, n_live = live_readers(path)
        kept = set(recorded) if any_generation else {g for g in recorded if g in seen}
        keep = snap.file_paths()
        for g in kept:
            keep.update(recorded[g])
        removed, nbytes = remove_unreferenced(path, keep)
        crashpoint("vacuum.files")
        dropped = sorted(set(recorded) - kept)
        if dropped:
            with catalog.write() as w:
                for g in dropped:
                    w.delete_generation(g)
            crashpoint("vacuum.forgotten")
    finally:
        if lock is not None:
            lock.release(clean=True)
        catalog.close()
    return VacuumReport(path, removed, nbytes, tuple(dropped), tuple(sorted(kept)), n_live)


# ---------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What :func:`verify` found.  ``ok`` is True when ``problems`` is empty."""

    path: str
    generation: int = 0
    n_genomes: int = 0
    n_partitions: int = 0
    n_layers: int = 0
    n_files: int = 0
    n_kmers: int = 0
    bytes_checked: int = 0
    unreferenced_files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "ok": self.ok,
            "generation": self.generation,
            "genomes": self.n_genomes,
            "partitions": self.n_partitions,
            "layers": self.n_layers,
            "files": self.n_files,
            "kmers": self.n_kmers,
            "bytes_checked": self.bytes_checked,
            "unreferenced_files": self.unreferenced_files,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class VerifyContext:
    """What every verify task shares: the database directory and the snapshot checked."""

    root: str
    snapshot: Snapshot


def verify_partition(ctx: VerifyContext, p: int) -> tuple[int, list[str], int, int, int]:
    """Task: check every layer of partition ``p``.

    Returns
    -------
    (int, list of str, int, int, int)
        ``p``, the problems found, and the files, bytes and k-mers checked.
    """
    crashpoint("verify.partition")
    root = ctx.root
    snap = ctx.snapshot
    cfg = snap.config
    ids = [g.id for g in snap.genomes]
    column_of = {gid: i for i, gid in enumerate(ids)}
    problems: list[str] = []
    n_files = nbytes = n_kmers = 0
    all_keys = []
    for rec in snap.partitions[p]:
        where = f"partition {p} layer {rec.id}"
        damaged = False
        for ref in rec.all_files():
            n_files += 1
            try:
                # contained: inside data/, no symlink, a regular file (a FIFO or device never blocks)
                size, digest = data_file_checksum(root, ref.path)
            except CorruptDatabaseError as exc:
                problems.append(f"{where}: file {ref.path}: {exc.reason}")
                damaged = True
                continue
            except OSError as exc:
                problems.append(f"{where}: file {ref.path} unreadable: {exc}")
                damaged = True
                continue
            nbytes += size
            if size != ref.nbytes:
                problems.append(f"{where}: file {ref.path} has {size} bytes, the catalog says {ref.nbytes}")
                damaged = True
            elif digest != ref.checksum:
                problems.append(f"{where}: file {ref.path} checksum differs from the catalog's")
                damaged = True
        held = Counter(gid for g in rec.groups for gid in g.genome_ids)  # linear in the genomes
        for gid, label in ((g.id, g.label) for g in snap.genomes):
            n = held[gid]
            if n != 1:
                problems.append(f"{where}: genome {label!r} has {n} columns (expected exactly one)")
        kind = encoding_for_config(cfg)
        for g in rec.groups:
            try:
                if encoding_for(g.kind).keeps_counts != kind.keeps_counts:
                    problems.append(f"{where}: column group {g.file.path} holds {g.kind}, the index keeps {kind.kind}")
            except KmerDBError as exc:
                problems.append(f"{where}: column group {g.file.path}: {exc}")
        if damaged:
            continue
        try:
            layer = Layer(root, rec, column_of)
            layer.check_config(cfg)
            keys = np.ascontiguousarray(layer.unitig_kmers(), dtype=np.uint64)
        except KmerDBError as exc:
            problems.append(f"{where}: cannot be opened: {exc}")
            continue
        for group in layer.groups:
            problems.extend(f"{where}: column group {group.source}: {p}" for p in check_group(group))
        n_kmers += keys.size
        if keys.size != rec.n_kmers:
            problems.append(f"{where}: holds {keys.size} k-mers, the catalog says {rec.n_kmers}")
            continue
        found, slots = layer.find(keys)
        if not found.all():
            problems.append(f"{where}: {int((~found).sum())} of its k-mers are rejected by its own dictionary or MPHF and evidence")
        elif not (np.bincount(slots, minlength=keys.size) == 1).all():
            problems.append(f"{where}: its slots are not one per k-mer (the MPHF is not minimal and perfect)")
        elif not np.array_equal(np.asarray(layer.kmers())[slots], keys):
            problems.append(f"{where}: the evidence of a slot names another k-mer than the slot's")
        if keys.size:
            if int(keys.max()) >= 4**cfg.k:
                problems.append(f"{where}: k-mer codes beyond 4**k")
            elif not np.array_equal(canonical(keys, cfg.k), keys):
                problems.append(f"{where}: k-mers that are not canonical")
            elif not (partition_of(kmer_minimizer_hashes(keys, cfg.k, cfg.m), cfg.n_partitions) == p).all():
                problems.append(f"{where}: k-mers of another partition")
            sk = np.sort(keys)
            if (sk[1:] == sk[:-1]).any():
                problems.append(f"{where}: a k-mer occurs twice")
            all_keys.append(sk)
    if len(all_keys) > 1:
        sk = np.sort(np.concatenate(all_keys))
        if (sk[1:] == sk[:-1]).any():
            problems.append(f"partition {p}: a k-mer is in more than one layer")
    return p, problems, n_files, nbytes, n_kmers


#: Slots, and classes, of a column group decoded at once by :func:`check_group`.
_CHECK_SLOTS = 1 << 20
_CHECK_CLASSES = 1 << 15


def check_group(group: ColumnEncoding) -> list[str]:
    """Problems of a column group that decoding it finds (never raises).

    A colour-class group is read fully: every class decoded in its shorter form (forms,
    offsets monotone and inside the payload, members aligned, below the group's genome
    count, none twice), every slot's class id below the class count, and with counts every
    slot's count range inside the values and as long as its class.  Dense groups are
    checked by their shape when they are opened.
    """
    if group.family != "classes":
        return []
    coded = cast(Any, group)
    try:
        n_classes = int(coded.n_classes)
        sizes = np.zeros(n_classes, dtype=np.int64)
        for lo in range(0, n_classes, _CHECK_CLASSES):
            ids = np.arange(lo, min(n_classes, lo + _CHECK_CLASSES), dtype=np.int64)
            rows, _ = group.members_or_complement(ids)
            if rows.nnz > 1 and ((np.diff(rows.columns) == 0) & (np.diff(rows.row_of()) == 0)).any():
                return ["a class lists a genome twice"]
            sizes[ids] = coded.class_sizes(ids)
        for lo in range(0, group.n, _CHECK_SLOTS):
            slots = np.arange(lo, min(group.n, lo + _CHECK_SLOTS), dtype=np.int64)
            ids = coded.class_ids(slots)
            if group.keeps_counts and not np.array_equal(coded.count_lengths(slots), sizes[ids]):
                return ["a slot's counts disagree with its class"]
    except CorruptDatabaseError as exc:
        return [exc.reason]
    except Exception as exc:  # a damage no check names: described, not raised
        return [f"cannot be decoded ({type(exc).__name__}: {exc})"]
    return []


def verify(
    path: str | os.PathLike, threads: int | None = None, progress=None, *, scheduler: Any = None
) -> VerifyReport:
    """Check a database from catalog to bytes.  Reads only; returns a report (never raises on
    a problem it can describe).

    Parameters
    ----------
    path : str or PathLike
    threads : int, optional
        Worker processes for the partitions (default: all CPUs).
    progress : callable, optional
        ``progress("verify", partitions done, partitions)``.
    scheduler : str or distributed.Client, optional
        Check the partitions on this Dask cluster (its workers see ``path`` at the same place).

    Raises
    ------
    DatabaseNotFoundError, FormatVersionError
    WorkerError
        A worker died or a check failed in a way it cannot describe.
    """
    path = path_argument(path)
    report = VerifyReport(path)
    catalog = Catalog.open(path, readonly=True)
    try:
        snap = catalog.read()
    except CorruptDatabaseError as exc:  # a record out of bounds or not its checksum: described
        report.problems.append(str(exc))
        catalog.close()
        return report
    try:
        # the records open does not read: each against its checksum and its bounds
        catalog.history()
        catalog.generations()
    except CorruptDatabaseError as exc:
        report.problems.append(str(exc))
    finally:
        catalog.close()
    for name in (DATA_DIR, LOCKS_DIR):
        if os.path.islink(os.path.join(path, name)):
            report.problems.append(f"{name}/ is a symlink: a database holds none (writers refuse it)")
    report.generation = snap.generation
    report.n_genomes = len(snap.genomes)
    report.n_partitions = len(snap.partitions)
    report.n_layers = sum(len(layers) for layers in snap.partitions)
    if snap.state != "ready":
        report.problems.append(f"database state is {snap.state!r}: its build never finished")
        return report
    if len(snap.partitions) != snap.config.n_partitions:
        report.problems.append("catalog partition count differs from the configuration")
    ids = [g.id for g in snap.genomes]
    labels = [g.label for g in snap.genomes]
    if len(set(ids)) != len(ids):
        report.problems.append("two genomes share an id")
    if len(set(labels)) != len(labels):
        report.problems.append("two genomes share a label")
    if ids and max(ids) >= snap.next_genome_id:
        report.problems.append("a genome id is not below the next genome id")
    layer_ids = [rec.id for layers in snap.partitions for rec in layers]
    if len(set(layer_ids)) != len(layer_ids):
        report.problems.append("two layers share an id")
    if layer_ids and max(layer_ids) >= snap.next_layer_id:
        report.problems.append("a layer id is not below the next layer id")
    paths = [ref.path for ref in snap.all_files()]
    if len(set(paths)) != len(paths):
        report.problems.append("two catalog entries name the same data file")
    n_parts = len(snap.partitions)
    results = []
    with open_executor(threads, scheduler, n_tasks=n_parts) as executor:
        for done, result in enumerate(
            executor.map(verify_partition, VerifyContext(path, snap), ((p,) for p in range(n_parts))), 1
        ):
            results.append(result)
            if progress is not None:
                progress("verify", done, n_parts)
    # problems in partition order, whatever order the tasks finished in
    for _, problems, n_files, nbytes, n_kmers in sorted(results, key=lambda r: r[0]):
        report.problems.extend(problems)
        report.n_files += n_files
        report.bytes_checked += nbytes
        report.n_kmers += n_kmers
    named = set(paths)
    report.unreferenced_files = sum(1 for f in data_files(path) if f not in named)
    return report
