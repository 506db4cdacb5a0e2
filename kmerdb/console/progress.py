"""Progress bars on stderr for long operations (rich), silent when asked or not a terminal."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = ["progress_callback"]

_DESCRIPTIONS = {
    "scatter": "reading inputs",
    "gather": "building layers",
}


@contextmanager
def progress_callback(quiet: bool) -> Iterator[object]:
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
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(_DESCRIPTIONS.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
