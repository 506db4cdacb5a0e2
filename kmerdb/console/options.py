"""Options that several commands share, declared once."""

from __future__ import annotations

import argparse

__all__ = ["add_workers", "workers"]


def add_workers(p: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--scheduler``: where an operation runs its partition tasks."""
    p.add_argument("--threads", type=int, default=None, help="worker processes (default: all CPUs)")
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
