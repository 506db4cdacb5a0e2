"""Spill buckets: packing round trip and checked read-back."""

import os

import numpy as np
import pytest

from kmerdb.core import kmers as K
from kmerdb.errors import BuildIntegrityError
from kmerdb.ops.spill import BucketSet, SpillPool, pack_superkmers, read_bucket, spill_folder, superkmer_kmers


def _superkmers(seed, k=15, m=7, parts=3, n=4000):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, n).astype(np.uint8)
    codes[rng.integers(0, n, 20)] = K.INVALID
    starts, counts, part = K.superkmers(codes, k, m, parts)
    return codes, starts, counts, part


def test_pack_and_extract_round_trip():
    k = 15
    codes, starts, counts, _ = _superkmers(1, k=k)
    lengths, packed = pack_superkmers(codes, starts, counts, k)
    kmers = superkmer_kmers(lengths.astype(np.int64), packed, k)
    _, expected, _ = K.sequence_kmers(codes, k)
    assert np.array_equal(np.sort(kmers), np.sort(expected))
    # super-k-mer after super-k-mer, each one's k-mers in order along the sequence
    in_order = [K.canonical(K.kmer_windows(codes[s : s + c + k - 1], k), k) for s, c in zip(starts, counts)]
    assert np.array_equal(kmers, np.concatenate(in_order))


def test_buckets_flush_and_read_back(tmp_path):
    k, parts = 15, 3
    codes, starts, counts, part = _superkmers(2, k=k, parts=parts)
    pool = SpillPool(str(tmp_path), n_files=2)
    # a tiny buffer forces many flushes across the pool files
    buckets = BucketSet(parts, k, pool, buffer_bytes=1)
    for i in range(0, starts.size, 50):
        sl = slice(i, i + 50)
        for p in range(parts):
            sel = part[sl] == p
            lengths, packed = pack_superkmers(codes, starts[sl][sel], counts[sl][sel], k)
            buckets.add(p, i % 2, lengths, packed)
    buckets.flush_all()
    pool.close()
    assert sum(len(e) for e in buckets.extents) > parts
    total = []
    for p in range(parts):
        genomes, n_kmers, packed = read_bucket(
            str(tmp_path), buckets.extents[p], k, int(buckets.records_in[p]), int(buckets.bytes_in[p])
        )
        kmers = superkmer_kmers(n_kmers, packed, k)
        total.append(kmers)
        assert set(np.unique(genomes)) <= {0, 1}
    _, expected, _ = K.sequence_kmers(codes, k)
    assert np.array_equal(np.sort(np.concatenate(total)), np.sort(expected))
    # the pool's files are named files of the spill folder, read back by path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(pool.names)


def test_spill_folder_is_removed_on_success_and_failure(tmp_path):
    with spill_folder(str(tmp_path)) as folder:
        SpillPool(folder, 2).close()
        assert len(os.listdir(folder)) == 2
    assert not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError), spill_folder(str(tmp_path)) as folder:
        SpillPool(folder, 1).close()
        raise RuntimeError("a task failed")
    assert not list(tmp_path.iterdir())


def test_a_discarded_pool_leaves_no_file(tmp_path):
    pool = SpillPool(str(tmp_path), 2)
    pool.write(b"abc")
    pool.discard()
    assert not list(tmp_path.iterdir())


def test_damaged_extent_is_detected(tmp_path):
    k = 15
    codes, starts, counts, _ = _superkmers(3, k=k, parts=1)
    pool = SpillPool(str(tmp_path), n_files=1)
    buckets = BucketSet(1, k, pool, buffer_bytes=1 << 20)
    lengths, packed = pack_superkmers(codes, starts, counts, k)
    buckets.add(0, 0, lengths, packed)
    buckets.flush_all()
    pool.close()
    ext = buckets.extents[0][0]
    with open(pool.path(ext.file), "r+b") as fh:
        fh.seek(ext.offset + 10)
        fh.write(b"\xff\xff")
    with pytest.raises(BuildIntegrityError):
        read_bucket(str(tmp_path), buckets.extents[0], k, int(buckets.records_in[0]), int(buckets.bytes_in[0]))
    # a count mismatch (records lost) is detected too
    with pytest.raises(BuildIntegrityError):
        read_bucket(str(tmp_path), [], k, int(buckets.records_in[0]), int(buckets.bytes_in[0]))
    # and a spill file gone missing
    os.unlink(pool.path(ext.file))
    with pytest.raises(BuildIntegrityError, match="missing"):
        read_bucket(str(tmp_path), buckets.extents[0], k, int(buckets.records_in[0]), int(buckets.bytes_in[0]))


def test_superkmer_kmers_refuse_too_few_bytes():
    """Lengths that claim more bases than the packed bytes hold: an integrity error, no read
    past the bytes."""
    codes = np.random.default_rng(4).integers(0, 4, 200).astype(np.uint8)
    lengths, packed = pack_superkmers(codes, np.array([0, 60]), np.array([40, 100]), 21)
    with pytest.raises(BuildIntegrityError):
        superkmer_kmers(lengths.astype(np.int64), packed[:-1], 21)
