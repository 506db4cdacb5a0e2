"""The exception hierarchy of kmerdb.

Every error the library raises on purpose derives from :class:`KmerDBError`;
library errors from below (``lmdb.Error``, ``OSError``) are translated at the
boundary into one of these, so a caller needs a single ``except`` clause and
the console can print one clean line per failure.  Each subclass is named for
the user's situation and carries structured fields next to its message.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

__all__ = [
    "KmerDBError",
    "InputError",
    "InvalidParameterError",
    "InvalidTypeError",
    "DatabaseExistsError",
    "DatabaseNotFoundError",
    "IncompleteDatabaseError",
    "FormatVersionError",
    "CorruptDatabaseError",
    "ReadOnlyError",
    "MemoryBudgetError",
    "BuildIntegrityError",
    "LockedError",
    "IncompatibleIndexError",
    "MixedEvidenceError",
    "MissingCountsError",
    "NotReadyError",
    "DuplicateLabelError",
    "GenomeNotFoundError",
    "TransactionError",
    "WorkerError",
    "MissingDependencyError",
    "DiskFullError",
    "AbandonedBuildError",
    "FencedError",
]


def _rebuild(cls: type[KmerDBError], args: tuple[Any, ...], state: dict[str, Any]) -> KmerDBError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class KmerDBError(Exception):
    """Root of every error kmerdb raises on purpose."""

    def __reduce__(self) -> tuple[Callable[..., KmerDBError], tuple[Any, ...]]:
        # Subclasses take structured arguments, so the default pickling (cls(*args)) would
        # fail; errors raised in worker processes must cross back to the parent intact.
        return _rebuild, (type(self), self.args, dict(self.__dict__))


class InputError(KmerDBError, ValueError):
    """An input file (FASTA, FASTQ, manifest) is missing, empty, malformed or binary.

    Attributes
    ----------
    path : str
        The offending file.
    line : int or None
        1-based line number where it applies.
    reason : str
        What is wrong, in a few words.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class InvalidParameterError(KmerDBError, ValueError):
    """An argument is out of range or inconsistent with another.

    Attributes
    ----------
    argument : str
        Name of the argument (as the API and the console spell it).
    value : object
        The rejected value.
    """

    def __init__(self, argument: str, value: object, reason: str) -> None:
        self.argument = argument
        self.value = value
        super().__init__(f"{argument}={value!r}: {reason}")


class InvalidTypeError(InvalidParameterError, TypeError):
    """An argument has the wrong type (None where a path is needed, a number for a sequence...).

    Also a :class:`TypeError`, as Python's own functions raise for a wrong type, so code
    that catches either keeps working.

    Attributes
    ----------
    argument : str
        Name of the argument.
    value : object
        The rejected value.
    expected : str
        What the argument accepts.
    """

    def __init__(self, argument: str, value: object, expected: str) -> None:
        self.expected = expected
        super().__init__(argument, value, f"expected {expected}, got {type(value).__name__}")


class DatabaseExistsError(KmerDBError, FileExistsError):
    """A database (or any file) already exists where a new one was to be created."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: already exists; refusing to overwrite it")


class AbandonedBuildError(DatabaseExistsError):
    """A new database's path holds the remains of a build that never finished (killed, or crashed)."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        FileExistsError.__init__(
            self,
            f"{self.path}: left by a build that did not finish (catalog state 'building'); "
            "remove it or use --force",
        )


class DatabaseNotFoundError(KmerDBError, FileNotFoundError):
    """No kmerdb database at the given path."""

    def __init__(self, path: str, reason: str = "no kmerdb database here") -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {reason}")


class IncompleteDatabaseError(KmerDBError):
    """The database was never completed (its build failed or was killed)."""

    def __init__(self, path: str, state: str) -> None:
        self.path = str(path)
        self.state = state
        super().__init__(
            f"{self.path}: database is incomplete (state {state!r}); its build did not finish, "
            "remove it and build again"
        )


class FormatVersionError(KmerDBError):
    """The database was written in an on-disk format this version cannot read."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = str(path)
        self.found = found
        self.supported = supported
        super().__init__(
            f"{self.path}: on-disk format version {found} is newer than the supported version "
            f"{supported}; upgrade kmerdb to open it"
        )


class CorruptDatabaseError(KmerDBError):
    """A data file or catalog record does not match what the catalog promises."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ReadOnlyError(KmerDBError):
    """A write was attempted on a handle opened read-only, or outside a transaction."""


