"""Progress bars on stderr for long operations (rich), silent when asked or not a terminal.

The library reports ``progress(phase, done, total)``; each phase has a description and
the unit its counts are in, which the throughput column shows (bases/s, partitions/s).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["progress_callback", "PHASES", "ProgressFn"]

#: progress(phase, done, total), as every operation of the API takes it
ProgressFn = Callable[[str, int, "int | None"], None]

#: phase -> (description, unit of its counts)
PHASES = {
    "scatter": ("reading inputs", "bases"),
    "gather": ("building layers", "partitions"),
    "merge": ("merging", "partitions"),
    "append": ("appending", "partitions"),
    "compact": ("compacting", "partitions"),
    "verify": ("verifying", "partitions"),
    "reindex": ("reindexing", "partitions"),
    "setop": ("set operation", "partitions"),
    "query": ("querying", "bytes"),
    "query-stream": ("querying", "bases"),
}


class RateColumn(ProgressColumn):
    """Throughput in the phase's unit, with an SI prefix."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("", style="progress.data.speed")
        unit = task.fields.get("unit", "items")
        for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if speed >= scale:
                return Text(f"{speed / scale:.1f} {prefix}{unit}/s", style="progress.data.speed")
        return Text(f"{speed:.1f} {unit}/s", style="progress.data.speed")


@contextmanager
def progress_callback(quiet: bool) -> Iterator[ProgressFn | None]:
    """Yield a ``progress(phase, done, total)`` callback drawing one bar per phase, or None."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                description, unit = PHASES.get(phase, (phase, "partitions"))
                tasks[phase] = bar.add_task(description, total=total, unit=unit)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
