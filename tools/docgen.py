"""The command line shared by the generators of docs/ (apidoc.py, clidoc.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def run(description: str, out: Path, render: Callable[[], str], argv: list[str] | None = None) -> int:
    """Write ``render()`` to ``out``, or with ``--check`` exit 1 when ``out`` differs from it."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--check", action="store_true", help=f"exit 1 if {out.name} is out of date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is out of date: run python tools/{Path(sys.argv[0]).name}", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    return 0
