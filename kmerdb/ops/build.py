"""Build: inputs -> super-k-mers in spill buckets (scatter) -> one layer per partition (gather).

Scatter: the parent reads records (dnaio) and cuts them into chunks; worker processes
split each chunk into super-k-mers, group them by partition and pack them 2 bits per
base; the parent appends them to the partition buckets (:mod:`kmerdb.spill`).
Gather: worker processes take partitions one at a time, read the bucket back (checked),
extract canonical k-mers, sort and count them per genome, and write the layer.
The catalog is committed last, in one transaction that marks the database ready; a
build that fails removes the directory it created, and one that is killed leaves a
catalog in state ``building`` that refuses to open.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kmerdb.config import Config
from kmerdb.core.kmers import encode, superkmers
from kmerdb.engine.workers import forked_pool, imap
from kmerdb.errors import DatabaseExistsError, InvalidParameterError, MemoryBudgetError
from kmerdb.ops.inputs import GenomeInput, estimated_bases, read_records, resolve_genomes
from kmerdb.ops.spill import BucketSet, SpillPool, pack_superkmers, read_bucket, superkmer_kmers
from kmerdb.params import parse_size, resolve_threads
from kmerdb.store.catalog import Catalog, GenomeRecord
from kmerdb.store.layer import write_layer
from kmerdb.store.storage import deferred_sync, sync_tree

__all__ = ["build", "BuildReport", "Progress", "gather_counts"]

log = logging.getLogger(__name__)

#: progress(phase, done, total): phase names "scatter" (bases read), "gather" (partitions).
Progress = Callable[[str, int, "int | None"], None]

_CHUNK_BASES = 1 << 20  # bases per scatter task
_SEGMENT = 1 << 17  # bases packed at once inside a task (bounds its temporaries)
_PROCESS_BASE = 40 << 20  # resident size of an idle process (interpreter + numpy + libraries)
_WORKER_WORK = 24 << 20  # working set of a scatter task (one segment's temporaries)
# gather temporaries per k-mer occurrence: counting (~48 bytes) plus the layer's unitig
# construction (~60 bytes per distinct k-mer, and distinct <= occurrences)
_BYTES_PER_KMER = 112


@dataclass(frozen=True)
class BuildReport:
    """What a build made."""

    path: str
    n_genomes: int
    n_kmers: int
    seconds: float


# Set in the parent before workers fork; workers read it from their copy.
_STATE: dict = {}


def _scatter_task(genome: int, seqs: list[bytes]):
    """Worker: super-k-mers of some sequences of one genome, packed, sorted by partition."""
    cfg: Config = _STATE["config"]
    k, m, n_parts = cfg.k, cfg.m, cfg.n_partitions
    parts, lens, packs = [], [], []
    for seq in seqs:
        codes = encode(seq)
        for lo in range(0, max(codes.size - k + 1, 0), _SEGMENT):
            seg = codes[lo : lo + _SEGMENT + k - 1]
            starts, n_kmers, part = superkmers(seg, k, m, n_parts)
            if starts.size == 0:
                continue
            order = np.argsort(part, kind="stable")
            lengths, packed = pack_superkmers(seg, starts[order], n_kmers[order], k)
            parts.append(part[order])
            lens.append(lengths)
            packs.append(packed)
    if not parts:
        return genome, None
    part = np.concatenate(parts)
    lengths = np.concatenate(lens)
    packed = np.concatenate(packs)
    # regroup segments by partition: stable sort keeps each segment's bytes contiguous
    nbytes = ((lengths.astype(np.int64) + (k - 1) + 3) >> 2)
    order = np.argsort(part, kind="stable")
    byte_start = np.cumsum(nbytes) - nbytes
    owner_bytes = np.repeat(byte_start[order] - (np.cumsum(nbytes[order]) - nbytes[order]), nbytes[order])
    packed = packed[owner_bytes + np.arange(owner_bytes.size)]
    part, lengths, nbytes = part[order], lengths[order], nbytes[order]
    present = np.flatnonzero(np.bincount(part, minlength=n_parts))
    rec_bounds = np.searchsorted(part, np.append(present, n_parts))
    byte_bounds = np.concatenate([[0], np.cumsum(nbytes)])[rec_bounds]
    return genome, (present, rec_bounds, byte_bounds, lengths, packed)


def _gather_task(partition: int, extents, records_in: int, bytes_in: int):
    """Worker: read one bucket back, count k-mers per genome, write the layer."""
    cfg: Config = _STATE["config"]
    n_genomes: int = _STATE["n_genomes"]
    genome_of, n_kmers, packed = read_bucket(_STATE["pool"], extents, cfg.k, records_in, bytes_in)
    need = int(n_kmers.sum()) * _BYTES_PER_KMER
    if need > _STATE["task_budget"]:
        raise MemoryBudgetError(
            _STATE["budget"], need * _STATE["threads"], f"partition {partition} holds {int(n_kmers.sum())} k-mers; "
            "use more partitions, fewer threads or a larger max_memory"
        )
    kmers, owner = superkmer_kmers(n_kmers, packed, cfg.k)
    del packed
    keys, columns, stats = gather_counts(kmers, genome_of[owner], n_genomes)
    del kmers, owner
    matrix = columns if cfg.counts else columns > 0
    with deferred_sync():  # the parent syncs the whole tree once before committing
        record = write_layer(
            _STATE["root"], partition, partition, 1, keys, [(tuple(range(n_genomes)), matrix)], cfg
        )
    return partition, record, stats


def gather_counts(kmers: np.ndarray, genomes: np.ndarray, n_genomes: int):
    """Distinct k-mers and their count per genome.

    Parameters
    ----------
    kmers : ndarray of uint64
        Canonical k-mer occurrences.
    genomes : ndarray of int
        Genome index of each occurrence.
    n_genomes : int
        Number of genomes (columns).

    Returns
    -------
    keys : ndarray of uint64
        Sorted distinct k-mers.
    counts : ndarray of int64, shape (len(keys), n_genomes)
        Occurrences of each key in each genome.
    stats : list of (n_distinct, total, spectrum bincount) per genome
    """
    per_genome = []
    order = np.argsort(genomes, kind="stable")
    bounds = np.searchsorted(genomes[order], np.arange(n_genomes + 1))
    for g in range(n_genomes):
        sk = np.sort(kmers[order[bounds[g] : bounds[g + 1]]])
        if sk.size:
            first = np.empty(sk.size, dtype=bool)
            first[0] = True
            np.not_equal(sk[1:], sk[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            uniq = sk[starts]
            cnt = np.diff(np.append(starts, sk.size))
        else:
            uniq, cnt = sk, np.zeros(0, dtype=np.int64)
        per_genome.append((uniq, cnt))
    allk = np.sort(np.concatenate([u for u, _ in per_genome])) if per_genome else np.zeros(0, np.uint64)
    if allk.size:
        keep = np.empty(allk.size, dtype=bool)
        keep[0] = True
        np.not_equal(allk[1:], allk[:-1], out=keep[1:])
        keys = allk[keep]
    else:
        keys = allk
    counts = np.zeros((keys.size, n_genomes), dtype=np.int64)
    stats = []
    for g, (uniq, cnt) in enumerate(per_genome):
        counts[np.searchsorted(keys, uniq), g] = cnt
        stats.append((int(uniq.size), int(cnt.sum()), np.bincount(cnt) if cnt.size else np.zeros(1, np.int64)))
    return keys, counts, stats


def _chunks(genomes: Sequence[GenomeInput], k: int, progress: Progress | None):
    """Yield (genome index, [sequence bytes]) chunks of about _CHUNK_BASES bases.

    Long records are cut with k-1 bases of overlap so no k-mer is lost or doubled.
    Progress is reported in bases, against a total estimated from the file sizes and
    corrected as each file is read.
    """
    by_file: dict[str, list[tuple[int, str | None]]] = {}
    for gi, g in enumerate(genomes):
        for p in g.paths:
            by_file.setdefault(p, []).append((gi, g.record))
    estimates = {p: estimated_bases(p) for p in by_file}
    total = sum(estimates.values())
    done = 0
    for path, owners in by_file.items():
        whole = [gi for gi, rec in owners if rec is None]
        per_record = {rec: gi for gi, rec in owners if rec is not None}
        pending: dict[int, list[bytes]] = {}
        pending_size: dict[int, int] = {}
        file_bases = 0
        for name, seq in read_records(path):
            targets = list(whole)
            if name in per_record:
                targets.append(per_record[name])
            for gi in targets:
                for lo in range(0, max(len(seq) - k + 1, 1), _CHUNK_BASES):
                    piece = seq[lo : lo + _CHUNK_BASES + k - 1]
                    if len(piece) < k:
                        continue
                    pending.setdefault(gi, []).append(piece)
                    pending_size[gi] = pending_size.get(gi, 0) + len(piece)
                    if pending_size[gi] >= _CHUNK_BASES:
                        yield gi, pending.pop(gi)
                        pending_size[gi] = 0
                        if progress is not None:
                            progress("scatter", min(done + file_bases + lo, total), total)
            file_bases += len(seq)
        for gi, seqs in pending.items():
            if seqs:
                yield gi, seqs
        done += file_bases
        total += file_bases - estimates[path]
        if progress is not None:
            progress("scatter", done, total)


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
    evidence: str = "exact",
    fp_bits: int | None = None,
    z: int | None = None,
    progress: Progress | None = None,
    command: str = "build",
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
        Minimizer length (default about k/2.5, odd).
    partitions : int, optional
        Number of partitions (default 64).
    counts : bool
        Keep occurrence counts (else presence bits).
    threads : int, optional
        Worker processes (default: all CPUs).
    max_memory : int or str, optional
        Budget for the whole process tree, e.g. ``"512M"``.
    evidence, fp_bits, z
        Membership evidence: ``"exact"``, or ``"approx"`` with ``fp_bits`` and ``z``.
    progress : callable, optional
        ``progress(phase, done, total)``.

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
    """
    t0 = time.perf_counter()
    path = os.fspath(path)
    config = Config.create(k=k, m=m, partitions=partitions, evidence=evidence, fp_bits=fp_bits, z=z, counts=counts)
    items = resolve_genomes(genomes)
    n_threads = resolve_threads(threads)
    budget = parse_size(max_memory)
    if budget is not None:
        floor = _PROCESS_BASE * (n_threads + 1) + _WORKER_WORK * n_threads + (16 << 20)
        if budget < floor:
            raise MemoryBudgetError(budget, floor, f"{n_threads} worker process(es) and the parent need at least that")
        # a quarter of what is left buffers spilled super-k-mers; the rest is for gather tasks
        spill_buffer = max(1 << 20, (budget - floor) // 4)
        task_budget = _WORKER_WORK + (budget - floor - spill_buffer) // n_threads
    else:
        spill_buffer, task_budget = 256 << 20, 1 << 62
    log.info("building %s: %d genomes, k=%d, m=%d, %d partitions, %d threads", path, len(items),
             config.k, config.m, config.n_partitions, n_threads)
    make_database_dir(path)
    spill = None
    catalog = None
    try:
        catalog = Catalog.create(path, config)
        spill = SpillPool(path, n_files=min(4, n_threads + 1))
        buckets = BucketSet(config.n_partitions, config.k, spill, spill_buffer)
        layers = [None] * config.n_partitions
        n_distinct = np.zeros(len(items), dtype=np.int64)
        totals = np.zeros(len(items), dtype=np.int64)
        spectra = [np.zeros(1, dtype=np.int64) for _ in items]
        # scatter tasks are chunks of input, however many partitions: fork every worker asked for
        with forked_pool(
            n_threads,
            n_threads,
            _STATE,
            config=config,
            n_genomes=len(items),
            pool=spill,
            root=path,
            budget=budget,
            threads=n_threads,
            task_budget=task_budget,
        ) as pool:
            scatter_inputs(items, config, pool, n_threads, buckets, progress)
            buckets.flush_all()
            log.info("scatter done: %d super-k-mers, %d packed bytes in %d extents",
                     int(buckets.records_in.sum()), int(buckets.bytes_in.sum()), sum(len(e) for e in buckets.extents))
            tasks = [
                (p, buckets.extents[p], int(buckets.records_in[p]), int(buckets.bytes_in[p]))
                for p in range(config.n_partitions)
            ]
            for done, (p, record, stats) in enumerate(imap(pool, _gather_star, tasks), 1):
                layers[p] = record
                for g, (nd, tot, spec) in enumerate(stats):
                    n_distinct[g] += nd
                    totals[g] += tot
                    spectra[g] = _add_hist(spectra[g], spec)
                if progress is not None:
                    progress("gather", done, len(tasks))
        sync_tree(path)
        genome_records = [
            GenomeRecord(
                g,
                item.label,
                tuple(p if item.record is None else f"{p}#{item.record}" for p in item.paths),
                int(n_distinct[g]),
                int(totals[g]),
                tuple((int(c), int(n)) for c, n in enumerate(spectra[g]) if c > 0 and n > 0),
            )
            for g, item in enumerate(items)
        ]
        with catalog.write() as w:
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
                },
                1,
            )
        n_keys = int(sum(r.n_kmers for r in layers))
    except BaseException:
        if catalog is not None:
            catalog.close()
            catalog = None
        if spill is not None:
            spill.close()
        shutil.rmtree(path, ignore_errors=True)
        raise
    spill.close()
    catalog.close()
    report = BuildReport(path, len(items), n_keys, time.perf_counter() - t0)
    log.info("built %s: %d distinct k-mers in %.1f s", path, n_keys, report.seconds)
    return report


