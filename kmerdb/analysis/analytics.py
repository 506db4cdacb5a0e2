"""Genome comparisons from the columns: weights, intersections, distances, spectra.

Everything here is computed from the column groups, partition by partition and layer by
layer, without listing k-mers: the partitions are read by tasks run through an executor
(:mod:`kmerdb.analysis.scan`: serial, local processes or a Dask cluster, ``threads`` and
``scheduler``), each reducing its partitions to colour classes (:mod:`kmerdb.analysis.classes`)
and those to pair counts or min-sums (:mod:`kmerdb.analysis.pairs`); the caller sums what the
tasks return.  Every call reads the handle's snapshot once and keeps no state between calls,
so calls on one handle from several threads do not interfere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kmerdb.analysis.classes import ClassTable, SpreadAccumulator, boundaries, distinct_rows, empty_rows
from kmerdb.analysis.pairs import GEMM_GENOMES, min_rows, pair_rows, weighted_colsum
from kmerdb.analysis.phylo import tree_from_matrix
from kmerdb.analysis.scan import HIST_CAP, Progress, compare_task, scan, weights_task
from kmerdb.errors import GenomeNotFoundError, InvalidParameterError

__all__ = [
    "METRICS",
    "TREE_METRICS",
    "ColWeights",
    "DistanceMatrix",
    "ClassTable",
    "colour_classes",
    "col_weights",
    "intersections",
    "distance",
    "iter_distances",
    "spectrum",
    "distinct_rows",
    "format_value",
]

#: Metric name -> (is a similarity, symmetric, needs counts).
METRICS: dict[str, tuple[bool, bool, bool]] = {
    "jaccard": (True, True, False),
    "jaccard-distance": (False, True, False),
    "containment": (True, False, False),
    "mash": (False, True, False),
    "bray-curtis": (False, True, True),
}

#: Metrics a tree can be built from (``jaccard`` is used as ``1 - J``).
TREE_METRICS = ("jaccard-distance", "jaccard", "mash", "bray-curtis")


# --------------------------------------------------------------------------------------
# public results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColWeights:
    """Per-genome totals of an index.

    Attributes
    ----------
    labels : tuple of str
        Genome labels, in column order.
    distinct : ndarray of int64
        Distinct k-mers of each genome.
    total : ndarray of int64
        k-mer occurrences of each genome (counts index), else equal to ``distinct``.
    """

    labels: tuple[str, ...]
    distinct: np.ndarray
    total: np.ndarray

    def to_dict(self) -> dict:
        return {
            label: {"distinct": int(d), "total": int(t)} for label, d, t in zip(self.labels, self.distinct, self.total)
        }


@dataclass(frozen=True)
class DistanceMatrix:
    """A labelled genome x genome matrix.

    Attributes
    ----------
    metric : str
        One of :data:`METRICS`.
    labels : tuple of str
        Row and column labels.
    matrix : ndarray of float64, shape (n, n)
        ``matrix[i, j]`` compares genome ``i`` with genome ``j``; for ``containment``, the
        fraction of genome ``i``'s k-mers that genome ``j`` holds.
    """

    metric: str
    labels: tuple[str, ...]
    matrix: np.ndarray

    def __getitem__(self, pair: tuple[str, str]) -> float:
        a, b = pair
        return float(self.matrix[self._index(a), self._index(b)])

    def _index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise GenomeNotFoundError(label) from None

    @property
    def is_similarity(self) -> bool:
        return METRICS[self.metric][0]

    def to_dict(self) -> dict:
        """``{"metric": ..., "labels": [...], "matrix": [[...]]}``."""
        return {"metric": self.metric, "labels": list(self.labels), "matrix": self.matrix.tolist()}

    def to_tsv(self) -> str:
        """Header ``<metric> label...``, then one row per genome: label and values."""
        lines = ["\t".join((self.metric,) + self.labels)]
        for label, row in zip(self.labels, self.matrix):
            lines.append("\t".join([label] + [format_value(v) for v in row.tolist()]))
        return "\n".join(lines) + "\n"

    def to_phylip(self) -> str:
        """Square (relaxed) PHYLIP distance matrix: the count, then per row the label padded to
        10 characters, a space and the distances; whitespace in labels becomes ``_``.

        PHYLIP programs read distances, so a similarity is written as ``1 - x``, and the
        diagonal is 0 whatever the metric.
        """
        dist = self.as_distance()
        np.fill_diagonal(dist, 0.0)
        lines = [f"{len(self.labels)}"]
        for label, row in zip(self.labels, dist):
            name = "_".join(label.split()) or "_"
            lines.append(f"{name:<10} " + " ".join(format_value(v) for v in row.tolist()))
        return "\n".join(lines) + "\n"

    def as_distance(self) -> np.ndarray:
        """The matrix as distances (``1 - x`` for a similarity)."""
        return 1.0 - self.matrix if self.is_similarity else self.matrix.copy()

    def tree(self, method: str = "nj") -> str:
        """A Newick tree of the genomes (``nj`` or ``upgma``); see :mod:`kmerdb.phylo`."""
        if not METRICS[self.metric][1]:
            raise InvalidParameterError("metric", self.metric, f"a tree needs a symmetric metric: {', '.join(TREE_METRICS)}")
        return tree_from_matrix(self.as_distance(), self.labels, method)


def format_value(v: float) -> str:
    """A matrix value as text: integers without a fraction, floats in full (shortest round trip)."""
    if not math.isfinite(v):
        return repr(float(v))
    return repr(float(v)) if v != int(v) else (str(int(v)) if abs(v) < 1e15 else repr(float(v)))


def _check_metric(snap, metric: str) -> None:
    if metric not in METRICS:
        raise InvalidParameterError("metric", metric, f"expected one of {', '.join(METRICS)}")
    if METRICS[metric][2] and not snap.config.counts:
        raise InvalidParameterError("metric", metric, "needs an index built with counts")


def _compare(db, snap, mode: str, reduce: bool, threads, scheduler, max_memory, progress) -> Iterator:
    return scan(
        db.path,
        snap,
        compare_task,
        threads=threads,
        scheduler=scheduler,
        max_memory=max_memory,
        progress=progress,
        phase="comparing",
        mode=mode,
        reduce=reduce,
    )


def colour_classes(
    db,
    counts: bool = False,
    threads: int | None = None,
    max_memory: int | str | None = None,
    progress: Progress | None = None,
    *,
    scheduler=None,
) -> ClassTable:
    """The colour classes of an index: its distinct rows and how many k-mers carry each.

    Parameters
    ----------
    db : Database
        An open database.
    counts : bool
        Reduce count rows (index built with counts) instead of presence rows.
    threads : int, optional
        Worker processes (default: all CPUs).
    max_memory : int or str, optional
        Bounds the row blocks the workers reduce at once, e.g. ``"512M"``.
    progress : callable, optional
        ``progress(phase, partitions done, partitions)``.
    scheduler : str or distributed.Client, optional
        Run the partition tasks on this Dask cluster (``threads`` is then ignored).

    Returns
    -------
    ClassTable
        Rows of k-mers held by no genome of the index (after a removal) are left out.
    """
    snap = db.snapshot
    return _colour_classes(db, snap, counts, threads, scheduler, max_memory, progress)


def _colour_classes(db, snap, counts: bool, threads, scheduler, max_memory, progress) -> ClassTable:
    mode = "counts" if counts else "presence"
    if counts and not snap.config.counts:
        raise InvalidParameterError("counts", True, "this index keeps presence only (build it with counts)")
    n_genomes = len(snap.genomes)
    # the classes of every task, merged in buckets: one copy of the table at a time, not several
    acc = SpreadAccumulator(empty_rows(mode, n_genomes))
    for raw, weights in _compare(db, snap, mode, False, threads, scheduler, max_memory, progress):
        acc.add(raw, weights)
    raw, weights = acc.result()
    return ClassTable(mode, n_genomes, raw, weights)


def col_weights(
    db, threads: int | None = None, max_memory=None, progress: Progress | None = None, *, scheduler=None
) -> ColWeights:
    """Distinct k-mers (and occurrences, with counts) of every genome, from the columns.

    See :meth:`kmerdb.Database.col_weights`; ``scheduler`` runs the partition tasks on a Dask
    cluster.
    """
    snap = db.snapshot
    n = len(snap.genomes)
    distinct = np.zeros(n, dtype=np.int64)
    totals = np.zeros(n, dtype=np.int64)
    for d, t, _ in scan(
        db.path, snap, weights_task, threads=threads, scheduler=scheduler, max_memory=max_memory,
        progress=progress, phase="weighing",
    ):
        distinct += d
        totals += t
    return ColWeights(snap.labels, distinct, totals if snap.config.counts else distinct.copy())


def spectrum(
    db, genome: str | None = None, threads: int | None = None, max_memory=None, *, scheduler=None
) -> dict[str, list[tuple[int, int]]]:
    """k-mer count histograms: label -> [(count, distinct k-mers with that count), ...].

    See :meth:`kmerdb.Database.spectrum`; ``scheduler`` runs the partition tasks on a Dask
    cluster.
    """
    snap = db.snapshot
    records = {g.label: g for g in snap.genomes}
    if genome is not None and genome not in records:
        raise GenomeNotFoundError(genome)
    labels = snap.labels if genome is None else (genome,)
    if not snap.config.counts:
        return {label: [(int(c), int(n)) for c, n in records[label].spectrum] for label in labels}
    n = len(snap.genomes)
    dense = np.zeros((n, HIST_CAP), dtype=np.int64)
    large: list[list[np.ndarray]] = [[] for _ in range(n)]
    for _, _, (d, big) in scan(
        db.path, snap, weights_task, threads=threads, scheduler=scheduler, max_memory=max_memory,
        phase="spectrum", spectrum=True,
    ):
        dense += d
        for g in range(n):
            if big[g].size:
                large[g].append(big[g])
    col = {label: i for i, label in enumerate(snap.labels)}
    out = {}
    for label in labels:
        g = col[label]
        pairs = [(c, int(v)) for c, v in enumerate(dense[g].tolist()) if c > 0 and v > 0]
        if large[g]:
            s = np.sort(np.concatenate(large[g]))
            starts = np.flatnonzero(boundaries(s))
            pairs += list(zip(s[starts].tolist(), np.diff(np.append(starts, s.size)).tolist()))
        # the columns hold only the counts a build or append kept (min_count); the ones
        # below it are in the genome's record, counted from its inputs
        cut = records[label].min_count
        if cut > 1:
            pairs = [(int(c), int(n)) for c, n in records[label].spectrum if c < cut] + pairs
        out[label] = pairs
    return out


def intersections(
    db, threads: int | None = None, max_memory=None, progress: Progress | None = None, *, scheduler=None
) -> np.ndarray:
    """(G, G) int64 matrix of distinct k-mers shared by each pair of genomes (diagonal: each
    genome's distinct k-mers).  See :meth:`kmerdb.Database.intersections`; ``scheduler`` runs
    the partition tasks on a Dask cluster."""
    return _intersections(db, db.snapshot, threads, scheduler, max_memory, progress)


def _intersections(db, snap, threads, scheduler, max_memory, progress) -> np.ndarray:
    g = len(snap.genomes)
    if g >= GEMM_GENOMES:
        # many genomes: the tasks' class tables are merged here (colours repeat across
        # partitions) and reduced by one matrix product, which uses every core itself
        table = _colour_classes(db, snap, False, threads, scheduler, max_memory, progress)
        return pair_rows(table, 0, g)
    out = np.zeros((g, g), dtype=np.int64)
    for part in _compare(db, snap, "presence", True, threads, scheduler, max_memory, progress):
        out += part
    return out


def _metric_block(metric: str, k: int, inter, w_rows, w_all, mins=None, t_rows=None, t_all=None) -> np.ndarray:
    """The metric for rows (genomes of a block) against all genomes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "bray-curtis":
            den = (t_rows[:, None] + t_all[None, :]).astype(np.float64)
            return np.where(den > 0, 1.0 - 2.0 * mins / np.where(den > 0, den, 1), 0.0)
        if metric == "containment":
            return np.where(w_rows[:, None] > 0, inter / np.where(w_rows > 0, w_rows, 1)[:, None], 1.0)
        union = w_rows[:, None] + w_all[None, :] - inter
        j = np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)
        if metric == "jaccard":
            return j
        if metric == "jaccard-distance":
            return 1.0 - j
        # mash: -1/k ln(2J/(1+J)); J = 0 gives 1 (as Mash reports it)
        d = np.where(j > 0, -np.log(np.where(j > 0, 2.0 * j / (1.0 + j), 1.0)) / k, 1.0)
        return np.maximum(d, 0.0) + 0.0  # no -0.0