class MemoryBudgetError(KmerDBError):
    """The ``max_memory`` budget is too small for the operation."""

    def __init__(self, budget: int, needed: int, reason: str) -> None:
        self.budget = budget
        self.needed = needed
        super().__init__(f"max_memory={budget} bytes is too small: {reason} (needs about {needed} bytes)")


class BuildIntegrityError(KmerDBError):
    """Data read back from a spill bucket differs from what was written."""


class LockedError(KmerDBError):
    """Another process holds the database's writer lock."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = str(path)
        self.pid = pid
        who = f"PID {pid}" if pid else "another process"
        super().__init__(f"{self.path}: locked by {who} (one writer at a time; use --wait to wait)")


class IncompatibleIndexError(KmerDBError):
    """Indexes cannot be combined: their configurations differ."""


class MixedEvidenceError(IncompatibleIndexError):
    """Indexes to combine keep different membership evidence (exact vs approx, or other (b, z)).

    Attributes
    ----------
    path : str
        The source whose evidence differs from the first source's.
    found, expected : str
        The two evidence descriptions.
    """

    def __init__(self, path: str, found: str, expected: str) -> None:
        self.path = str(path)
        self.found = found
        self.expected = expected
        super().__init__(
            f"{self.path}: evidence {found} differs from {expected}; indexes combine only with the same "
            "evidence: reindex one of them first (kmerdb reindex)"
        )


class MissingCountsError(IncompatibleIndexError):
    """Counts were asked for, but a source keeps presence only."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(
            f"{self.path}: keeps presence only, so a count merge cannot take it; merge with --mode presence "
            "or rebuild it with counts"
        )


class NotReadyError(KmerDBError):
    """A source database is not ready to be read (incomplete or being built)."""


class DuplicateLabelError(KmerDBError):
    """A genome label occurs twice where labels must be unique."""

    def __init__(self, label: str, hint: str = "") -> None:
        self.label = label
        super().__init__(f"duplicate genome label {label!r}" + (f"; {hint}" if hint else ""))


class GenomeNotFoundError(KmerDBError, KeyError):
    """No genome with the given label."""

    def __init__(self, label: str) -> None:
        self.label = label
        super().__init__(label)

    def __str__(self) -> str:
        return f"no genome labelled {self.label!r}"


class TransactionError(KmerDBError):
    """A transaction was used wrongly (nested, reused, or write outside one)."""


class FencedError(KmerDBError):
    """A task of a writer that no longer holds the writer lock tried to write into the database.

    A newer writer has taken the lock since (the task's writer died); the task writes
    nothing more, so its files can neither collide with the new writer's nor be kept.

    Attributes
    ----------
    path : str
        The file the task was about to create or rename into place.
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(
            f"{self.path}: not written: the writer that started this task no longer holds the "
            "database's writer lock (a newer writer has taken it)"
        )


class WorkerError(KmerDBError):
    """A worker process ended, or failed with an error that is not a kmerdb error."""


class MissingDependencyError(KmerDBError, ImportError):
    """A feature needs an optional package that is not installed.

    Attributes
    ----------
    feature : str
        What was asked for, in a word or two (``"plotting"``).
    package : str
        The missing package.
    extra : str
        The kmerdb extra that installs it (``pip install 'kmerdb[extra]'``).
    """

    def __init__(self, feature: str, package: str, extra: str) -> None:
        self.feature = feature
        self.package = package
        self.extra = extra
        super().__init__(f"{feature} needs {package}: pip install 'kmerdb[{extra}]'")


class DiskFullError(KmerDBError, OSError):
    """No space left on the device (or the quota) while writing a file.

    Nothing is committed: the operation's files are removed and the database stays at
    the generation it had.

    Attributes
    ----------
    path : str
        The file being written.
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: no space left on device; nothing was committed, free some space and retry")
        self.errno = errno.ENOSPC

    @classmethod
    def from_error(cls, exc: BaseException, path: str | None = None) -> DiskFullError | None:
        """The DiskFullError ``exc`` stands for (an ENOSPC or EDQUOT ``OSError``, or lmdb's), else None."""
        if isinstance(exc, DiskFullError):
            return exc
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc):
            return cls(path or getattr(exc, "filename", None) or "?")
        return None
