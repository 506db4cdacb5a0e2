"""Build: inputs -> super-k-mers in spill buckets (scatter) -> one layer per partition (gather).

Scatter (:mod:`kmerdb.ops.scatter`): the caller reads records (dnaio) and cuts them into
chunks; each chunk is a task that splits it into super-k-mers, groups them by partition,
packs them 2 bits per base and writes them to its own file in the spill folder inside the
new database, returning only the extents it wrote.
Gather: one task per partition reads its bucket back by path (checked), extracts canonical
k-mers, sorts and counts them per genome, and writes the layer.
Both phases run through one executor (serial, local processes, or a Dask cluster).
The catalog is committed last, by the caller, in one transaction that marks the database
ready (:mod:`kmerdb.store.scaffold`); a build that fails removes the directory it created,
and one that is killed leaves a catalog in state ``building`` that refuses to open (its
spill folder with it).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kmerdb.config import Config
from kmerdb.engine.executor import open_executor
from kmerdb.errors import InvalidTypeError, MemoryBudgetError
from kmerdb.ops.inputs import GenomeInput, resolve_genomes
from kmerdb.ops.scatter import check_min_count, count_bucket, gather_counts, scatter_inputs
from kmerdb.ops.spill import Bucket, spill_folder
from kmerdb.params import parse_size, path_argument, resolve_threads
from kmerdb.store.catalog import GenomeRecord, LayerRecord
from kmerdb.store.crashpoint import crashpoint
from kmerdb.store.layer import write_layer
from kmerdb.store.scaffold import new_database
from kmerdb.store.storage import deferred_sync

__all__ = ["build", "BuildReport", "BuildContext", "Progress", "gather_counts"]

log = logging.getLogger(__name__)

#: progress(phase, done, total): phase names "scatter" (bases read), "gather" (partitions).
Progress = Callable[[str, int, "int | None"], None]

_PROCESS_BASE = 40 << 20  # resident size of an idle process (interpreter + numpy + libraries)
_WORKER_WORK = 24 << 20  # working set of a scatter task (one chunk and one segment's temporaries)
# A gather task's peak above its process's base, measured (resident size of the process tree,
# tools/procmem.py) on 200 simulated genomes of 200 kbp and on 3 of 3 Mbp, 1 to 64 partitions:
# counting: per k-mer occurrence of the bucket (each genome's sort, the sorted union of keys,
# the rows; whole genomes decoded ~256K k-mers at a time)
_BYTES_PER_KMER = 48
# writing the layer: per (k-mer, genome) pair (the rows, and the colour classes or dense
# rows made of them), 8 more with counts, and per distinct k-mer (unitigs, MPHF, evidence)
_BYTES_PER_PAIR = 56
_BYTES_PER_COUNT = 8
_BYTES_PER_KEY = 72


@dataclass(frozen=True)
class BuildReport:
    """What a build made."""

    path: str
    n_genomes: int
    n_kmers: int
    seconds: float


@dataclass(frozen=True)
class BuildContext:
    """What every gather task of a build shares.

    Attributes
    ----------
    root : str
        The new database's directory (absolute).
    config : Config
    spill_dir : str
        The spill folder the scatter wrote.
    n_genomes : int
        Columns of the layers.
    budget : int or None
        The build's ``max_memory``, for error messages.
    n_workers : int
        Tasks that may run at once.
    task_budget : int
        Bytes one gather task may use.
    min_count : int
        k-mers seen fewer times in a genome are not indexed for it.
    """

    root: str
    config: Config
    spill_dir: str
    n_genomes: int
    budget: int | None
    n_workers: int
    task_budget: int
    min_count: int = 1


def _gather_partition(ctx: BuildContext, partition: int, bucket: Bucket):
    """Task: read one bucket back, count its k-mers per genome, write the partition's layer."""
    cfg = ctx.config

    def check(need: int, what: str) -> None:
        if need > ctx.task_budget:
            hint = ", colours other than dense" if cfg.colours == "dense" else ""
            raise MemoryBudgetError(
                ctx.budget or 0, need * ctx.n_workers, f"partition {partition} holds {what}; "
                f"use more partitions, fewer threads{hint} or a larger max_memory"
            )

    def check_size(n_kmers: int) -> None:
        check(n_kmers * _BYTES_PER_KMER, f"{n_kmers} k-mers")

    keys, rows, stats = count_bucket(
        ctx.spill_dir, bucket, cfg.k, ctx.n_genomes, check_size, ctx.min_count, counts=cfg.counts
    )
    check(_layer_bytes(cfg, keys.size, rows.nnz, ctx.n_genomes), f"{keys.size} distinct k-mers in {rows.nnz} pairs")
    with deferred_sync():  # the caller syncs the whole tree once before committing
        record = write_layer(ctx.root, partition, partition, 1, keys, [(tuple(range(ctx.n_genomes)), rows)], cfg)
    crashpoint("build.layer")
    return partition, record, stats


