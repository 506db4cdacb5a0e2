"""Set operations over the genomes of an index, written as a new database.

``setop(source, op, out, genomes=None, q=None)`` selects genomes of ``source`` (all by
default, in the order given), keeps the k-mers the operation picks, and writes a normal
database at ``out``: same ``k``, ``m``, partitions and count/presence kind as the source,
exact evidence, one layer per partition and **one genome column** named for the result
(``label``, by default the operation, e.g. ``intersection`` or ``at-least-3``), as the
output of ``kmc_tools simple`` is one k-mer set.  It opens, queries, merges and appends
like any index built by ``kmerdb build``.

Operations (``n`` = number of k-mers' selected genomes that hold it; the universe is
the k-mers of at least one selected genome):

==================  ==================================  ===============================
op                  keeps a k-mer when                  its count (counts index)
==================  ==================================  ===============================
``union``           ``n >= 1``                          sum over the selected genomes
``intersection``    ``n == len(genomes)``               minimum over the selected genomes
``difference``      the first genome holds it, no       count in the first genome
                    other selected genome does
``at-least``        ``n >= q``                          sum over the selected genomes
``exactly``         ``n == q``                          sum over the selected genomes
``at-most``         ``1 <= n <= q``                     sum over the selected genomes
==================  ==================================  ===============================

Work runs partition by partition in forked worker processes, a block of slots at a time;
the catalog is written last, in one transaction, and a failure removes ``out``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kmerdb.config import Config
from kmerdb.engine.workers import forked_pool, imap
from kmerdb.errors import DuplicateLabelError, InvalidParameterError
from kmerdb.params import parse_size, resolve_threads
from kmerdb.store.catalog import GenomeRecord
from kmerdb.store.layer import Layer, write_layer
from kmerdb.store.scaffold import new_database

__all__ = ["OPS", "SetOpReport", "setop"]

OPS = ("union", "intersection", "difference", "at-least", "exactly", "at-most")
_QUORUM = ("at-least", "exactly", "at-most")

#: Bytes of (slots x selected genomes) rows a worker holds at a time.
_BLOCK_BYTES = 32 << 20

Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class SetOpReport:
    """What a set operation wrote.

    Attributes
    ----------
    path : str
        The new database.
    op : str
        The operation.
    label : str
        The label of its one genome column.
    genomes : tuple of str
        The source genomes it was computed over, in order.
    n_kmers : int
        Distinct k-mers kept.
    seconds : float
        Wall time.
    """

    path: str
    op: str
    label: str
    genomes: tuple[str, ...]
    n_kmers: int
    seconds: float


_STATE: dict = {}


def _keep_mask(op: str, present: np.ndarray, q: int | None) -> np.ndarray:
    n = present.sum(axis=1)
    if op == "union":
        return n >= 1
    if op == "intersection":
        return n == present.shape[1]
    if op == "difference":
        return present[:, 0] & (n == 1)
    if op == "at-least":
        return n >= q
    if op == "exactly":
        return n == q
    return (n >= 1) & (n <= q)


def _values(op: str, rows: np.ndarray) -> np.ndarray:
    if op == "intersection":
        return rows.min(axis=1)
    if op == "difference":
        return rows[:, 0]
    return rows.sum(axis=1, dtype=np.int64)


def _setop_task(p: int):
    st = _STATE
    cfg: Config = st["config"]
    cols: np.ndarray = st["cols"]
    n_db = st["n_db_genomes"]
    keys_out, vals_out = [], []
    for rec in st["partitions"][p]:
        if rec.n_kmers == 0:
            continue
        layer = Layer(st["root"], rec, st["column_of"])
        kmers = layer.kmers()
        step = max(1024, st["block_bytes"] // (4 * max(1, n_db)))
        for lo in range(0, layer.n, step):
            hi = min(layer.n, lo + step)
            rows = np.zeros((hi - lo, n_db), dtype=np.uint32 if cfg.counts else bool)
            layer.fill_rows(np.arange(lo, hi, dtype=np.int64), rows, cfg.counts)
            rows = rows[:, cols]
            present = rows > 0 if cfg.counts else rows
            keep = _keep_mask(st["op"], present, st["q"])
            if not keep.any():
                continue
            keys_out.append(np.asarray(kmers[lo:hi])[keep])
            if cfg.counts:
                vals_out.append(_values(st["op"], rows[keep].astype(np.int64)))
    keys = np.concatenate(keys_out) if keys_out else np.zeros(0, dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if cfg.counts:
        values = np.concatenate(vals_out)[order] if vals_out else np.zeros(0, dtype=np.int64)
        matrix = values.reshape(-1, 1)
        s = np.sort(values)
        starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]])) if s.size else np.zeros(0, np.intp)
        spectrum = dict(zip(s[starts].tolist(), np.diff(np.append(starts, s.size)).tolist()))
        total = int(values.sum())
    else:
        matrix = np.ones((keys.size, 1), dtype=bool)
        spectrum = {}
        total = int(keys.size)
    record = write_layer(st["out"], p, p, 1, keys, [((0,), matrix)], st["out_config"])
    return p, record, int(keys.size), total, spectrum


def setop(
    source,
    op: str,
    out: str | os.PathLike,
    genomes: Sequence[str] | None = None,
    q: int | None = None,
    label: str | None = None,
    threads: int | None = None,
    max_memory: int | str | None = None,
    progress: Progress | None = None,
) -> SetOpReport:
    """Write the k-mers a set operation selects from ``source`` as a new database.

    Parameters
    ----------
    source : Database or str or PathLike
        An open database, or the path of one.
    op : {"union", "intersection", "difference", "at-least", "exactly", "at-most"}
        The operation; see the module documentation.  ``difference`` keeps the k-mers of
        the first selected genome that no other selected genome holds.
    out : str or PathLike
        Directory of the new database; must not exist.
    genomes : sequence of str, optional
        Labels of the genomes to operate on, in order (default: all, in column order).
    q : int, optional
        Quorum for ``at-least``, ``exactly`` and ``at-most`` (1 <= q; at most the number of
        genomes for ``at-least`` and ``exactly``).
    label : str, optional
        Label of the output's genome column (default: the operation, with ``q``).
    threads : int, optional
        Worker processes (default: all CPUs).
    max_memory : int or str, optional
        Bounds the rows a worker holds at a time.
    progress : callable, optional
        ``progress("setop", partitions done, partitions)``.

    Returns
    -------
    SetOpReport

    Raises
    ------
    InvalidParameterError
        Unknown operation, missing or out-of-range ``q``, no genome selected.
    GenomeNotFoundError, DuplicateLabelError
        A selected label is unknown or given twice.
    DatabaseExistsError
        ``out`` exists (it is left untouched).
    """
    from kmerdb.database import Database, open_database

    t0 = time.perf_counter()
    if op not in OPS:
        raise InvalidParameterError("op", op, f"expected one of {', '.join(OPS)}")
    own = not isinstance(source, Database)
    db = open_database(source) if own else source
    try:
        return _setop(db, op, os.fspath(out), genomes, q, label, threads, max_memory, progress, t0)
    finally:
        if own:
            db.close()


def _setop(db, op, out, genomes, q, label, threads, max_memory, progress, t0) -> SetOpReport:
    selected = tuple(db.genomes) if genomes is None else tuple(genomes)
    if not selected:
        raise InvalidParameterError("genomes", list(selected), "select at least one genome")
    seen = set()
    for g in selected:
        db.genome(g)  # GenomeNotFoundError
        if g in seen:
            raise DuplicateLabelError(g, "select each genome once")
        seen.add(g)
    if op in _QUORUM:
        if q is None or not isinstance(q, (int, np.integer)) or isinstance(q, bool) or q < 1:
            raise InvalidParameterError("q", q, f"'{op}' needs a quorum q >= 1")
        if op != "at-most" and q > len(selected):
            raise InvalidParameterError("q", q, f"only {len(selected)} genome(s) are selected")
        q = int(q)
    elif q is not None:
        raise InvalidParameterError("q", q, f"'{op}' takes no quorum")
    if label is None:
        label = f"{op}-{q}" if op in _QUORUM else op
    if not isinstance(label, str) or not label or label != label.strip() or "\t" in label or "\n" in label:
        raise InvalidParameterError("label", label, "a non-empty label without tabs, newlines or surrounding spaces")
    n_threads = resolve_threads(threads)
    budget = parse_size(max_memory)
    block_bytes = _BLOCK_BYTES if budget is None else max(1 << 20, min(_BLOCK_BYTES, budget // (4 * (n_threads + 1))))
    src_cfg: Config = db.config
    out_config = Config(k=src_cfg.k, m=src_cfg.m, n_partitions=src_cfg.n_partitions, counts=src_cfg.counts)
    column = {lab: i for i, lab in enumerate(db.genomes)}
    snap = db.snapshot
    with new_database(out, out_config, argument="out") as new_db:
        tasks = list(range(src_cfg.n_partitions))
        tasks.sort(key=lambda p: -sum(rec.n_kmers for rec in snap.partitions[p]))
        layers = [None] * src_cfg.n_partitions
        n_kmers = total = 0
        spectrum: dict[int, int] = {}
        with forked_pool(
            n_threads,
            len(tasks),
            _STATE,
            config=src_cfg,
            out_config=out_config,
            root=db.path,
            out=out,
            partitions=snap.partitions,
            column_of={g.id: i for i, g in enumerate(snap.genomes)},
            n_db_genomes=len(snap.genomes),
            cols=np.array([column[g] for g in selected], dtype=np.intp),
            op=op,
            q=q,
            block_bytes=block_bytes,
        ) as pool:
            for done, (p, record, n, tot, spec) in enumerate(imap(pool, _setop_task, tasks), 1):
                layers[p] = record
                n_kmers += n
                total += tot
                for count, how_many in spec.items():
                    spectrum[count] = spectrum.get(count, 0) + how_many
                if progress is not None:
                    progress("setop", done, len(tasks))
        record = GenomeRecord(
            0,
            label,
            tuple(f"{db.path}#{g}" for g in selected),
            n_kmers,
            total,
            tuple((int(c), int(n)) for c, n in sorted(spectrum.items()) if c > 0),
        )
        with new_db.commit() as w:
            w.put_genomes([record])
            for p, layer in enumerate(layers):
                w.put_partition(p, [layer])
            w.put_state("ready", 1, 1, src_cfg.n_partitions)
            w.add_history(
                "setop",
                {"op": op, "q": q, "source": db.path, "genomes": list(selected), "label": label},
                1,
            )
    return SetOpReport(out, op, label, selected, n_kmers, time.perf_counter() - t0)
