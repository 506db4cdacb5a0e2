"""Options that several commands share, declared once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["FORMATS", "add_colours", "add_format", "add_output", "add_min_count", "add_workers", "output_format", "usage_error", "workers"]

#: Output formats of the commands that print data (``phylip`` and friends are added per command).
FORMATS = ("table", "tsv", "csv", "json")


def add_workers(p: argparse.ArgumentParser) -> None:
    """``-t/--threads`` and ``--scheduler``: where an operation runs its partition tasks."""
    p.add_argument("-t", "--threads", type=int, default=None, help="worker processes (default: all CPUs)")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run the partition tasks on this Dask cluster (tcp://host:8786; the workers must see the "
        "database and inputs at the same paths; needs kmerdb[distributed]); --threads is then ignored",
    )


def workers(args: argparse.Namespace) -> dict:
    """The ``threads`` and ``scheduler`` keywords of an API call, from the parsed options."""
    return {"threads": args.threads, "scheduler": args.scheduler}


def add_format(p: argparse.ArgumentParser, formats: Sequence[str] = FORMATS, default: str | None = None) -> None:
    """``--format`` (one of ``formats``) and ``--json``, its synonym for ``--format json``.

    With ``default`` None the format follows stdout: ``table`` on a terminal, ``tsv`` otherwise
    (see :func:`output_format`).
    """
    shown = default or "table on a terminal, else tsv"
    p.add_argument(
        "--format",
        choices=tuple(formats),
        default=default,
        help=f"output format (default: {shown}); tsv and csv have a header line and are never cut",
    )
    if "json" in formats:
        p.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    add_output(p)


def add_output(p: argparse.ArgumentParser) -> None:
    """``-o/--output FILE``: what the command prints goes to FILE (see ``kmerdb.console.main``)."""
    p.add_argument(
        "-o",
        "--output",
        dest="stdout_file",
        metavar="FILE",
        default=None,
        help="write the output to FILE instead of stdout (gzip if it ends in .gz; tsv unless --format says "
        "otherwise); FILE appears only when the command succeeds",
    )


def output_format(args: argparse.Namespace) -> str:
    """The format asked for, or ``table`` when stdout is a terminal and ``tsv`` when it is not
    (``-o FILE`` is not a terminal)."""
    if args.format is not None:
        return str(args.format)
    return "table" if sys.stdout.isatty() else "tsv"


def usage_error(command: str, message: str) -> NoReturn:
    """A usage error: one line on stderr, exit status 2 (as the parser does)."""
    sys.stderr.write(f"kmerdb: error: {message} (see 'kmerdb {command} --help')\n")
    raise SystemExit(2)


def add_min_count(p: argparse.ArgumentParser) -> None:
    """``--min-count N`` of build and append: k-mers seen fewer than N times in a genome are not indexed."""
    p.add_argument(
        "--min-count",
        type=int,
        default=1,
        metavar="N",
        help="index a k-mer for a genome only if it occurs at least N times in its inputs (KMC -ci); "
        "2 or 3 drops most read errors; the spectrum still shows the counts cut off (default 1)",
    )


def add_colours(p: argparse.ArgumentParser) -> None:
    """``--colours {auto,dense,classes}`` of build: how the genome columns of the index are stored."""
    p.add_argument(
        "--colours",
        choices=("auto", "dense", "classes"),
        default="auto",
        help="how genome columns are stored: auto picks the smaller per column group; dense bits/counts "
        "per k-mer; classes: a colour-class id per k-mer and each distinct set of genomes once "
        "(appends, merges and compactions follow the index's choice) (default auto)",
    )
