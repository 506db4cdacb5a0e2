"""Tests of the minimal perfect hash function (kmerdb.mphf)."""

from __future__ import annotations

import numpy as np
import pytest

from kmerdb.core.mphf import MPHF
from kmerdb.errors import CorruptDatabaseError, InvalidParameterError


def random_keys(n: int, seed: int = 0, high: int = 2**62) -> np.ndarray:
    """n distinct random uint64 keys below ``high``, in random order."""
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.integers(0, high, int(n * 1.01) + 16, dtype=np.uint64))
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])][:n]
    assert len(keys) == n
    return rng.permutation(keys)


def assert_minimal_perfect(mphf: MPHF, keys: np.ndarray) -> np.ndarray:
    slots = mphf.lookup(keys)
    assert slots.dtype == np.int64
    assert len(slots) == len(keys) == mphf.n
    np.testing.assert_array_equal(np.sort(slots), np.arange(len(keys)))
    return slots


@pytest.fixture(scope="module")
def million():
    keys = random_keys(10**6, seed=1)
    return keys, MPHF.build(keys)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 64, 65, 1000, 4099])
def test_minimal_perfect_small(n):
    keys = random_keys(n, seed=n)
    assert_minimal_perfect(MPHF.build(keys), keys)


def test_minimal_perfect_million(million):
    keys, mphf = million
    assert mphf.n == 10**6
    assert_minimal_perfect(mphf, keys)


def test_bits_per_key_million(million):
    _, mphf = million
    assert mphf.nbytes == mphf.to_array().nbytes
    assert mphf.bits_per_key() == mphf.nbytes * 8 / mphf.n
    assert mphf.bits_per_key() <= 3.8


def test_lookup_is_consistent_across_calls_and_orders(million):
    keys, mphf = million
    slots = mphf.lookup(keys)
    order = np.argsort(keys[:100_000])
    np.testing.assert_array_equal(mphf.lookup(keys[order]), slots[order])
    # Repeated and partial queries give the same slot as in the full batch.
    np.testing.assert_array_equal(mphf.lookup(keys[[5, 5, 0]]), slots[[5, 5, 0]])


def test_non_members_map_into_range_or_minus_one(million):
    keys, mphf = million
    others = random_keys(200_000, seed=99, high=2**64 - 1)
    members = np.sort(keys)
    j = np.minimum(np.searchsorted(members, others), len(members) - 1)
    others = others[members[j] != others]  # np.isin is slow on big uint64 arrays
    slots = mphf.lookup(others)
    assert slots.dtype == np.int64
    assert slots.min() >= -1 and slots.max() < mphf.n


def test_empty_inputs():
    empty = MPHF.build(np.empty(0, dtype=np.uint64))
    assert empty.n == 0 and len(empty) == 0
    np.testing.assert_array_equal(empty.lookup(np.array([0, 1, 2**63], dtype=np.uint64)), [-1, -1, -1])
    mphf = MPHF.build(random_keys(100))
    out = mphf.lookup(np.empty(0, dtype=np.uint64))
    assert out.dtype == np.int64 and out.shape == (0,)


def test_fallback_only_rejects_non_members():
    # Three keys sit in the fallback table: a non-member must not take a slot.
    keys = np.array([10, 20, 30], dtype=np.uint64)
    mphf = MPHF.build(keys)
    assert_minimal_perfect(mphf, keys)
    np.testing.assert_array_equal(mphf.lookup(np.array([0, 15, 31, 2**64 - 1], dtype=np.uint64)), [-1] * 4)


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(np.arange(200_000, dtype=np.uint64), id="consecutive"),
        pytest.param(np.arange(50_000, dtype=np.uint64) << np.uint64(40), id="stride-2^40"),
        pytest.param(np.arange(100_000, dtype=np.uint64) * np.uint64(4), id="stride-4"),
        pytest.param(np.uint64(2**64 - 1) - np.arange(50_000, dtype=np.uint64), id="top-of-range"),
        pytest.param(
            np.concatenate(
                [
                    [np.uint64(0x0123456789ABCDEF)],
                    np.uint64(0x0123456789ABCDEF) ^ (np.uint64(1) << np.arange(64, dtype=np.uint64)),
                ]
            ),
            id="one-bit-apart",
        ),
    ],
)
def test_adversarial_keys(keys):
    mphf = MPHF.build(keys)
    assert_minimal_perfect(mphf, keys)
    if len(keys) >= 50_000:
        assert mphf.bits_per_key() <= 3.8


