"""Column groups encoded and opened in memory, with a made-up placement for the unitig-ordered kinds."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kmerdb.core.colours import SparseRows
from kmerdb.store.encodings import ColumnEncoding, Placement, SlotPositions


def placement_for(n: int, slots: np.ndarray, seed: int = 11) -> tuple[Placement, SlotPositions]:
    """Distinct start bases for ``n`` k-mers in a sequence of ``3 n`` bases (unitig breaks
    leave gaps), as the writer's placement and as the reader's slot map."""
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(3 * max(n, 1), size=n, replace=False)).astype(np.int64)
    positions = positions - (positions[0] if n else 0)  # the first k-mer starts the sequence
    positions = rng.permutation(positions)
    by_slot = np.zeros(n, dtype=np.uint64)
    by_slot[np.asarray(slots, dtype=np.int64)] = positions
    n_bases = 3 * max(n, 1) if n else 0
    return Placement(positions, n_bases), SlotPositions(lambda s: by_slot[np.asarray(s, dtype=np.int64)], n_bases)


def encoded_group(
    cls: type[ColumnEncoding], rows: SparseRows, slots: np.ndarray, ids: tuple[int, ...], column_of: Mapping[int, int]
) -> ColumnEncoding:
    """``rows`` written by ``cls`` and opened again (placed kinds through a made-up placement)."""
    if not cls.placed:
        return cls(cls.encode(rows, slots), ids, column_of, "test")
    placement, positions = placement_for(rows.n, slots)
    return cls(cls.encode(rows, slots, placement), ids, column_of, "test", positions)
