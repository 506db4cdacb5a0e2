"""Scatter: genome inputs -> super-k-mers in per-partition spill buckets; and counting them back.

Shared by :func:`kmerdb.build` and by appending genomes from files.  The caller reads the
inputs (dnaio) and cuts them into chunks of about a megabase; each chunk is one task
(:func:`scatter_chunk`) that splits it into super-k-mers, groups them by partition, packs
them 2 bits per base and writes them to its own spill file in the spill folder.  A task
returns only small extent records, so packed data never travels back to the caller; the
caller adds them up in a :class:`~kmerdb.ops.spill.SpillIndex`.  A gather task then reads a
partition's bucket back by path (:func:`count_bucket`), checked, and counts its k-mers per
genome into sorted keys and sparse rows (:class:`~kmerdb.core.colours.SparseRows`): memory
proportional to the (k-mer, genome) occurrences, never to k-mers x genomes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from kmerdb.config import Config
from kmerdb.core import kernels
from kmerdb.core.colours import SparseRows, segment_positions
from kmerdb.core.kmers import encode, superkmers
from kmerdb.engine.executor import Executor
from kmerdb.errors import InvalidParameterError
from kmerdb.ops.inputs import GenomeInput, estimated_bases, read_records
from kmerdb.ops.spill import (
    Bucket,
    BucketSet,
    Extent,
    SpillIndex,
    SpillPool,
    pack_superkmers,
    packed_nbytes,
    read_bucket,
    superkmer_kmers,
)
from kmerdb.store.crashpoint import crashpoint

__all__ = [
    "CHUNK_BASES",
    "ScatterContext",
    "ChunkSpill",
    "scatter_chunk",
    "scatter_inputs",
    "input_chunks",
    "count_bucket",
    "gather_counts",
    "check_min_count",
    "GenomeStats",
]

#: progress(phase, done, total): phase "scatter" counts bases read.
Progress = Callable[[str, int, "int | None"], None]

#: Bases per scatter task (one chunk of input).
CHUNK_BASES = 1 << 20
_SEGMENT = 1 << 17  # bases packed at once inside a task (bounds its temporaries)
# k-mer occurrences a gather decodes at once (whole genomes; bounds its temporaries)
_GATHER_BATCH = 1 << 18
# Entries of the directory of a partition's keys (pair_rows): 8 MiB at most.
_DIRECTORY_BITS = 20
_U32_MAX = np.iinfo(np.uint32).max


@dataclass(frozen=True)
class ScatterContext:
    """What every scatter task of an operation shares.

    Attributes
    ----------
    config : Config
        k, m and the partition count.
    spill_dir : str
        The spill folder (absolute; seen at the same path by every worker).
    """

    config: Config
    spill_dir: str


@dataclass(frozen=True)
class ChunkSpill:
    """What one scatter task wrote: per partition it touched, the super-k-mers and packed
    bytes that went in (counted as they were added) and the extents holding them."""

    chunk: int
    partitions: tuple[int, ...]
    records: tuple[int, ...]
    nbytes: tuple[int, ...]
    extents: tuple[tuple[Extent, ...], ...]


def scatter_chunk(ctx: ScatterContext, chunk: int, genome: int, seqs: list[bytes]) -> ChunkSpill:
    """Task: super-k-mers of some sequences of one genome, packed into spill file ``chunk-<chunk>``.

    Parameters
    ----------
    ctx : ScatterContext
    chunk : int
        The chunk's number, unique in the operation: it names the task's spill file, so a
        task run again replaces its own file.
    genome : int
        Column of the genome the sequences belong to.
    seqs : list of bytes
        The sequences (pieces of records, overlapping by k-1 bases).
    """
    cfg = ctx.config
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
        return ChunkSpill(chunk, (), (), (), ())
    part = np.concatenate(parts)
    lengths = np.concatenate(lens)
    packed = np.concatenate(packs)
    # regroup segments by partition: stable sort keeps each segment's bytes contiguous
    nbytes = packed_nbytes(lengths, k)
    order = np.argsort(part, kind="stable")
    byte_start = np.cumsum(nbytes) - nbytes
    owner_bytes = np.repeat(byte_start[order] - (np.cumsum(nbytes[order]) - nbytes[order]), nbytes[order])
    packed = packed[owner_bytes + np.arange(owner_bytes.size)]
    part, lengths, nbytes = part[order], lengths[order], nbytes[order]
    present = np.flatnonzero(np.bincount(part, minlength=n_parts))
    rec_bounds = np.searchsorted(part, np.append(present, n_parts))
    byte_bounds = np.concatenate([[0], np.cumsum(nbytes)])[rec_bounds]

    pool = SpillPool(ctx.spill_dir, 1, name=f"chunk-{chunk:08d}")
    try:
        # the whole chunk is buffered (it is small) and written as one extent per partition
        buckets = BucketSet(n_parts, k, pool, buffer_bytes=1 << 62)
        for i, p in enumerate(present):
            buckets.add(
                int(p), genome, lengths[rec_bounds[i] : rec_bounds[i + 1]], packed[byte_bounds[i] : byte_bounds[i + 1]]
            )
        buckets.flush_all()
        pool.close()
        crashpoint("scatter.chunk")
    except BaseException:
        pool.discard()
        raise
    return ChunkSpill(
        chunk,
        tuple(int(p) for p in present),
        tuple(int(buckets.records_in[p]) for p in present),
        tuple(int(buckets.bytes_in[p]) for p in present),
        tuple(tuple(buckets.extents[p]) for p in present),
    )


def input_chunks(genomes: Sequence[GenomeInput], k: int, progress: Progress | None) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (genome index, [sequence bytes]) chunks of about :data:`CHUNK_BASES` bases.

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
                for lo in range(0, max(len(seq) - k + 1, 1), CHUNK_BASES):
                    piece = seq[lo : lo + CHUNK_BASES + k - 1]
                    if len(piece) < k:
                        continue
                    pending.setdefault(gi, []).append(piece)
                    pending_size[gi] = pending_size.get(gi, 0) + len(piece)
                    if pending_size[gi] >= CHUNK_BASES:
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


def scatter_inputs(
    items: Sequence[GenomeInput],
    config: Config,
    executor: Executor,
    spill_dir: str,
    progress: Progress | None = None,
) -> SpillIndex:
    """Scatter: read the inputs here, cut and spill super-k-mers in the executor's tasks.

    Parameters
    ----------
    items : sequence of GenomeInput
        The genomes, in column order (a chunk's genome is its index here).
    config : Config
    executor : Executor
        Runs the tasks; at most two per worker are in flight, so memory stays bounded
        however large the inputs.
    spill_dir : str
        An existing spill folder (see :func:`kmerdb.ops.spill.spill_folder`), absolute.
    progress : callable, optional
        ``progress("scatter", bases read, bases estimated)``.

    Returns
    -------
    SpillIndex
        Every partition's bucket.
    """
    ctx = ScatterContext(config, spill_dir)
    index = SpillIndex(config.n_partitions)
    tasks = ((chunk, genome, seqs) for chunk, (genome, seqs) in enumerate(input_chunks(items, config.k, progress)))
    for spilled in executor.map(scatter_chunk, ctx, tasks):
        index.add(spilled.partitions, spilled.records, spilled.nbytes, spilled.extents)
    return index


def check_min_count(min_count: object) -> int:
    """``min_count`` as checked by build and append: an integer >= 1.

    Raises
    ------
    InvalidParameterError
        Not an integer, or below 1.
    """
    if isinstance(min_count, (bool, np.bool_)) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise InvalidParameterError(
            "min_count", min_count, "must be an integer >= 1 (k-mers seen fewer times in a genome are not indexed)"
        )
    return int(min_count)


def count_bucket(
    spill_dir: str,
    bucket: Bucket,
    k: int,
    n_genomes: int,
    check_size: Callable[[int], None] | None = None,
    min_count: int = 1,
    counts: bool = True,
) -> tuple[np.ndarray, SparseRows, list[GenomeStats]]:
    """Read a partition's bucket back (checked) and count its k-mers per genome.

    ``check_size``, if given, is called with the bucket's k-mer occurrences before they are
    extracted (it raises when they would not fit the memory budget).  ``min_count`` and
    ``counts`` are passed to :func:`gather_counts`.  The k-mers are extracted a batch of
    whole genomes at a time, so the bucket's occurrences never sit in memory all at once.

    Returns
    -------
    keys, rows, stats
        As :func:`gather_counts`.

    Raises
    ------
    BuildIntegrityError
        What came back differs from what went in.
    """
    genome_of, n_kmers, packed = read_bucket(spill_dir, bucket.extents, k, bucket.n_records, bucket.n_bytes)
    if check_size is not None:
        check_size(int(n_kmers.sum()))
    per_genome = _bucket_kmers(genome_of, n_kmers, packed, k, n_genomes)
    del genome_of, n_kmers, packed  # the generator holds them until its last batch
    return _count_genomes(per_genome, n_genomes, min_count, counts)


def _bucket_kmers(
    genome_of: np.ndarray, n_kmers: np.ndarray, packed: np.ndarray, k: int, n_genomes: int
) -> Iterator[np.ndarray]:
    """The canonical k-mer occurrences of every genome of a bucket, genome 0 first.

    Super-k-mers are grouped by genome and decoded in batches of whole genomes of about
    :data:`_GATHER_BATCH` k-mers.
    """
    nbytes = packed_nbytes(n_kmers, k)
    byte_start = np.cumsum(nbytes) - nbytes
    order = np.argsort(genome_of, kind="stable")
    bounds = np.searchsorted(genome_of[order], np.arange(n_genomes + 1))
    # k-mers before each genome's first super-k-mer, in genome order
    before = np.zeros(order.size + 1, dtype=np.int64)
    np.cumsum(n_kmers[order], out=before[1:])
    at_genome = before[bounds]
    g = 0
    while g < n_genomes:
        hi = int(np.searchsorted(at_genome, at_genome[g] + _GATHER_BATCH, side="right")) - 1
        hi = min(max(hi, g + 1), n_genomes)
        recs = order[bounds[g] : bounds[hi]]
        if recs.size and (recs.size == 1 or bool((np.diff(recs) == 1).all())):
            sub = packed[byte_start[recs[0]] : byte_start[recs[-1]] + nbytes[recs[-1]]]
        else:
            sub = packed[segment_positions(byte_start[recs], nbytes[recs])]
        kmers = superkmer_kmers(n_kmers[recs], sub, k)
        del sub
        first = at_genome[g]
        for gg in range(g, hi):
            yield kmers[at_genome[gg] - first : at_genome[gg + 1] - first]
        del kmers
        g = hi


#: (distinct k-mers kept, their occurrences, spectrum bincount) of a genome in a partition.
GenomeStats = tuple[int, int, np.ndarray]


def gather_counts(
    kmers: np.ndarray, genomes: np.ndarray, n_genomes: int, min_count: int = 1, counts: bool = True
) -> tuple[np.ndarray, SparseRows, list[GenomeStats]]:
    """Distinct k-mers and the genomes that hold each, without those seen fewer than ``min_count`` times.

    Memory is proportional to the (k-mer, genome) occurrences: no k-mer x genome matrix is made.

    Parameters
    ----------
    kmers : ndarray of uint64
        Canonical k-mer occurrences.
    genomes : ndarray of int
        Genome index of each occurrence.
    n_genomes : int
        Number of genomes (columns).
    min_count : int
        A k-mer seen fewer times in a genome is absent there; one dropped in every genome is
        not a key at all.
    counts : bool
        Whether the rows carry the counts (else presence only).

    Returns
    -------
    keys : ndarray of uint64
        Sorted distinct k-mers kept in at least one genome.
    rows : SparseRows
        One row per key over the ``n_genomes`` columns: the genomes holding it and, with
        ``counts``, its occurrences in each (uint32, saturating).
    stats : list of (n_distinct, total, spectrum bincount) per genome
        ``n_distinct`` and ``total`` count the kept k-mers; the spectrum counts them all,
        so it shows what ``min_count`` cut off.
    """
    genomes = np.asarray(genomes)
    order = np.argsort(genomes, kind="stable")
    bounds = np.searchsorted(genomes[order], np.arange(n_genomes + 1))
    per_genome = (kmers[order[bounds[g] : bounds[g + 1]]] for g in range(n_genomes))
    return _count_genomes(per_genome, n_genomes, min_count, counts)


def _directory(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Where the sorted ``keys`` of each value of their top bits begin (four to eight keys per
    entry on average, at most 2**20 entries; one more entry, the end), and the shift that
    gives a value's entry (:func:`kmerdb.core.kernels.pair_rows`)."""
    top = int(keys[-1]).bit_length() if keys.size else 0
    bits = min(_DIRECTORY_BITS, max(0, int(keys.size).bit_length() - 3), top)
    shift = top - bits
    starts = np.empty((1 << bits) + 1, dtype=np.int64)
    starts[:-1] = np.searchsorted(keys, np.arange(1 << bits, dtype=np.uint64) << np.uint64(shift))
    starts[-1] = keys.size
    return starts, shift


def _count_genomes(
    per_genome: Iterator[np.ndarray], n_genomes: int, min_count: int, counts: bool
) -> tuple[np.ndarray, SparseRows, list[GenomeStats]]:
    """Count each genome's occurrences (given genome 0 first) and lay the result out as rows.

    Each genome's distinct k-mers are found by its own sort; the keys are the sorted union of
    them, and a counting pass over the genomes, in order, puts every (key, genome) pair at
    its place in the rows, so the columns of a row come out ascending without a sort of the
    pairs.
    """
    uniqs: list[np.ndarray] = []
    cnts: list[np.ndarray] = []
    stats: list[GenomeStats] = []
    for kmers in per_genome:
        sk = np.sort(kmers)
        if sk.size:
            first = np.empty(sk.size, dtype=bool)
            first[0] = True
            np.not_equal(sk[1:], sk[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            uniq = sk[starts]
            cnt = np.diff(np.append(starts, sk.size))
        else:
            uniq, cnt = sk, np.zeros(0, dtype=np.int64)
        del sk
        spectrum = np.bincount(cnt) if cnt.size else np.zeros(1, np.int64)
        if min_count > 1:
            kept = cnt >= min_count
            uniq, cnt = uniq[kept], cnt[kept]
        stats.append((int(uniq.size), int(cnt.sum()), spectrum))
        uniqs.append(uniq)
        if counts:
            cnts.append(np.minimum(cnt, _U32_MAX).astype(np.uint32))
    sizes = np.array([0] + [u.size for u in uniqs], dtype=np.int64)
    offsets = np.cumsum(sizes)
    n_pairs = int(offsets[-1])
    # each genome's distinct k-mers, genome after genome
    pairs = np.concatenate(uniqs) if n_pairs else np.zeros(0, np.uint64)
    del uniqs
    allk = np.sort(pairs)
    if allk.size:
        keep = np.empty(allk.size, dtype=bool)
        keep[0] = True
        np.not_equal(allk[1:], allk[:-1], out=keep[1:])
        keys = allk[keep]
        del keep
    else:
        keys = allk
    del allk
    # the key (row) of every (genome, k-mer) pair, genome after genome
    row_dtype = np.int32 if keys.size < np.iinfo(np.int32).max else np.int64
    row = np.empty(n_pairs, dtype=row_dtype)
    directory, shift = _directory(keys)
    kernels.pair_rows(keys, pairs, offsets, directory, shift, np.empty(n_genomes, dtype=np.int64), row)
    del pairs
    indptr = np.zeros(keys.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=keys.size), out=indptr[1:])
    # each genome holds a key at most once: its pairs go to distinct rows, one slot further on
    # (32-bit positions while they fit: half the bytes moved by the random accesses)
    fill = indptr[:-1].astype(np.int32 if n_pairs < np.iinfo(np.int32).max else np.int64)
    columns = np.empty(n_pairs, dtype=np.int32)
    values = np.empty(n_pairs, dtype=np.uint32) if counts else None
    pair_counts = np.concatenate(cnts) if counts and n_pairs else np.zeros(0, np.uint32)
    kernels.pair_columns(row, offsets, fill, columns, pair_counts, values if values is not None else pair_counts[:0])
    return keys, SparseRows(indptr, columns, values, n_genomes), stats