class _Comparer:
    """A metric computed from the columns of one snapshot: dense in one pass (pair counts
    summed over partitions), or a block of genomes at a time from the class table (sparse
    streams)."""

    def __init__(self, db, metric: str, threads, scheduler, max_memory, progress, dense: bool) -> None:
        snap = db.snapshot
        _check_metric(snap, metric)
        self.metric = metric
        self.k = snap.config.k
        self.labels = snap.labels
        g = len(self.labels)
        counts = metric == "bray-curtis"
        self.table = None
        if dense:
            if counts:
                self.mins = np.zeros((g, g), dtype=np.int64)
                self.sums = np.zeros(g, dtype=np.int64)
                for mins, colsum in _compare(db, snap, "counts", True, threads, scheduler, max_memory, progress):
                    self.mins += mins
                    self.sums += colsum
            else:
                self.inter = _intersections(db, snap, threads, scheduler, max_memory, progress)
                self.sums = np.diag(self.inter).copy()
        else:
            self.table = _colour_classes(db, snap, counts, threads, scheduler, max_memory, progress)
            self.sums = weighted_colsum(self.table)

    def block(self, lo: int, hi: int) -> np.ndarray:
        if self.metric == "bray-curtis":
            mins = self.mins[lo:hi] if self.table is None else min_rows(self.table, lo, hi)
            return _metric_block(self.metric, self.k, None, None, None, mins, self.sums[lo:hi], self.sums)
        inter = self.inter[lo:hi] if self.table is None else pair_rows(self.table, lo, hi)
        return _metric_block(self.metric, self.k, inter, self.sums[lo:hi], self.sums)


