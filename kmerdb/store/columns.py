"""Column groups: the genome columns of a layer, slot-major (one row = all genomes of the group).

Presence groups are rows of packed bits (``np.packbits`` along the row, genome i of the
group at bit i, most significant bit first).  Count groups are one unsigned integer column
per genome, in the smallest width that holds the group's largest count; counts beyond
uint32 saturate at its maximum rather than wrapping.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PRESENCE", "COUNTS", "pack_presence", "unpack_presence", "count_dtype", "to_counts"]

PRESENCE = "presence"
COUNTS = "counts"

_WIDTHS = (np.dtype("<u1"), np.dtype("<u2"), np.dtype("<u4"))


def pack_presence(matrix: np.ndarray) -> np.ndarray:
    """(n, g) booleans -> (n, ceil(g/8)) uint8 rows of bits."""
    matrix = np.asarray(matrix, dtype=bool)
    n, g = matrix.shape
    if g > 16:
        return np.packbits(matrix, axis=1)
    # few columns: a shift per column is ~30x faster than np.packbits along short rows
    out = np.zeros((n, (g + 7) // 8), dtype=np.uint8)
    for j in range(g):
        out[:, j >> 3] |= matrix[:, j].view(np.uint8) << np.uint8(7 - (j & 7))
    return out


def unpack_presence(rows: np.ndarray, n_genomes: int) -> np.ndarray:
    """(n, ceil(g/8)) uint8 rows -> (n, g) booleans."""
    return np.unpackbits(rows, axis=1, count=n_genomes).view(bool)


def count_dtype(max_count: int) -> np.dtype:
    """Smallest unsigned width that holds ``max_count`` (uint32 at most)."""
    for dt in _WIDTHS:
        if max_count <= np.iinfo(dt).max:
            return dt
    return _WIDTHS[-1]


def to_counts(matrix: np.ndarray) -> np.ndarray:
    """Integer counts -> the smallest width that holds them, saturating at uint32's maximum."""
    matrix = np.asarray(matrix)
    top = int(matrix.max()) if matrix.size else 0
    dt = count_dtype(top)
    if top > np.iinfo(dt).max:
        matrix = np.minimum(matrix, np.iinfo(dt).max)
    return matrix.astype(dt)
