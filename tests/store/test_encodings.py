"""Column encodings: packed presence bits, smallest saturating count widths."""

import numpy as np

from kmerdb.store.encodings import count_dtype, pack_presence, to_counts, unpack_presence


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
