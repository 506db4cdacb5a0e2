"""A collection of many small related genomes (some identical), built in every colour
encoding, and its brute-force oracle: shared by the query, database and analytics tests.

More than 32 genomes, so colour-class groups tally by class (the path of large
collections), with clades (classes of middling size), a core genome (classes stored as
complements), private k-mers (small classes), repeats (counts above one) and copies (the
same colour for several genomes).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import oracle

import kmerdb
from kmerdb.config import Config
from kmerdb.store import layer

K = 21
LENGTH = 2400
N_CLADES = 6
PER_CLADE = 8
# (copy, original): genomes whose sequence is another's
COPIES = (("copy_a", "c0_g0"), ("copy_b", "c0_g0"), ("copy_c", "c3_g5"), ("copy_d", "c5_g7"))


def _mutate(seq: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    out = seq.copy()
    at = np.flatnonzero(rng.random(seq.size) < rate)
    out[at] = (out[at] + rng.integers(1, 4, at.size)) % 4
    return out


def write_collection(root: Path) -> dict[str, list[str]]:
    """FASTA files of the collection under ``root``: label -> [path], in column order."""
    rng = np.random.default_rng(11)
    base = rng.integers(0, 4, LENGTH)
    seqs: dict[str, np.ndarray] = {}
    for c in range(N_CLADES):
        clade = _mutate(base, 0.02, rng)
        for g in range(PER_CLADE):
            seq = _mutate(clade, 0.004, rng)
            if g % 3 == 1:  # a repeat: counts of two
                seq = np.concatenate([seq, seq[100:400]])
            if g % 4 == 2:  # a deletion
                seq = np.concatenate([seq[:800], seq[1100:]])
            seqs[f"c{c}_g{g}"] = seq
    for copy, original in COPIES:
        seqs[copy] = seqs[original]
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for label, seq in seqs.items():
        path = root / f"{label}.fa"
        path.write_text(f">{label}\n" + "".join("ACGT"[b] for b in seq.tolist()) + "\n")
        paths[label] = [str(path)]
    return paths


def build(path, genomes, colours: str, **kwargs) -> Path:
    """``kmerdb.build`` with a colour encoding (``Config.colours``)."""
    kwargs.setdefault("k", K)
    kwargs.setdefault("partitions", 4)
    kwargs.setdefault("threads", 1)
    if "colours" in inspect.signature(kmerdb.build).parameters:
        kmerdb.build(path, genomes, colours=colours, **kwargs)
        return Path(path)
    create = Config.create.__func__  # type: ignore[attr-defined]

    def with_colours(cls, *args, **kw):
        return create(cls, *args, **{**kw, "colours": colours})

    with mock.patch.object(Config, "create", classmethod(with_colours)):
        kmerdb.build(path, genomes, **kwargs)
    return Path(path)


def group_kinds(path) -> set[str]:
    """Kinds of the column groups of a database."""
    with kmerdb.open(path) as db:
        return {g.kind for part in db.snapshot.partitions for rec in part for g in rec.groups}


class Collection:
    """The genomes, their oracle sets and databases built from them on demand (cached)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.genomes = write_collection(tmp / "genomes")
        self.labels = tuple(self.genomes)
        self.sets = oracle.genome_sets(self.genomes, K)
        self._dbs: dict[tuple, Path] = {}
        self._edited_labels: tuple[str, ...] = ()

    def db(self, colours: str = "classes", counts: bool = False, **kwargs) -> Path:
        key = (colours, counts, tuple(sorted(kwargs.items())))
        if key not in self._dbs:
            name = "-".join([colours, str(int(counts))] + [f"{k}{v}" for k, v in sorted(kwargs.items())])
            self._dbs[key] = build(self.tmp / f"{name}.kmerdb", self.genomes, colours, counts=counts, **kwargs)
        return self._dbs[key]

    def edited(self, colours: str = "classes", counts: bool = False, appended: str | None = None) -> tuple[Path, tuple[str, ...]]:
        """A database built from most genomes, then appended the rest (in two operations) and
        two genomes removed (one built, one appended): (path, its labels in column order).

        ``appended``: the colour encoding of the appended groups (default: the index's).
        """
        key = ("edited", colours, counts, appended)
        if key not in self._dbs:
            labels = list(self.labels)
            first, second, third = labels[:40], labels[40:48], labels[48:]
            path = build(
                self.tmp / f"edited-{colours}-{int(counts)}-{appended}.kmerdb",
                {label: self.genomes[label] for label in first},
                colours,
                counts=counts,
            )
            choose = layer.choose_encoding
            family = appended or colours

            def chosen(config, rows, slots, placement=None):
                return choose(dataclasses.replace(config, colours=family), rows, slots, placement)

            with kmerdb.open(path, "a") as db, mock.patch.object(layer, "choose_encoding", chosen):
                with db.transaction():
                    db.append_genomes({label: self.genomes[label] for label in second}, threads=1)
                with db.transaction():
                    db.append_genomes({label: self.genomes[label] for label in third}, threads=1)
                with db.transaction():
                    db.remove_genome([first[3], second[2]])
            self._dbs[key] = path
            self._edited_labels = tuple(x for x in labels if x not in (first[3], second[2]))
        return self._dbs[key], self._edited_labels

    def reads(self, n: int = 40, length: int = 120, seed: int = 3) -> list[str]:
        """Substrings of the genomes (some with an N or a random stretch), and random sequences."""
        rng = np.random.default_rng(seed)
        out = []
        for i in range(n):
            label = self.labels[int(rng.integers(len(self.labels)))]
            seq = oracle.read_sequences(self.genomes[label][0])[0][1]
            at = int(rng.integers(0, len(seq) - length))
            read = seq[at : at + length]
            if i % 5 == 1:
                read = read[:50] + "N" + read[51:]
            if i % 7 == 3:
                read = read[:60] + "".join("ACGT"[b] for b in rng.integers(0, 4, 40)) + read[100:]
            out.append(read)
        out += ["".join("ACGT"[b] for b in rng.integers(0, 4, length)) for _ in range(3)]
        out += ["", "ACGT"]
        return out

    def hits(self, reads: list[str], labels=None) -> tuple[np.ndarray, np.ndarray]:
        """(hits, n_kmers) by the oracle, columns in ``labels`` order."""
        labels = labels or self.labels
        sets = {label: self.sets[label] for label in labels}
        rows, n_kmers = [], []
        for read in reads:
            h, n = oracle.query_hits(read, sets, K)
            rows.append([h[label] for label in labels])
            n_kmers.append(n)
        return np.array(rows, dtype=np.int64).reshape(len(reads), len(labels)), np.array(n_kmers, dtype=np.int64)


_COLLECTION: list[Collection] = []


def collection(tmp_path_factory) -> Collection:
    """The collection (written and its oracle computed once per process): test modules
    wrap it in a session fixture."""
    if not _COLLECTION:
        _COLLECTION.append(Collection(tmp_path_factory.mktemp("many")))
    return _COLLECTION[0]


def oracle_matrix(sets: dict[str, dict[str, int]], labels, fn: Callable[[dict, dict], float]) -> np.ndarray:
    """``fn(set_a, set_b)`` for every pair of genomes, as a matrix."""
    return np.array([[fn(sets[a], sets[b]) for b in labels] for a in labels], dtype=np.float64)
