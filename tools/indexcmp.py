"""Compare two kmerdb indexes by content, for the benchmarks and the stress run."""

from __future__ import annotations

import os

import numpy as np

import kmerdb


def index_table(path: str | os.PathLike):
    """(labels, sorted k-mers, their rows) of an index; k-mers no genome holds are left aside."""
    with kmerdb.open(path) as db:
        blocks = list(db.iter_rows())
        keys = np.concatenate([k for k, _ in blocks])
        rows = np.concatenate([r for _, r in blocks])
        keep = rows.any(axis=1)
        keys, rows = keys[keep], rows[keep]
        order = np.argsort(keys)
        return db.genomes, keys[order], rows[order]


def same_index(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True if both indexes hold the same labels, k-mers and rows."""
    la, ka, ra = index_table(a)
    lb, kb, rb = index_table(b)
    return la == lb and np.array_equal(ka, kb) and np.array_equal(ra, rb)
