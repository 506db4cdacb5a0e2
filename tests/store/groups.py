"""Column groups encoded and opened in memory, with a made-up placement for the unitig-ordered kinds."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kmerdb.core.colours import SparseRows
from kmerdb.store.encodings import ColumnEncoding, Placement, SlotOrdinals


def placement_for(n: int, slots: np.ndarray, seed: int = 11) -> tuple[Placement, SlotOrdinals]:
    """A random unitig order of ``n`` k-mers, as the writer's placement and as the reader's
    slot map."""
    ordinals = np.random.default_rng(seed).permutation(n).astype(np.int64)
    by_slot = np.zeros(n, dtype=np.int64)
    by_slot[np.asarray(slots, dtype=np.int64)] = ordinals
    return Placement(ordinals), SlotOrdinals(lambda s: by_slot[np.asarray(s, dtype=np.int64)], n)


def encoded_group(
    cls: type[ColumnEncoding], rows: SparseRows, slots: np.ndarray, ids: tuple[int, ...], column_of: Mapping[int, int]
) -> ColumnEncoding:
    """``rows`` written by ``cls`` and opened again (placed kinds through a made-up placement)."""
    if not cls.placed:
        return cls(cls.encode(rows, slots), ids, column_of, "test")
    placement, ordinals = placement_for(rows.n, slots)
    return cls(cls.encode(rows, slots, placement), ids, column_of, "test", ordinals)