def make_database_dir(path: str, argument: str = "path") -> None:
    """Create the directory of a new database; refuse an existing path (left untouched)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InvalidParameterError(argument, path, "its parent folder does not exist")
    try:
        os.mkdir(path)
    except FileExistsError:
        raise DatabaseExistsError(path) from None


def scatter_inputs(
    items: Sequence[GenomeInput], config: Config, pool, n_workers: int, buckets: BucketSet, progress: Progress | None
) -> None:
    """Scatter: read the inputs, cut super-k-mers in the workers, append them to the buckets.

    At most 2 tasks per worker are in flight, so memory stays bounded however large the inputs.
    Needs the module state of a build (``_STATE["config"]``) in the workers.
    """
    inflight: deque = deque()

    def consume(result) -> None:
        genome, packed = result
        if packed is None:
            return
        present, rec_bounds, byte_bounds, lengths, data = packed
        for i, p in enumerate(present):
            buckets.add(
                int(p), genome, lengths[rec_bounds[i] : rec_bounds[i + 1]], data[byte_bounds[i] : byte_bounds[i + 1]]
            )

    for genome, seqs in _chunks(items, config.k, progress):
        if pool is None:
            consume(_scatter_task(genome, seqs))
            continue
        inflight.append(pool.apply_async(_scatter_task, (genome, seqs)))
        while len(inflight) >= 2 * n_workers:
            consume(inflight.popleft().get())
    while inflight:
        consume(inflight.popleft().get())


def _gather_star(args):
    return _gather_task(*args)


def _add_hist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size < b.size:
        a, b = b, a
    out = a.copy()
    out[: b.size] += b
    return out
