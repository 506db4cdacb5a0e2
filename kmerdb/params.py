"""Arguments every operation shares, parsed in one place: memory sizes and worker counts."""

from __future__ import annotations

import os
import re

from kmerdb.errors import InvalidParameterError, InvalidTypeError

__all__ = ["parse_size", "resolve_threads", "path_argument"]

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*", re.IGNORECASE)
_SCALE = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def path_argument(value: object, argument: str = "path") -> str:
    """A path argument as a ``str``, refused at the boundary when it cannot name a file.

    Parameters
    ----------
    value : object
        What the caller passed: ``str``, ``bytes`` or ``os.PathLike``.
    argument : str
        The argument's name, for the error message.

    Raises
    ------
    InvalidTypeError
        Not a path (None, a number, a list...).
    InvalidParameterError
        An empty path or one holding a NUL byte: the OS would answer "No such file"
        without naming it, or raise a bare ValueError.
    """
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise InvalidTypeError(argument, value, "a path (str or os.PathLike)")
    try:
        path = os.fsdecode(os.fspath(value))
    except (TypeError, UnicodeDecodeError):  # a PathLike returning neither str nor bytes
        raise InvalidTypeError(argument, value, "a path (str or os.PathLike)") from None
    if not path:
        raise InvalidParameterError(argument, path, "an empty path names nothing")
    if "\0" in path:
        raise InvalidParameterError(argument, path, "a path cannot hold a NUL character")
    return path


def parse_size(value: int | str | None, argument: str = "max_memory") -> int | None:
    """Parse a memory size: an int of bytes, or a string like ``512M``, ``2G``, ``1.5GiB``.

    Parameters
    ----------
    value : int, str or None
        The size; None means no limit and is returned as is.
    argument : str
        The argument's name, for the error message.

    Returns
    -------
    int or None
        Bytes.

    Raises
    ------
    InvalidParameterError
        Not a size, or not positive.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise InvalidParameterError(argument, value, "must be positive")
        return value
    match = _SIZE.fullmatch(str(value))
    if not match:
        raise InvalidParameterError(argument, value, "expected a size such as 512M or 2G")
    size = int(float(match.group(1)) * _SCALE[match.group(2).upper()])
    if size <= 0:
        raise InvalidParameterError(argument, value, "must be positive")
    return size


def resolve_threads(threads: int | None) -> int:
    """Worker count: ``threads``, or the number of CPUs when None.

    Raises
    ------
    InvalidParameterError
        Not an integer >= 1.
    """
    if threads is None:
        return max(1, os.cpu_count() or 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise InvalidParameterError("threads", threads, "must be an integer >= 1")
    return threads
