"""The ``kmerdb`` console: parses arguments, makes one public-API call, renders the result.

Exit codes: 0 success, 1 failure (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from kmerdb import __version__
from kmerdb.errors import KmerDBError
from kmerdb.ops.export import open_output

__all__ = ["main", "make_parser", "COMMAND_MODULES"]

#: Modules under kmerdb.console that each register a family of commands.
COMMAND_MODULES = ("core", "compare", "edit", "evidence", "plot")


class _StderrHandler(logging.Handler):
    """Log records of the library as ``kmerdb: warning: ...`` lines on the current stderr.

    Looked up at each record (not bound once) so that a caller swapping sys.stderr, as
    tests do, sees the lines.
    """

    def emit(self, record: logging.LogRecord) -> None:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        try:
            sys.stderr.write(f"kmerdb: {level}{record.getMessage()}\n")
        except Exception:  # never let logging break a command
            self.handleError(record)


def _log_to_stderr(verbose: bool) -> None:
    """Warnings of the library always reach stderr; with -v its progress notes as well."""
    logger = logging.getLogger("kmerdb")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2
        self.exit(2, f"kmerdb: error: {message} (see '{self.prog} --help')\n")


@contextlib.contextmanager
def _stdout_to(path: str) -> Iterator[None]:
    """Send what a command prints to ``path`` (gzip if it ends in .gz), through a temporary file
    renamed into place once the command succeeded: a failed command leaves no partial output."""
    tmp = f"{path}.tmp-{os.getpid()}"
    text = io.TextIOWrapper(open_output(tmp, compress=path.endswith(".gz")), encoding="utf-8", newline="")
    done = False
    try:
        with contextlib.redirect_stdout(text):
            yield
        done = True
    finally:
        text.close()
        if done:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def make_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command registered."""
    parser = _Parser(
        prog="kmerdb",
        description="An embedded, memory-mapped, on-disk k-mer index database for genome collections.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"kmerdb {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console; returns the exit code."""
    parser = make_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # bare `kmerdb`: what it does and its commands, as a usage error
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    _log_to_stderr(args.verbose)
    try:
        target = getattr(args, "stdout_file", None)
        if target is None:
            return int(args.func(args) or 0)
        with _stdout_to(target):
            return int(args.func(args) or 0)
    except KmerDBError as exc:
        print(f"kmerdb: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`); not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("kmerdb: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"kmerdb: error: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
        return 1