def _layer_bytes(config: Config, n_keys: int, n_pairs: int, n_genomes: int) -> int:
    """Bytes a gather task needs to write a layer of ``n_keys`` k-mers and ``n_pairs``
    (k-mer, genome) pairs; a group forced dense is first made as a (k-mers x genomes) matrix."""
    need = n_pairs * (_BYTES_PER_PAIR + (_BYTES_PER_COUNT if config.counts else 0)) + n_keys * _BYTES_PER_KEY
    if config.colours == "dense":
        # counts: a uint32 matrix and its copy in the stored width; presence: packed bits
        need += n_keys * (n_genomes * 8 if config.counts else 2 * ((n_genomes + 7) // 8))
    return need


def build(
    path: str | os.PathLike,
    genomes: Mapping[str, object] | Sequence[GenomeInput],
    k: int = 31,
    m: int | None = None,
    partitions: int | None = None,
    counts: bool = False,
    threads: int | None = None,
    max_memory: int | str | None = None,
    *,
    min_count: int = 1,
    evidence: str = "exact",
    fp_bits: int | None = None,
    z: int | None = None,
    progress: Progress | None = None,
    command: str = "build",
    scheduler: Any = None,
    force: bool = False,
    colours: str = "auto",
) -> BuildReport:
    """Build a new index at ``path`` from genome files.

    Parameters
    ----------
    path : str or PathLike
        Directory to create; must not exist.
    genomes : mapping or sequence of GenomeInput
        ``label -> path`` or ``label -> [paths]`` (FASTA/FASTQ, plain or gzip), in column order.
    k : int
        k-mer length, 1..31.
    m : int, optional
        Minimizer length (default about k/2, odd).
    partitions : int, optional
        Number of partitions (default 64).
    counts : bool
        Keep occurrence counts (else presence bits).
    threads : int, optional
        Worker processes (default: all CPUs).
    max_memory : int or str, optional
        Budget for the whole process tree, e.g. ``"512M"`` (on a cluster: for this process
        and as many workers as the cluster runs tasks at once).
    min_count : int
        Index a k-mer for a genome only if it occurs at least this many times in that
        genome's inputs (KMC's ``-ci``): with reads, ``2`` or ``3`` drops most sequencing
        errors.  A k-mer dropped in every genome is not in the index.  The genome's record
        keeps ``min_count`` and the spectrum of all its counts, those below it included;
        its ``n_kmers`` and ``total`` count the indexed k-mers.
    evidence, fp_bits, z
        Membership evidence: ``"exact"``, or ``"approx"`` with ``fp_bits`` and ``z``.
    progress : callable, optional
        ``progress(phase, done, total)``.
    scheduler : str or distributed.Client, optional
        Run the tasks on this Dask cluster (its workers must see ``path`` at the same path).
    force : bool
        If ``path`` holds the remains of a build that never finished (killed: its catalog
        still says ``building`` and no process builds it), remove them and build anew;
        without it they are refused with :class:`~kmerdb.errors.AbandonedBuildError`.
    colours : {"auto", "dense", "classes"}
        How genome columns are stored: ``"dense"`` presence bits (or counts) per k-mer,
        ``"classes"`` a colour-class id per k-mer and each distinct set of genomes once, or
        ``"auto"`` the smaller of the two for each column group written.  Kept in the
        configuration: appends, merges and compactions of the index follow it.

    Returns
    -------
    BuildReport

    Raises
    ------
    DatabaseExistsError
        ``path`` exists (it is left untouched).
    InputError
        An input is missing, empty, malformed or binary (nothing is left behind).
    InvalidParameterError, MemoryBudgetError
    WorkerError
        A task failed or a worker died (nothing is left behind).
    """
    t0 = time.perf_counter()
    # every argument is checked before anything is created: a wrong one is one clear error
    path = path_argument(path)
    if not isinstance(counts, (bool, np.bool_)):
        raise InvalidTypeError("counts", counts, "True or False")
    if progress is not None and not callable(progress):
        raise InvalidTypeError("progress", progress, "a callable progress(phase, done, total) or None")
    min_count = check_min_count(min_count)
    config = Config.create(
        k=k, m=m, partitions=partitions, evidence=evidence, fp_bits=fp_bits, z=z, counts=counts, colours=colours
    )
    items = resolve_genomes(genomes)
    resolve_threads(threads)  # refuse a bad value before anything starts
    budget = parse_size(max_memory)
    with open_executor(threads, scheduler) as executor:
        n_workers = executor.n_workers
        task_budget = _task_budget(budget, n_workers)
        log.info("building %s: %d genomes, k=%d, m=%d, %d partitions, %r", path, len(items),
                 config.k, config.m, config.n_partitions, executor)
        with new_database(path, config, force=force) as db:
            root = os.path.abspath(db.root)
            with spill_folder(root) as spill_dir:
                index = scatter_inputs(items, config, executor, spill_dir, progress)
                crashpoint("build.scattered")
                log.info("scatter done: %d super-k-mers, %d packed bytes in %d extents",
                         int(index.records_in.sum()), int(index.bytes_in.sum()), sum(len(e) for e in index.extents))
                ctx = BuildContext(root, config, spill_dir, len(items), budget, n_workers, task_budget, min_count)
                tasks = ((p, index.bucket(p)) for p in range(config.n_partitions))
                layers, stats = _gather(executor, ctx, tasks, progress)
            _commit(db, config, items, layers, stats, command, min_count)
    n_keys = int(sum(r.n_kmers for r in layers))
    report = BuildReport(path, len(items), n_keys, time.perf_counter() - t0)
    log.info("built %s: %d distinct k-mers in %.1f s", path, n_keys, report.seconds)
    return report


def _task_budget(budget: int | None, n_workers: int) -> int:
    """Bytes a gather task may use under ``budget`` (None: unbounded)."""
    if budget is None:
        return 1 << 62
    floor = _PROCESS_BASE * (n_workers + 1) + _WORKER_WORK * n_workers + (16 << 20)
    if budget < floor:
        raise MemoryBudgetError(budget, floor, f"{n_workers} worker process(es) and the parent need at least that")
    # a quarter of what is left stays with this process (input chunks in flight, the
    # extent records); the rest is shared by the gather tasks
    reserve = max(1 << 20, (budget - floor) // 4)
    return _WORKER_WORK + (budget - floor - reserve) // n_workers


def _gather(executor, ctx: BuildContext, tasks, progress: Progress | None):
    """Run the gather tasks; the layer records by partition, and every genome's statistics."""
    n_parts = ctx.config.n_partitions
    by_partition: dict[int, LayerRecord] = {}
    n_distinct = np.zeros(ctx.n_genomes, dtype=np.int64)
    totals = np.zeros(ctx.n_genomes, dtype=np.int64)
    spectra = [np.zeros(1, dtype=np.int64) for _ in range(ctx.n_genomes)]
    for done, (p, record, stats) in enumerate(executor.map(_gather_partition, ctx, tasks), 1):
        by_partition[p] = record
        for g, (nd, tot, spec) in enumerate(stats):
            n_distinct[g] += nd
            totals[g] += tot
            spectra[g] = _add_hist(spectra[g], spec)
        if progress is not None:
            progress("gather", done, n_parts)
    return [by_partition[p] for p in range(n_parts)], (n_distinct, totals, spectra)


def _commit(db, config: Config, items: Sequence[GenomeInput], layers, stats, command: str, min_count: int) -> None:
    n_distinct, totals, spectra = stats
    genome_records = [
        GenomeRecord(
            g,
            item.label,
            tuple(p if item.record is None else f"{p}#{item.record}" for p in item.paths),
            int(n_distinct[g]),
            int(totals[g]),
            tuple((int(c), int(n)) for c, n in enumerate(spectra[g]) if c > 0 and n > 0),
            min_count,
        )
        for g, item in enumerate(items)
    ]
    with db.commit() as w:
        w.put_genomes(genome_records)
        for p, record in enumerate(layers):
            w.put_partition(p, [record])
        w.put_state("ready", 1, len(items), config.n_partitions)
        w.add_history(
            command,
            {
                "genomes": [g.label for g in items],
                "k": config.k,
                "m": config.m,
                "partitions": config.n_partitions,
                "counts": config.counts,
                "evidence": config.evidence,
                "fp_bits": config.fp_bits,
                "z": config.z,
                "min_count": min_count,
                "colours": config.colours,
            },
            1,
        )


def _add_hist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size < b.size:
        a, b = b, a
    out = a.copy()
    out[: b.size] += b
    return out
