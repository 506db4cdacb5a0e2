"""Merge indexes into a new database directory.

The output starts as the first source (hard links to its immutable files where the file
system allows, copies elsewhere); the genomes of the other sources are added to it
partition by partition (:func:`kmerdb.ops.add.add_genomes`), in a staging folder next to
the output that is moved into place only once committed (:mod:`kmerdb.store.scaffold`).

The operations on a working snapshot that a transaction calls (appending genomes from
files or other databases, removing genomes, compacting) live in :mod:`kmerdb.ops.add` and
:mod:`kmerdb.ops.compact`; they are importable from here as well.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kmerdb.config import FORMAT_VERSION
from kmerdb.errors import CorruptDatabaseError, DatabaseExistsError, InvalidParameterError
from kmerdb.ops.add import add_genomes, check_compatible, dropped_counts, final_labels, read_sources, release_sources
from kmerdb.params import path_argument, resolve_threads
from kmerdb.store.catalog import Snapshot
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.scaffold import new_database
from kmerdb.store.storage import at_path, open_at, open_data_file

__all__ = ["MergeReport", "merge"]

#: progress(phase, done, total); phases here: "merge" (partitions).
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class MergeReport:
    """What :func:`merge` made."""

    path: str
    n_genomes: int
    n_kmers: int
    labels: tuple[str, ...]
    linked: int
    copied: int
    seconds: float
    #: sources that keep counts, merged as presence bits (``mode="presence"``); also logged
    counts_dropped: tuple[str, ...] = ()




# ---------------------------------------------------------------------------------------
# merge into a new directory
# ---------------------------------------------------------------------------------------


def _is_database(path: str) -> bool:
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "catalog", "data.mdb"))


def _link_or_copy(src_root: str, relpath: str, dst_root: str) -> bool:
    """Hard-link the data file ``relpath`` of ``src_root`` into ``dst_root`` (True), or copy
    it where links are impossible (False).

    The source is opened by :func:`~kmerdb.store.storage.open_data_file` (a catalog path
    that leaves the source, goes through a symlink or names a FIFO or device is refused
    before anything is linked); both folders are reached by
    :func:`~kmerdb.store.storage.at_path` and the link is made between them by descriptor,
    so a folder swapped for a symlink meanwhile is refused, never followed.
    """
    fd = open_data_file(src_root, relpath)
    with os.fdopen(fd, "rb") as src_fh, at_path(src_root, relpath) as (src_dir, src_name), at_path(
        dst_root, relpath, create=True
    ) as (dst_dir, dst_name):
        if not os.path.samestat(os.fstat(fd), os.stat(src_name, dir_fd=src_dir, follow_symlinks=False)):
            raise CorruptDatabaseError(os.path.join(src_root, relpath), "data file was replaced while being linked")
        try:
            # follow_symlinks=False: link the name checked above, never a symlink's target
            os.link(src_name, dst_name, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
            return True
        except FileNotFoundError:
            raise CorruptDatabaseError(os.path.join(src_root, relpath), "data file named by the catalog is missing") from None
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
        # copy from the descriptor opened above: the very file that was checked
        out_fd = open_at(dst_dir, dst_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.path.join(dst_root, relpath))
        with os.fdopen(out_fd, "wb") as out:
            shutil.copyfileobj(src_fh, out, 1 << 22)
            out.flush()
            os.fsync(out.fileno())
    return False


def merge(
    out: str | os.PathLike,
    sources: Sequence[str | os.PathLike],
    mode: str = "presence",
    rename_duplicates: bool = False,
    force: bool = False,
    threads: int | None = None,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
) -> MergeReport:
    """Merge indexes into a new index at ``out``.

    The output starts as the first source (hard links to its immutable files where the
    file system allows, copies elsewhere); the genomes of the other sources are added to
    it partition by partition in parallel; the output appears at ``out`` only complete.

    Parameters
    ----------
    out : str or PathLike
        Directory to create.
    sources : sequence of str or PathLike
        Source databases; their genomes become the columns in this order.
    mode : {"presence", "count"}
        Presence bits only, or counts (every source must keep counts).
    rename_duplicates : bool
        Rename a label seen before to ``label.1``, ``label.2``, ... instead of failing.
    force : bool
        Replace an existing database at ``out``, once the merge has succeeded.
    threads : int, optional
        Worker processes (default: all CPUs).
    progress : callable, optional
        ``progress(phase, done, total)``.
    scheduler : str or distributed.Client, optional
        Run the partition tasks on this Dask cluster; its workers must see the sources and
        the folder of ``out`` at the same paths.

    Raises
    ------
    DatabaseNotFoundError, NotReadyError, IncompatibleIndexError, MixedEvidenceError,
    MissingCountsError, DuplicateLabelError, DatabaseExistsError, InvalidParameterError
        All raised before anything is written.
    """
    t0 = time.perf_counter()
    out = path_argument(out, "out")
    if mode not in ("presence", "count"):
        raise InvalidParameterError("mode", mode, "expected 'presence' or 'count'")
    resolve_threads(threads)
    srcs = read_sources(sources)
    try:
        return _merge_into_new(out, srcs, mode, rename_duplicates, force, threads, progress, scheduler, t0)
    finally:
        release_sources(srcs)


def _merge_into_new(out, srcs, mode, rename_duplicates, force, threads, progress, scheduler, t0) -> MergeReport:
    if not srcs:
        raise InvalidParameterError("sources", [], "give at least one database to merge")
    first = srcs[0]
    check_compatible((first.path, first.snapshot.config), srcs, counts=mode == "count")
    labels = final_labels([], [g.label for s in srcs for g in s.snapshot.genomes], rename_duplicates)
    if os.path.lexists(out):
        if not force:
            raise DatabaseExistsError(out)
        if not _is_database(out):
            raise DatabaseExistsError(out + " (not a kmerdb database, so --force does not replace it)")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise InvalidParameterError("out", out, "its parent folder does not exist")
    crashpoint("merge.validated")
    dropped = dropped_counts(srcs, mode == "count", out, "a merge in count mode keeps them")

    config = replace(first.snapshot.config, counts=mode == "count")
    # written in a staging folder next to ``out``, moved there once committed
    with new_database(out, config, argument="out", staged=True) as db:
        staging = db.root
        crashpoint("merge.catalog")
        n_first = len(first.snapshot.genomes)
        base = Snapshot(
            FORMAT_VERSION,
            config,
            "ready",
            1,
            first.snapshot.next_genome_id,
            first.snapshot.next_layer_id,
            tuple(replace(g, label=label) for g, label in zip(first.snapshot.genomes, labels[:n_first])),
            first.snapshot.partitions,
        )
        convert = first if first.snapshot.config.counts and mode == "presence" else None
        linked = copied = 0
        for layers in first.snapshot.partitions:
            for rec in layers:
                refs = list(rec.files.values()) if convert is not None else rec.all_files()
                for ref in refs:
                    if _link_or_copy(first.path, ref.path, staging):
                        linked += 1
                    else:
                        copied += 1
                    crashpoint("merge.link")
        new = add_genomes(
            staging, base, 1, srcs[1:], labels[n_first:], (), (), threads, progress, convert=convert, scheduler=scheduler
        )
        with db.commit() as w:
            w.put_snapshot(new)
            w.add_history(
                "merge",
                {"sources": [os.path.abspath(s.path) for s in srcs], "mode": mode, "genomes": list(labels)},
                1,
            )
    n_kmers = sum(rec.n_kmers for layers in new.partitions for rec in layers)
    return MergeReport(
        out, len(new.genomes), n_kmers, tuple(labels), linked, copied, time.perf_counter() - t0, dropped
    )