@pytest.mark.parametrize("gamma", [1.0, 1.5, 2.0, 5.0])
def test_gamma_and_seed(gamma):
    keys = random_keys(20_000, seed=3)
    a = MPHF.build(keys, gamma=gamma, seed=7)
    assert a.gamma == gamma and a.seed == 7
    slots = assert_minimal_perfect(a, keys)
    # Deterministic for a given seed; another seed is another function.
    np.testing.assert_array_equal(MPHF.build(keys, gamma=gamma, seed=7).to_array(), a.to_array())
    assert not np.array_equal(MPHF.build(keys, gamma=gamma, seed=8).lookup(keys), slots)


def test_larger_gamma_is_bigger_with_fewer_levels():
    keys = random_keys(50_000, seed=4)
    small, large = MPHF.build(keys, gamma=1.0), MPHF.build(keys, gamma=3.0)
    assert small.nbytes < large.nbytes
    assert small.n_levels > large.n_levels


def test_other_integer_dtypes_are_accepted():
    keys = np.arange(1000, dtype=np.int64)
    mphf = MPHF.build(keys)
    np.testing.assert_array_equal(mphf.lookup(keys), mphf.lookup(keys.astype(np.uint64)))
    np.testing.assert_array_equal(mphf.lookup(keys.astype(">u8")), mphf.lookup(keys.astype(np.uint64)))
    assert_minimal_perfect(mphf, keys.astype(np.uint32))


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(np.array([5, 5], dtype=np.uint64), id="pair"),
        pytest.param(np.array([1, 2, 3, 2, 4, 5, 6, 7], dtype=np.uint64), id="one-repeat"),
        pytest.param(np.concatenate([random_keys(5000), random_keys(5000)[:3]]), id="few-in-many"),
        pytest.param(np.tile(random_keys(3000), 2), id="all-twice"),
        pytest.param(np.zeros(1000, dtype=np.uint64), id="all-equal"),
    ],
)
def test_duplicate_keys_are_rejected(keys):
    with pytest.raises(InvalidParameterError) as info:
        MPHF.build(keys)
    assert info.value.argument == "keys"


@pytest.mark.parametrize(
    "keys",
    [np.array([-1, 2]), np.zeros((2, 2), dtype=np.uint64), np.array([1.5, 2.0]), np.array(["a"])],
)
def test_invalid_keys(keys):
    with pytest.raises(InvalidParameterError):
        MPHF.build(keys)


@pytest.mark.parametrize(
    "kwargs", [{"gamma": 0.5}, {"gamma": float("nan")}, {"gamma": "2"}, {"seed": -1}, {"seed": 2**64}]
)
def test_invalid_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        MPHF.build(np.arange(10, dtype=np.uint64), **kwargs)


@pytest.mark.parametrize("n", [0, 3, 1000, 100_000])
def test_round_trip_through_memmap(tmp_path, n):
    keys = random_keys(n, seed=5)
    mphf = MPHF.build(keys)
    arr = mphf.to_array()
    assert arr.ndim == 1 and arr.dtype == np.dtype("<u8")
    path = tmp_path / "mphf.npy"
    np.save(path, arr, allow_pickle=False)
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    loaded = MPHF.from_array(mapped)
    assert (loaded.n, loaded.n_levels, loaded.n_fallback, loaded.nbytes) == (
        mphf.n,
        mphf.n_levels,
        mphf.n_fallback,
        mphf.nbytes,
    )
    probe = np.concatenate([keys, random_keys(1000, seed=6)])
    np.testing.assert_array_equal(loaded.lookup(probe), mphf.lookup(probe))
    if n:
        # The big parts are views of the memmap, not copies.
        assert np.shares_memory(loaded._words, mapped) or loaded._words.size == 0
        assert np.shares_memory(loaded._rank, mapped) or loaded._rank.size == 0
    np.testing.assert_array_equal(loaded.to_array(), arr)


def test_to_array_is_read_only(million):
    _, mphf = million
    with pytest.raises(ValueError):
        mphf.to_array()[0] = 0


def _ranks(words: np.ndarray, gpos: np.ndarray) -> np.ndarray:
    """Ranks of bit positions through the lookup kernel, over words and their directory."""
    from kmerdb.core.bits import rank_directory
    from kmerdb.core.kernels import rank

    arr = np.concatenate([words, rank_directory(words)])
    return np.array([rank(arr, 0, words.size, np.uint64(g)) for g in gpos], dtype=np.int64)


