"""Text exports of an index: the k-mer table (``dump``), and output files compressed by name."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from kmerdb.core.kmers import kmers_to_strings

__all__ = ["format_table", "header_line", "write_dump", "open_output"]


def _digits(values: np.ndarray) -> np.ndarray:
    """(n,) non-negative integers -> (n, D) ASCII digits, D for the largest value.

    Leading zeros are NUL bytes (dropped later); the last digit is always kept.
    """
    top = int(values.max()) if values.size else 0
    width = len(str(top))
    out = np.zeros((values.size, width), dtype=np.uint8)
    rest = values.astype(np.uint64)
    for j in range(width - 1, -1, -1):  # loop over digit positions
        digit = (rest % np.uint64(10)).astype(np.uint8)
        out[:, j] = np.where((rest > 0) | (j == width - 1), digit + ord("0"), 0)
        rest //= np.uint64(10)
    return out


def format_table(letters: np.ndarray, values: np.ndarray, sep: str = "\t") -> bytes:
    """Lines ``kmer<TAB>v1<TAB>v2...`` for (n, k) ASCII letters and (n, g) integers.

    ``sep`` is the one-character field separator (``","`` for CSV: k-mers and numbers
    need no quoting).

    Built as one byte matrix: numbers become NUL-padded digit fields as wide as their
    column's largest value, and NULs are dropped at the end, so no Python loop runs over rows.
    """
    n = letters.shape[0]
    if n == 0:
        return b""
    fields = [letters]
    tab = np.full((n, 1), ord(sep), dtype=np.uint8)
    for j in range(values.shape[1]):  # loop over genome columns only
        fields += [tab, _digits(values[:, j])]
    fields.append(np.full((n, 1), ord("\n"), dtype=np.uint8))
    flat = np.concatenate(fields, axis=1).ravel()
    if all(f.shape[1] == 1 for f in fields[2::2]):  # single-digit columns: no padding
        return flat.tobytes()
    return flat[flat != 0].tobytes()


def header_line(names: Sequence[str], sep: str = "\t") -> bytes:
    """The header of a table: names joined by ``sep`` (quoted as CSV needs when ``sep`` is ``,``)."""
    if sep == ",":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(names)
        return buf.getvalue().encode()
    return (sep.join(names) + "\n").encode()


def write_dump(db, out: BinaryIO, block: int = 1 << 18, sep: str = "\t") -> int:
    """Write every canonical k-mer with one column per genome (its count, or 0/1).

    The first line is ``kmer<TAB>label1<TAB>label2...`` (``sep`` between fields: a tab, or
    ``","`` for CSV).  Returns the number of k-mers.
    """
    out.write(header_line(("kmer",) + tuple(db.genomes), sep))
    k = db.config.k
    n = 0
    for keys, rows in db.iter_rows():
        for lo in range(0, keys.size, block):
            out.write(
                format_table(kmers_to_strings(keys[lo : lo + block], k), rows[lo : lo + block].astype(np.uint32), sep)
            )
        n += keys.size
    return n


def open_output(path: str | os.PathLike, compress: bool | None = None) -> BinaryIO:
    """Open ``path`` for writing bytes, gzip-compressed when its name ends in ``.gz`` (or as
    ``compress`` says).

    ``mtime=0`` keeps the compressed bytes a function of the content alone, so two exports
    of one index are byte-identical.
    """
    path = os.fspath(path)
    if path.endswith(".gz") if compress is None else compress:
        return gzip.GzipFile(path, "wb", compresslevel=6, mtime=0)  # type: ignore[return-value]
    return open(path, "wb")
