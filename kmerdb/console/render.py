"""Rendering helpers shared by the console commands: JSON, rich tables, sizes."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

__all__ = ["emit_json", "print_table", "human_bytes", "stdout_console", "describe_evidence"]


def stdout_console() -> Console:
    return Console(soft_wrap=True)


def emit_json(obj) -> None:
    """Write ``obj`` as JSON on stdout."""
    json.dump(obj, sys.stdout, indent=2, default=_default)
    sys.stdout.write("\n")


def _default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Collection[int] = frozenset()
) -> None:
    """A rich table on stdout."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if i in numeric else "left")
    for row in rows:
        table.add_row(*[str(x) for x in row])
    stdout_console().print(table)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def describe_evidence(kind: str, fp_bits: int, z: int) -> str:
    """``exact``, or ``approx (b=B, z=Z)``."""
    return kind if kind == "exact" else f"approx (b={fp_bits}, z={z})"
