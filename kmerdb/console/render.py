"""The one renderer of the console: every command that prints data hands it tables.

Formats (``--format``, declared in :mod:`kmerdb.console.options`):

- ``table``: rich tables, the default on a terminal; cells wrap to the terminal, and when
  written elsewhere the table is as wide as its widest row (nothing is cut).
- ``tsv`` / ``csv``: a header line, then one line per row, the default when stdout is not
  a terminal; several tables are separated by an empty line.
- ``json``: the command's own document.

Numbers are formatted by one rule everywhere (:func:`cell`): in ``tsv``/``csv`` integers
are plain digits, floats the shortest text that reads back to the same value, sizes in
bytes; in ``table`` integers have thousands separators, floats four significant digits
(whole numbers as integers, no exponent from 10,000 on) and sizes are KiB, MiB, GiB.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from kmerdb.analysis.analytics import format_value

__all__ = [
    "Size",
    "Table",
    "cell",
    "render",
    "write_rows",
    "emit_json",
    "human_bytes",
    "stdout_console",
    "describe_evidence",
]


class Size(int):
    """A number of bytes: ``12.3 KiB`` in a table, the integer in tsv, csv and json."""


@dataclass(frozen=True)
class Table:
    """One table of a command's output: a title (shown only as a table), a header and rows of
    plain values (str, int, float, :class:`Size`, None for an empty cell)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=list)


def stdout_console() -> Console:
    """The console of stdout; off a terminal as wide as needed, so that no cell is cut."""
    if sys.stdout.isatty():
        return Console(soft_wrap=True)
    return Console(width=1 << 16, soft_wrap=True)


def cell(value: Any, fmt: str) -> str:
    """A value as the text of one cell in ``fmt`` (``table``, ``tsv`` or ``csv``)."""
    human = fmt == "table"
    if value is None:
        return ""
    if isinstance(value, Size):
        return human_bytes(int(value)) if human else str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if human else str(int(value))
    if isinstance(value, (float, np.floating)):
        return _human_float(float(value)) if human else format_value(float(value))
    return str(value)


def _human_float(v: float) -> str:
    if not math.isfinite(v):
        return repr(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def render(fmt: str, tables: Sequence[Table], document: Any = None, out: IO[str] | None = None) -> None:
    """Print ``tables`` in ``fmt``; for ``json``, print ``document`` instead.

    Parameters
    ----------
    fmt : {"table", "tsv", "csv", "json"}
    tables : sequence of Table
    document : object, optional
        The JSON document (default: each table as a list of objects keyed by its columns).
    out : text stream, optional
        Default: stdout.
    """
    out = out if out is not None else sys.stdout
    if fmt == "json":
        if document is None:
            document = [[dict(zip(t.columns, row)) for row in t.rows] for t in tables]
            document = document[0] if len(document) == 1 else document
        emit_json(document, out)
        return
    if fmt == "table":
        console = stdout_console() if out is sys.stdout else Console(file=out, width=1 << 16, soft_wrap=True)
        for t in tables:
            console.print(_rich_table(t))
        return
    for i, t in enumerate(tables):
        if i:
            out.write("\n")
        write_rows(fmt, t.columns, t.rows, out)
    out.flush()


def _rich_table(t: Table) -> RichTable:
    table = RichTable(title=t.title, title_justify="left")
    for j, name in enumerate(t.columns):
        values = [row[j] for row in t.rows if row[j] is not None]
        numeric = bool(values) and all(_is_number(v) for v in values)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in t.rows:
        table.add_row(*[cell(v, "table") for v in row])
    return table


def write_rows(fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str] | None = None) -> None:
    """Write a header and ``rows`` as ``tsv`` or ``csv`` as they come (a generator streams)."""
    out = out if out is not None else sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(v, fmt) for v in row])
        return
    out.write("\t".join(_tsv_safe(c) for c in columns) + "\n")
    for row in rows:
        out.write("\t".join(_tsv_safe(cell(v, fmt)) for v in row) + "\n")


def _tsv_safe(text: str) -> str:
    # a tab or newline inside a cell would shift every later column
    return text.replace("\t", " ").replace("\n", " ") if ("\t" in text or "\n" in text) else text


def emit_json(obj: Any, out: IO[str] | None = None) -> None:
    """Write ``obj`` as JSON on stdout (or ``out``)."""
    out = out if out is not None else sys.stdout
    json.dump(obj, out, indent=2, default=_default)
    out.write("\n")


def _default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def human_bytes(n: float) -> str:
    """``512 B``, ``12.3 KiB``, ``4.0 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def describe_evidence(kind: str, fp_bits: int, z: int) -> str:
    """``exact``, or ``approx (b=B, z=Z)``."""
    return kind if kind == "exact" else f"approx (b={fp_bits}, z={z})"
