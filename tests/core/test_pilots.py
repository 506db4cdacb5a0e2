"""Tests of the pilot minimal perfect hash function (kmerdb.core.pilots)."""

from __future__ import annotations

import numpy as np
import pytest

from kmerdb.core import bits, kernels
from kmerdb.core.pilots import HEADER_WORDS, PilotMPHF
from kmerdb.errors import CorruptDatabaseError, InvalidParameterError

from .test_mphf import random_keys


def assert_minimal_perfect(mphf: PilotMPHF, keys: np.ndarray) -> np.ndarray:
    """Every key its own slot, and the slots exactly 0..n-1 (the oracle: a sort)."""
    slots = mphf.lookup(keys)
    assert slots.dtype == np.int64 and slots.size == keys.size == mphf.n == len(mphf)
    np.testing.assert_array_equal(np.sort(slots), np.arange(keys.size))
    return slots


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 16, 17, 64, 65, 1000, 4099, 100_000])
def test_minimal_perfect(n):
    keys = random_keys(n, seed=n)
    mphf, slots = PilotMPHF.build_with_slots(keys)
    np.testing.assert_array_equal(assert_minimal_perfect(mphf, keys), slots)


def test_empty_function_maps_every_key_to_minus_one():
    mphf = PilotMPHF.build(np.zeros(0, dtype=np.uint64))
    assert mphf.n == 0 and mphf.lookup(np.zeros(0, dtype=np.uint64)).size == 0
    np.testing.assert_array_equal(mphf.lookup(np.arange(5, dtype=np.uint64)), -1)


@pytest.mark.parametrize(
    "keys",
    [
        np.arange(50_000, dtype=np.uint64),  # consecutive
        np.arange(50_000, dtype=np.uint64) << np.uint64(40),  # only high bits differ
        np.array([0, 2**64 - 1, 2**63, 1], dtype=np.uint64),  # extremes
    ],
    ids=["consecutive", "high bits", "extremes"],
)
def test_adversarial_keys(keys):
    assert_minimal_perfect(PilotMPHF.build(keys), keys)


def test_strangers_map_into_range_and_single_lookups_agree():
    keys = random_keys(20_000, seed=3)
    mphf = PilotMPHF.build(keys)
    others = random_keys(20_000, seed=4, high=2**64 - 1)
    slots = mphf.lookup(others)
    assert slots.min() >= 0 and slots.max() < keys.size
    arr, plan = mphf.lookup_arrays()
    for x in np.concatenate([keys[:50], others[:50]]):
        assert kernels.pilot_slot(arr, plan, x) == mphf.lookup(np.array([x], dtype=np.uint64))[0]


def test_seed_and_determinism():
    keys = random_keys(5000, seed=5)
    a, b, c = PilotMPHF.build(keys), PilotMPHF.build(keys), PilotMPHF.build(keys, seed=7)
    np.testing.assert_array_equal(a.to_array(), b.to_array())
    assert c.seed == 7 and not np.array_equal(a.lookup(keys), c.lookup(keys))
    assert_minimal_perfect(c, keys)


def test_size_is_about_three_and_a_half_bits_per_key():
    keys = random_keys(200_000, seed=6)
    mphf = PilotMPHF.build(keys)
    assert 2.5 < mphf.bits_per_key() < 4.5
    assert mphf.nbytes == mphf.to_array().nbytes


@pytest.mark.parametrize(
    "keys",
    [np.array([5, 9, 5], dtype=np.uint64), np.repeat(random_keys(300, seed=8), 2)],
    ids=["one pair", "all twice"],
)
def test_duplicate_keys_are_rejected(keys):
    with pytest.raises(InvalidParameterError, match="repeated"):
        PilotMPHF.build(keys)


@pytest.mark.parametrize(
    "keys, seed",
    [(np.array([-1, 2]), 0), (np.zeros((2, 2), dtype=np.uint64), 0), (np.array([1.5]), 0),
     (np.arange(3, dtype=np.uint64), -1), (np.arange(3, dtype=np.uint64), 2**64), (np.arange(3, dtype=np.uint64), True)],
)
def test_invalid_arguments(keys, seed):
    with pytest.raises(InvalidParameterError):
        PilotMPHF.build(keys, seed=seed)


def test_round_trip_through_memmap(tmp_path):
    keys = random_keys(30_000, seed=9)
    mphf, slots = PilotMPHF.build_with_slots(keys)
    np.save(tmp_path / "p.npy", mphf.to_array())
    loaded = PilotMPHF.from_array(np.load(tmp_path / "p.npy", mmap_mode="r"), source="p.npy")
    np.testing.assert_array_equal(loaded.lookup(keys), slots)


@pytest.fixture(scope="module")
def small_array():
    return PilotMPHF.build(random_keys(3000, seed=10)).to_array()


def edited(array: np.ndarray, changes: dict[int, int]) -> np.ndarray:
    out = array.copy()
    for at, value in changes.items():
        out[at] = value
    return out


def with_free_slot(array: np.ndarray, value: int) -> np.ndarray:
    """The array with its first free slot set to ``value``."""
    head = [int(x) for x in array[:HEADER_WORDS]]
    n, n_buckets, size, width, free_width = head[2], head[4], head[7], head[8], head[9]
    free_at = HEADER_WORDS + bits.n_words(n_buckets, width)
    free = bits.unpack(array[free_at:], size - n, free_width)
    free[0] = value
    out = array.copy()
    packed = bits.pack(free, free_width)
    out[free_at : free_at + packed.size] = packed
    return out


@pytest.mark.parametrize(
    "make_bad",
    [
        lambda a: edited(a, {0: 1}),  # magic
        lambda a: edited(a, {1: 99}),  # version
        lambda a: a[:-1].copy(),  # truncated
        lambda a: edited(a, {2: int(a[2]) + 5}),  # n beyond the table
        lambda a: edited(a, {4: 0}),  # keys but no bucket
        lambda a: edited(a, {5: int(a[4]) + 1}),  # more dense buckets than buckets
        lambda a: edited(a, {7: 2**32}),  # table past 32 bits
        lambda a: edited(a, {8: 0}),  # pilot width 0
        lambda a: edited(a, {9: 65}),  # free width past a word
        lambda a: edited(a, {10: 11}),  # pilots out of place
        lambda a: with_free_slot(a, 3000),  # a free slot at n: past the caller's table
        lambda a: a.astype(">u8"),  # big-endian
    ],
)
def test_corrupt_array_is_rejected(small_array, make_bad):
    with pytest.raises(CorruptDatabaseError):
        PilotMPHF.from_array(make_bad(small_array), source="bad.npy")
