"""Column encodings: packed presence bits, smallest saturating count widths, the registry."""

import numpy as np
import pytest

from kmerdb.config import Config
from kmerdb.core.colours import SparseRows
from kmerdb.errors import CorruptDatabaseError
from kmerdb.store.encodings import (
    ColumnEncoding,
    DenseCounts,
    PresenceBits,
    count_dtype,
    encoding_for,
    encoding_for_config,
    encodings,
    pack_presence,
    to_counts,
    unpack_presence,
)

from .groups import encoded_group


def test_presence_round_trip_for_many_widths():
    rng = np.random.default_rng(0)
    for g in (1, 7, 8, 9, 64, 100):
        m = rng.random((50, g)) < 0.5
        packed = pack_presence(m)
        assert packed.shape == (50, (g + 7) // 8) and packed.dtype == np.uint8
        assert np.array_equal(unpack_presence(packed, g), m)


def test_count_widths_and_saturation():
    assert count_dtype(0) == np.uint8 and count_dtype(255) == np.uint8
    assert count_dtype(256) == np.uint16 and count_dtype(65536) == np.uint32
    assert to_counts(np.array([[1, 2]])).dtype == np.uint8
    big = to_counts(np.array([[2**40, 3]], dtype=np.int64))
    assert big.dtype == np.uint32 and big[0, 0] == 2**32 - 1 and big[0, 1] == 3


# -- every registered encoding against brute force ----------------------------------------------
def group_case(kind: str, n: int = 300, g: int = 19, seed: int = 1):
    """A group of ``g`` genomes over ``n`` k-mers in key order, a slot permutation, and the
    database's columns: genome ids 0..g-1 with ids 3 and 11 removed, the rest in reverse."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, size=(n, g)) * (rng.random((n, g)) < 0.6)
    counts[:5, 0] = 70000  # wider than uint16: stored as uint32
    matrix = counts if encoding_for(kind).keeps_counts else counts > 0
    slots = rng.permutation(n)
    ids = tuple(range(100, 100 + g))
    alive = [i for i in range(g) if i not in (3, 11)]
    column_of = {ids[i]: c for c, i in enumerate(reversed(alive))}
    by_slot = np.empty_like(counts)
    by_slot[slots] = counts
    return matrix, slots, ids, column_of, by_slot


@pytest.mark.parametrize("kind", sorted(encodings()))
def test_every_encoding_reads_back_what_it_wrote(kind):
    cls = encoding_for(kind)
    assert issubclass(cls, ColumnEncoding) and cls.kind == kind
    matrix, slots, ids, column_of, by_slot = group_case(kind)
    group = encoded_group(cls, SparseRows.from_dense(matrix), slots, ids, column_of)
    n_db = len(column_of)
    expect = np.zeros((by_slot.shape[0], n_db), dtype=np.int64)  # brute force, database order
    for i, gid in enumerate(ids):
        if gid in column_of:
            expect[:, column_of[gid]] = by_slot[:, i]
    if not cls.keeps_counts:
        expect = (expect > 0).astype(np.int64)
    probe = np.array([7, 0, 299, 7, 150], dtype=np.int64)
    # fill: presence, and counts where kept
    out = np.zeros((probe.size, n_db), dtype=bool)
    group.fill(probe, out, False)
    assert np.array_equal(out, expect[probe] > 0)
    out = np.zeros((probe.size, n_db), dtype=np.int64)
    group.fill(probe, out, True)
    assert np.array_equal(out, expect[probe])
    # presence bytes: 8 genomes of the group to a byte, -1 for a removed genome
    seen = np.zeros((probe.size, n_db), dtype=bool)
    for cols, values in group.presence_bytes(probe):
        bits = np.unpackbits(values[:, None], axis=1).view(bool)[:, : cols.size]
        for j, c in enumerate(cols.tolist()):
            if c >= 0:
                seen[:, c] = bits[:, j]
    assert np.array_equal(seen, expect[probe] > 0)
    # class blocks in both layouts, over the kept genomes in ``cols`` order
    lo, hi = 10, 250
    raw, dtype = group.class_block(lo, hi, False)
    assert dtype is None
    assert np.array_equal(unpack_presence(raw, group.cols.size), expect[lo:hi][:, group.cols] > 0)
    raw, dtype = group.class_block(lo, hi, True)
    assert np.array_equal(np.ascontiguousarray(raw).view(dtype), expect[lo:hi][:, group.cols])
    # tallies and count values
    distinct, total = group.tally(lo, hi)
    assert distinct.tolist() == np.count_nonzero(expect[lo:hi][:, group.cols], axis=0).tolist()
    assert total.tolist() == expect[lo:hi][:, group.cols].sum(axis=0).tolist()
    values = group.count_values(lo, hi)
    assert (values is None) == (not cls.keeps_counts)
    if values is not None:
        assert np.array_equal(values, expect[lo:hi][:, group.cols])


def test_registry_names_and_defaults():
    assert encoding_for("presence") is PresenceBits and encoding_for("counts") is DenseCounts
    base = Config.create(k=21, partitions=4)
    assert encoding_for_config(base) is PresenceBits
    assert encoding_for_config(Config.create(k=21, partitions=4, counts=True)) is DenseCounts
    with pytest.raises(CorruptDatabaseError, match="colours"):
        encoding_for("colours")


def test_a_group_that_is_not_its_kind_is_corrupt():
    with pytest.raises(CorruptDatabaseError):
        PresenceBits(np.zeros((4, 3), dtype=np.uint8), (1, 2), {1: 0, 2: 1}, "x")  # 2 genomes: 1 byte
    with pytest.raises(CorruptDatabaseError):
        DenseCounts(np.zeros((4, 2), dtype=np.int64), (1, 2), {1: 0, 2: 1}, "x")