#: Largest (G, G) int64 matrix a streaming comparison sums directly rather than through a
#: class table (Bray-Curtis): 256 MiB, about 5,800 genomes.
DENSE_PAIR_BYTES = 256 << 20


def distance(
    db,
    metric: str = "jaccard",
    threads: int | None = None,
    max_memory=None,
    progress: Progress | None = None,
    *,
    scheduler=None,
) -> DistanceMatrix:
    """A labelled matrix of a metric between every pair of genomes.

    See :meth:`kmerdb.Database.distance`; ``scheduler`` runs the partition tasks on a Dask
    cluster.
    """
    cmp = _Comparer(db, metric, threads, scheduler, max_memory, progress, dense=True)
    g = len(cmp.labels)
    matrix = cmp.block(0, g) if g else np.zeros((0, 0))
    return DistanceMatrix(metric, cmp.labels, np.asarray(matrix, dtype=np.float64))


def iter_distances(
    db,
    metric: str = "jaccard-distance",
    max_distance: float | None = None,
    nearest: int | None = None,
    threads: int | None = None,
    max_memory=None,
    block: int | None = None,
    progress: Progress | None = None,
    *,
    scheduler=None,
) -> Iterator[tuple[str, str, float]]:
    """Stream the pairs of a metric without holding a dense matrix.

    Rows are computed a block of genomes at a time.  With ``max_distance``, a pair is
    kept when its distance (``1 - x`` for the similarities ``jaccard`` and
    ``containment``) is at most ``max_distance``; with ``nearest``, only the ``nearest``
    closest other genomes of each genome are kept (ties broken by column order).  Both
    may be combined.  A symmetric metric yields each unordered pair once (``a`` before
    ``b`` in column order) unless ``nearest`` is given; ``containment`` yields ordered
    pairs.  A genome is never paired with itself.  ``scheduler`` runs the partition tasks
    on a Dask cluster.

    Yields
    ------
    (label_a, label_b, value)
        ``value`` in the metric as named (a similarity for ``jaccard``/``containment``).
    """
    if max_distance is None and nearest is None:
        raise InvalidParameterError("max_distance", None, "give max_distance and/or nearest for a sparse output")
    if nearest is not None and (not isinstance(nearest, int) or isinstance(nearest, bool) or nearest < 1):
        raise InvalidParameterError("nearest", nearest, "must be an integer >= 1")
    if max_distance is not None and not (max_distance >= 0):
        raise InvalidParameterError("max_distance", max_distance, "must be >= 0")
    # Bray-Curtis from a class table holds (count classes x genomes) uint32, which grows with
    # every genome and every distinct count row: while the (G, G) min-sums are smaller than
    # the budget below, they are summed directly instead
    g = len(db.snapshot.genomes)
    dense = metric == "bray-curtis" and 8 * g * g <= DENSE_PAIR_BYTES
    cmp = _Comparer(db, metric, threads, scheduler, max_memory, progress, dense=dense)
    labels = cmp.labels
    g = len(labels)
    similarity, symmetric, _ = METRICS[metric]
    if block is None:
        block = max(1, min(g, (64 << 20) // (8 * 4 * max(1, g))))
    for lo in range(0, g, block):
        hi = min(g, lo + block)
        values = cmp.block(lo, hi)
        dist = 1.0 - values if similarity else values
        rows = np.arange(lo, hi)
        dist[rows - lo, rows] = np.inf  # never itself
        if nearest is None and symmetric:
            dist[np.arange(hi - lo)[:, None] >= (np.arange(g)[None, :] - lo)] = np.inf  # keep j > i
        keep = np.isfinite(dist)
        if max_distance is not None:
            keep &= dist <= max_distance
        for r in range(hi - lo):
            cand = np.flatnonzero(keep[r])
            if nearest is not None and cand.size:
                order = np.lexsort((cand, dist[r, cand]))[:nearest]
                cand = cand[order]
            for j in cand.tolist():
                yield labels[lo + r], labels[j], float(values[r, j])

