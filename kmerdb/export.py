"""Text exports of an index: the k-mer table (``dump``)."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from .kmers import kmers_to_strings

__all__ = ["format_table", "write_dump"]


def format_table(letters: np.ndarray, values: np.ndarray) -> bytes:
    """TSV lines ``kmer<TAB>v1<TAB>v2...`` for (n, k) ASCII letters and (n, g) integers.

    Built as one byte matrix: numbers become NUL-padded fixed-width fields, and the NULs
    are dropped at the end, so no Python loop runs over rows.
    """
    n = letters.shape[0]
    if n == 0:
        return b""
    fields = [letters]
    tab = np.full((n, 1), ord("\t"), dtype=np.uint8)
    for j in range(values.shape[1]):  # loop over genome columns only
        text = values[:, j].astype(np.uint64).astype("S20")
        fields += [tab, text.view(np.uint8).reshape(n, 20)]
    fields.append(np.full((n, 1), ord("\n"), dtype=np.uint8))
    flat = np.concatenate(fields, axis=1).ravel()
    return flat[flat != 0].tobytes()


def write_dump(db, out: BinaryIO, block: int = 1 << 18) -> int:
    """Write every canonical k-mer with one column per genome (its count, or 0/1).

    The first line is ``kmer<TAB>label1<TAB>label2...``.  Returns the number of k-mers.
    """
    out.write(("\t".join(("kmer",) + tuple(db.genomes)) + "\n").encode())
    k = db.config.k
    n = 0
    for keys, rows in db.iter_rows():
        for lo in range(0, keys.size, block):
            out.write(format_table(kmers_to_strings(keys[lo : lo + block], k), rows[lo : lo + block].astype(np.uint32)))
        n += keys.size
    return n
