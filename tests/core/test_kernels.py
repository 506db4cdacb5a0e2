"""The compiled kernels that no other module's tests reach whole: grouping keys by partition,
finding the class of the run of unitig orders and counting (sequence, byte) pairs, each against
plain numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kmerdb.core import bits, kernels


@pytest.mark.parametrize("n_parts", [1, 3, 7, 64, 100])
def test_partition_scatter_is_a_stable_grouping(n_parts):
    rng = np.random.default_rng(n_parts)
    n = 5_000
    hashes = np.repeat(rng.integers(0, 2**64 - 1, n // 5, dtype=np.uint64, endpoint=True), 5)
    kmers, others = rng.integers(0, 2**64 - 1, (2, n), dtype=np.uint64, endpoint=True)
    marks = rng.integers(0, 256, n).astype(np.uint8)
    part = (hashes % np.uint64(n_parts)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    # ascending positions with gaps, in sequences (the first at 0) some of which hold none
    positions = np.cumsum(rng.integers(1, 4, n))
    starts = np.unique(np.concatenate([rng.choice(positions[-1] + 5, 300, replace=False), [0, 3, 4, 5]]))
    seq_of = np.searchsorted(starts, positions, side="right") - 1
    for tagged in (True, False):  # each key's sequence, or its index
        out, out_marks = np.empty((4, n), dtype=np.uint64), np.empty_like(marks)
        bounds = np.empty(n_parts + 1, dtype=np.int64)
        per_seq = np.zeros(starts.size if tagged else 0, dtype=np.int64)
        kernels.partition_scatter(
            hashes, n_parts, kmers, others, positions if tagged else np.zeros(0, np.int64),
            starts if tagged else np.zeros(0, np.int64), marks, out, out_marks, bounds, np.empty(n_parts, np.int64),
            per_seq,
        )
        want_tags = seq_of if tagged else np.arange(n)
        assert np.array_equal(out, np.stack([kmers, others, hashes, want_tags.astype(np.uint64)])[:, order])
        assert np.array_equal(out_marks, marks[order])
        assert np.array_equal(bounds, np.concatenate([[0], np.cumsum(np.bincount(part, minlength=n_parts))]))
        if tagged:
            assert np.array_equal(per_seq, np.bincount(seq_of, minlength=starts.size))


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_run_classes_equal_a_binary_search(dtype):
    """Runs found from the previous one, by the rank of the run starts or by a search of the
    bounds equal numpy's search of the bounds, and give their classes; a run naming a class
    out of range is reported."""
    rng = np.random.default_rng(2)
    n = 10_000
    for n_runs in (1, 2, 700, 3_000, n):  # one run .. a run per order
        inner = np.sort(rng.choice(np.arange(1, n), size=n_runs - 1, replace=False))
        bounds = np.concatenate([[0], inner, [n]]).astype(dtype)
        n_classes = 300
        classes = rng.integers(0, n_classes, bounds.size - 1).astype(np.uint64)
        width = bits.width_for(n_classes - 1)
        runs = bits.pack(classes, width)
        values = (rng.integers(0, 8, n_classes) << 5).astype(np.uint8)  # each class's byte, 3 genomes
        walks = [
            rng.integers(0, n, 3_000),  # anywhere
            np.arange(n),  # along the unitigs
            np.arange(n)[::-1],  # against them
            np.concatenate([np.arange(40, 400), np.arange(9_000, 8_000, -1), [0, n - 1, 0]]),
        ]
        ranked = bits.rank_index(bounds[:-1], n)
        for short, at in itertools.product((False, True), walks):
            # short runs: the rank index; long ones: the previous run, then the bounds searched
            index, rank_at = ranked if short else (np.zeros(0, dtype=np.uint64), 0)
            at = np.ascontiguousarray(at, dtype=np.int64)
            out = np.empty(at.size, dtype=np.int64)
            assert kernels.run_classes(bounds, index, rank_at, at, runs, width, n_classes, out, short) == kernels.OK
            want = np.searchsorted(bounds, at.astype(dtype), side="right") - 1
            assert np.array_equal(out, classes[want].astype(np.int64))
            # the same classes' bytes, tallied per (sequence, byte) in the same pass
            bw = 3
            seqs = np.sort(rng.integers(0, 50, at.size)).astype(np.int64)
            table = rng.integers(0, 5, 50 << bw).astype(np.int64)
            wanted = table + np.bincount((seqs << bw) | (values[out] >> (8 - bw)), minlength=50 << bw)
            status = kernels.run_byte_tally(bounds, index, rank_at, at, runs, width, n_classes, values, seqs, bw, table, short)
            assert status == kernels.OK and np.array_equal(table, wanted)
    # a run beyond the table's classes
    at = np.arange(n, dtype=np.int64)
    top = int(classes.max())
    status = kernels.run_classes(bounds, index, rank_at, at, runs, width, top, np.empty(n, dtype=np.int64), True)
    assert status == kernels.CORRUPT_CLASSES
    table = np.zeros(1 << 3, dtype=np.int64)
    status = kernels.run_byte_tally(bounds, index, rank_at, at, runs, width, top, values, np.zeros(n, np.int64), 3, table, True)
    assert status == kernels.CORRUPT_CLASSES


def test_rank_index_counts_the_positions_before_each_bit():
    """The rank index of a set of positions gives, at every bit, the positions before it."""
    rng = np.random.default_rng(3)
    for n in (1, 63, 64, 65, 1_000, 5_000, 70_000):
        for share in (0.0, 0.01, 0.5, 1.0):
            positions = np.flatnonzero(rng.random(n) < share)
            index, rank_at = bits.rank_index(positions, n)
            before = np.concatenate([[0], np.cumsum(np.isin(np.arange(n), positions))])
            probe = np.unique(np.concatenate([rng.integers(0, n + 1, 300), [0, n]]))
            got = [kernels.rank(index, 0, rank_at, np.uint64(g)) for g in probe]
            assert got == before[probe].tolist()


def test_field_select_equals_field_and_unpack():
    """The branchless field reads what field and bits.unpack read, at any width and bit,
    the fields that end in the last word (read with no word after it) included."""
    rng = np.random.default_rng(4)
    for width in (1, 2, 7, 10, 31, 32, 33, 63, 64):
        n = int(rng.integers(1, 400))
        values = rng.integers(0, 2**width, n, dtype=np.uint64, endpoint=False) if width < 64 else rng.integers(
            0, 2**64 - 1, n, dtype=np.uint64, endpoint=True
        )
        packed = bits.pack(values, width)
        tight = packed[: -(-n * width // 64)]  # no padding word: the last field ends in the last word
        for words in (packed, tight):
            got = [kernels.field_select(words, 0, np.uint64(i * width), width) for i in range(n)]
            assert got == values.tolist()
            assert got == [kernels.field(packed, 0, np.uint64(i * width), width) for i in range(n)]


@pytest.mark.parametrize("width", [1, 3, 8])
def test_byte_tally_counts_sequence_byte_pairs(width):
    """Each (sequence, top ``width`` bits of the byte) pair counted once per position, added
    to what the table held."""
    rng = np.random.default_rng(width)
    n_seqs, n = 37, 4_000
    seqs = np.sort(rng.integers(0, n_seqs, n)).astype(np.int64)
    values = (rng.integers(0, 1 << width, n) << (8 - width)).astype(np.uint8)
    table = rng.integers(0, 5, n_seqs << width).astype(np.int64)
    want = table + np.bincount((seqs << width) | (values >> (8 - width)), minlength=n_seqs << width)
    kernels.byte_tally(seqs, values, width, table)
    assert np.array_equal(table, want)


def test_sweep_reads_a_word_of_every_line():
    """The sum of the first word of every 64 bytes of each array (uint64, wrapping)."""
    rng = np.random.default_rng(4)
    arrays = [rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True) for n in (0, 1, 7, 8, 9, 1001)]
    want = sum(int(x[::8].sum(dtype=np.uint64)) for x in arrays[:5]) % 2**64
    assert int(kernels.sweep(*arrays[:5])) == want
    assert int(kernels.sweep(*arrays[1:])) == sum(int(x[::8].sum(dtype=np.uint64)) for x in arrays[1:]) % 2**64


def test_a_sweep_pays_from_a_share_of_the_items():
    """Lookups of at least 1/SWEEP_SHARE as many keys as items sweep; fewer do not."""
    n = 64 * kernels.SWEEP_SHARE
    assert kernels.sweep_pays(64, n) and kernels.sweep_pays(65, n)
    assert not kernels.sweep_pays(63, n) and not kernels.sweep_pays(0, n)
    assert kernels.sweep_pays(0, 0)


@pytest.mark.parametrize("n_keys, entry_bits", [(1, 0), (5000, 12), (40_000, 18), (40_000, 0)])
def test_pair_rows_equal_a_binary_search(n_keys, entry_bits):
    """Each genome's distinct k-mers found among the sorted keys, over many blocks of keys,
    genomes with none, keys bunched at small values (as canonical k-mers are), one key."""
    rng = np.random.default_rng(n_keys + entry_bits)
    keys = np.unique(np.concatenate([
        rng.integers(0, 2**62, n_keys, dtype=np.uint64),
        rng.integers(0, 2**40, n_keys // 2 + 1, dtype=np.uint64),  # a crowd under the first entry
        np.array([0, 2**62 - 1], dtype=np.uint64),
    ]))[: max(n_keys, 1)]
    n_genomes = 23
    chosen = [np.sort(rng.choice(keys, size=int(rng.integers(0, keys.size + 1)), replace=False)) for _ in range(n_genomes)]
    chosen[3] = keys[:0]
    chosen[7] = keys.copy()
    values = np.concatenate(chosen)
    offsets = np.cumsum([0] + [c.size for c in chosen]).astype(np.int64)
    # a directory of 2**entry_bits entries by the top bits (one entry: every search walks from 0)
    entry_bits = min(entry_bits, int(keys[-1]).bit_length())
    shift = int(keys[-1]).bit_length() - entry_bits
    directory = np.append(np.searchsorted(keys, np.arange(1 << entry_bits, dtype=np.uint64) << np.uint64(shift)), keys.size)
    for dtype in (np.int32, np.int64):
        rows = np.full(values.size, -1, dtype=dtype)
        kernels.pair_rows(keys, values, offsets, directory.astype(np.int64), shift, np.empty(n_genomes, np.int64), rows)
        np.testing.assert_array_equal(rows, np.searchsorted(keys, values))


def test_pair_columns_lay_pairs_out_by_row():
    """Pairs of genomes in order go to their row's next place: columns ascending in each row,
    values with them (against a sort of the pairs by row, then genome)."""
    rng = np.random.default_rng(8)
    n_rows, n_genomes = 300, 40
    per = [np.sort(rng.choice(n_rows, size=int(rng.integers(0, n_rows)), replace=False)) for _ in range(n_genomes)]
    rows = np.concatenate(per).astype(np.int32)
    offsets = np.cumsum([0] + [p.size for p in per]).astype(np.int64)
    genome = np.repeat(np.arange(n_genomes), [p.size for p in per])
    counts = rng.integers(1, 1000, rows.size).astype(np.uint32)
    indptr = np.append(0, np.cumsum(np.bincount(rows, minlength=n_rows)))
    columns = np.empty(rows.size, np.int32)
    values = np.empty(rows.size, np.uint32)
    kernels.pair_columns(rows, offsets, indptr[:-1].astype(np.int32), columns, counts, values)
    order = np.lexsort((genome, rows))
    np.testing.assert_array_equal(columns, genome[order])
    np.testing.assert_array_equal(values, counts[order])
    presence = np.empty(rows.size, np.int32)
    kernels.pair_columns(rows, offsets, indptr[:-1].astype(np.int64), presence, counts, values[:0])
    np.testing.assert_array_equal(presence, genome[order])


@pytest.mark.parametrize("k", [1, 2, 7, 15, 31, 32])
def test_kmer_reverse_complement_equals_the_strings(k):
    """One code's reverse complement against the letters reversed and complemented."""
    rng = np.random.default_rng(k)
    top = (1 << (2 * k)) - 1
    codes = [0, top, *rng.integers(0, top, size=200, endpoint=True, dtype=np.uint64).tolist()]
    flip = {"A": "T", "C": "G", "G": "C", "T": "A"}
    for x in codes:
        letters = "".join("ACGT"[(x >> (2 * (k - 1 - i))) & 3] for i in range(k))
        want = 0
        for base in reversed(letters):
            want = (want << 2) | "ACGT".index(flip[base])
        assert int(kernels.kmer_reverse_complement(np.uint64(x), k)) == want
