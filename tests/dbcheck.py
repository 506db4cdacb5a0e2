"""Checks shared by the tests of merge, append, remove, compact and crash safety.

Answers are compared with the brute-force oracle (``oracle.genome_sets``): every k-mer of
every fixture genome, plus k-mers that no genome holds, looked up one by one.
"""

from __future__ import annotations

import numpy as np
import oracle

import kmerdb


def universe(sets: dict[str, dict[str, int]], k: int, extra: int = 200) -> tuple[list[str], np.ndarray]:
    """All k-mers of the oracle sets (sorted) plus ``extra`` random k-mers: (strings, codes)."""
    kmers = sorted(set().union(*[set(s) for s in sets.values()]))
    rng = np.random.default_rng(7)
    absent = ["".join("ACGT"[b] for b in rng.integers(0, 4, k)) for _ in range(extra)]
    kmers = kmers + [oracle.canonical(a) for a in absent]
    codes = np.array([oracle.encode(x) for x in kmers], dtype=np.uint64)
    return kmers, codes


_EXPECTED: dict = {}


def expected(sets: dict[str, dict[str, int]], labels, kmers: list[str]) -> np.ndarray:
    """(len(kmers), len(labels)) counts by the oracle (cached per genome)."""
    columns = []
    for label in labels:
        key = (id(sets), label, id(kmers))
        if key not in _EXPECTED:
            _EXPECTED[key] = (sets, kmers, np.array([sets[label].get(x, 0) for x in kmers], dtype=np.int64))
        columns.append(_EXPECTED[key][2])
    return np.stack(columns, axis=1) if columns else np.zeros((len(kmers), 0), dtype=np.int64)


def answers(path, codes: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, np.ndarray | None]:
    """(labels, presence, counts or None) of a database for k-mer codes."""
    with kmerdb.open(path) as db:
        presence = db.lookup(codes)
        counts = db.lookup(codes, counts=True) if db.config.counts else None
        return db.genomes, presence, counts


def assert_matches_oracle(path, sets, labels, kmers, codes, source_of=None) -> None:
    """The database answers every lookup as the oracle does (labels in this order).

    ``source_of`` maps a database label to the oracle label it holds (default: the same).
    """
    source_of = source_of or {}
    got_labels, presence, counts = answers(path, codes)
    assert got_labels == tuple(labels)
    want = expected(sets, [source_of.get(label, label) for label in labels], kmers)
    assert np.array_equal(presence, want > 0)
    if counts is not None:
        assert np.array_equal(counts.astype(np.int64), want)


def dump(path) -> tuple:
    """Everything a database answers: labels, sorted k-mers with their rows, genome statistics."""
    with kmerdb.open(path) as db:
        blocks = list(db.iter_rows())
        keys = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(0, np.uint64)
        rows = (
            np.concatenate([b[1] for b in blocks])
            if blocks
            else np.zeros((0, len(db.genomes)), np.uint32 if db.config.counts else bool)
        )
        present = rows.any(axis=1)  # k-mers no genome holds (after a removal) are not answers
        keys, rows = keys[present], rows[present]
        order = np.argsort(keys)
        stats = tuple((g.label, g.n_kmers, g.total, g.spectrum) for g in db.genome_records)
        return db.genomes, keys[order], rows[order], stats


def assert_same_answers(a, b, stats: bool = True) -> None:
    da, db_ = dump(a), dump(b)
    assert da[0] == db_[0]
    assert np.array_equal(da[1], db_[1])
    assert np.array_equal(da[2], db_[2])
    if stats:
        assert da[3] == db_[3]


def reseal(txn) -> None:
    """Recompute the catalog's ``checksums`` record inside an open LMDB write transaction.

    Tests that craft a catalog record to exercise a check deeper than the checksums (a value
    out of bounds, a path out of the database) call it after their edit, as a forger who
    knows the format would.
    """
    import msgpack

    from kmerdb.store.catalog import CHECKSUMS_KEY, _digest

    with txn.cursor() as cur:
        sums = {bytes(k): _digest(bytes(v)) for k, v in cur if bytes(k) != CHECKSUMS_KEY}
    txn.put(CHECKSUMS_KEY, msgpack.packb(sums, use_bin_type=True))


def named_files(path) -> set[str]:
    """Every data file the catalog names, in the current and the recorded older generations."""
    from kmerdb.store.catalog import Catalog

    with kmerdb.open(path) as db:
        named = {ref.path for ref in db.snapshot.all_files()}
    cat = Catalog.open(str(path))
    try:
        for files in cat.generations().values():
            named.update(files)
    finally:
        cat.close()
    return named