def test_rank_matches_naive_popcount():
    rng = np.random.default_rng(8)
    for n_words in (4, 16, 20, 64, 1000):
        words = rng.integers(0, 2**64 - 1, n_words, dtype=np.uint64, endpoint=True)
        words[: n_words // 3] = 0  # long runs of 0 and of 1 bits too
        words[n_words // 2 : n_words // 2 + 3] = np.uint64(2**64 - 1)
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")
        before = np.concatenate([[0], np.cumsum(bits)[:-1]])
        gpos = np.arange(n_words * 64, dtype=np.uint64)
        np.testing.assert_array_equal(_ranks(words, gpos), before)
    # Absolute counts of 2**26 set bits 22-31 of the entry, under the quarter fields.
    words = np.full(2**26 // 64 + 4, 2**64 - 1, dtype=np.uint64)
    words[-2] = np.uint64(0xF0F0)
    n_bits = len(words) * 64
    gpos = np.concatenate([rng.integers(0, n_bits, 10_000), np.arange(n_bits - 300, n_bits)]).astype(np.uint64)
    full_bits = n_bits - 128  # all bits before the last two words are 1
    expected = np.minimum(gpos, full_bits).astype(np.int64)
    tail = gpos >= full_bits
    bits = np.unpackbits(words[-2:].view(np.uint8), bitorder="little")
    before_in_tail = np.concatenate([[0], np.cumsum(bits, dtype=np.int64)])
    expected[tail] += before_in_tail[(gpos[tail] - full_bits).astype(np.intp)]
    np.testing.assert_array_equal(_ranks(words, gpos), expected)


def corrupt(arr: np.ndarray, index: int, value: int) -> np.ndarray:
    bad = np.array(arr, copy=True)
    bad[index] = value
    return bad


@pytest.fixture(scope="module")
def small_array():
    return MPHF.build(random_keys(5000, seed=9)).to_array()


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda a: corrupt(a, 0, 0x1234), id="magic"),
        pytest.param(lambda a: corrupt(a, 1, 99), id="version"),
        pytest.param(lambda a: corrupt(a, 2, int(a[2]) + 1), id="n"),
        pytest.param(lambda a: corrupt(a, 4, int(a[4]) + 1), id="levels"),
        pytest.param(lambda a: corrupt(a, 6, int(a[6]) + 4), id="words"),
        pytest.param(lambda a: corrupt(a, 11, int(a[11]) - 1), id="total"),
        pytest.param(lambda a: corrupt(a, 12, int(a[12]) + 64), id="level-size"),
        pytest.param(lambda a: corrupt(a, 12, int(a[12]) + 1), id="level-size-not-64"),
        pytest.param(lambda a: a[:-1].copy(), id="truncated"),
        pytest.param(lambda a: np.concatenate([a, [0]]).astype(np.uint64), id="extended"),
        pytest.param(lambda a: a[:5].copy(), id="shorter-than-header"),
        pytest.param(lambda a: np.zeros(0, np.uint64), id="empty"),
        pytest.param(lambda a: a.astype(np.int64), id="dtype"),
        pytest.param(lambda a: a.reshape(1, -1), id="2-d"),
        pytest.param(lambda a: np.repeat(a, 2)[::2], id="strided"),
    ],
)
def test_corrupt_array_is_rejected(small_array, make_bad):
    MPHF.from_array(small_array)  # the original is fine
    with pytest.raises(CorruptDatabaseError) as info:
        MPHF.from_array(make_bad(small_array), source="layer0.mphf.npy")
    assert info.value.path == "layer0.mphf.npy"


def test_corrupt_bit_words_detected_by_count_check(small_array):
    bad = np.array(small_array, copy=True)
    rank_start = int(bad[9])
    bad[rank_start - 1] ^= np.uint64(1 << 5)  # flip a bit of the last word
    with pytest.raises(CorruptDatabaseError):
        MPHF.from_array(bad)


@pytest.mark.parametrize("n", [0, 1, 3, 5, 100, 20_000])
def test_build_with_slots_gives_each_keys_lookup(n):
    """The slots a build reports for its keys are the ones lookup gives (placed keys and the
    fallback alike), and the function is the one build makes."""
    rng = np.random.default_rng(n)
    keys = np.unique(rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True))
    for gamma in (1.0, 1.5, 4.0):
        mphf, slots = MPHF.build_with_slots(keys, gamma=gamma, seed=n)
        np.testing.assert_array_equal(slots, mphf.lookup(keys))
        np.testing.assert_array_equal(np.sort(slots), np.arange(keys.size))
        np.testing.assert_array_equal(mphf.to_array(), MPHF.build(keys, gamma=gamma, seed=n).to_array())
