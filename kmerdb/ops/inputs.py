"""Genome inputs: labels, manifests, per-record collections, and record reading.

A genome is one or more FASTA/FASTQ files (plain or gzip, detected by content,
not by name), or one record of a multi-FASTA with ``per_record``.  Every failure to
read an input becomes one :class:`~kmerdb.errors.InputError` naming the file and,
where it applies, the line.

Inputs that are not regular files:

- FIFOs and pipes (a named FIFO, ``/dev/stdin`` fed by a pipe, ``<(zcat x.gz)``) are read
  once, as a stream: the format and compression come from their first bytes.  Opening one
  never blocks: a FIFO nobody writes to is refused after :data:`FIFO_WAIT` seconds
  (``KMERDB_FIFO_WAIT`` in the environment overrides it).  A stream cannot be read twice, so
  per-record collections need a regular file.
- ``-`` is standard input, read once as a stream like a pipe (whatever it is: a pipe, a
  redirected file, a socket); it waits for its writer as any Unix filter does.  Standard input
  on a terminal is refused.
- Terminals and other devices (``/dev/stdin`` on a terminal, ``/dev/zero``) are refused at once.

FASTA or FASTQ is told from the first byte of the (decompressed) content, ``>`` or ``@``,
never from the file name: a FASTQ named ``x.fa`` is read as FASTQ.

Records whose letters are mostly not nucleotide codes (a protein FASTA) are refused: they
would otherwise give no k-mer at all, silently.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import select
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import dnaio
import xopen

from kmerdb.errors import DuplicateLabelError, InputError, InvalidParameterError, InvalidTypeError

__all__ = [
    "GenomeInput",
    "label_from_path",
    "resolve_genomes",
    "parse_input_args",
    "read_manifest",
    "per_record_genomes",
    "read_records",
    "check_readable",
    "estimated_bases",
    "is_stream",
    "FIFO_WAIT",
    "STDIN",
]

_SUFFIXES = re.compile(r"(\.(fa|fasta|fna|ffn|faa|frn|fas|fq|fastq|seq|txt))?(\.(gz|gzip|bgz))?$", re.IGNORECASE)
_SNIFF = 1 << 16

#: The path that names standard input, as in most Unix tools.
STDIN = "-"

#: Seconds to wait for the first byte of a FIFO or pipe before refusing it (a FIFO that no
#: process writes to would otherwise block the build for ever).  ``KMERDB_FIFO_WAIT``
#: overrides it.
FIFO_WAIT = 10.0

# Letters of amino acids that are no IUPAC nucleotide code (X is left out: some tools mask
# DNA with it).  A record where these are over _FOREIGN_SHARE of the letters is protein.
# Counted with bytes.translate, deleting every other byte: one C pass, where numpy's fixed cost
# per call was most of the time of reading short reads.
_FOREIGN = b"EFIJLOPQZefijlopqz"
_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_NOT_FOREIGN = bytes(b for b in range(256) if b not in _FOREIGN)
_NOT_LETTER = bytes(b for b in range(256) if b not in _LETTERS)
_FOREIGN_SHARE = 0.10


@dataclass(frozen=True)
class GenomeInput:
    """One genome to index: a label and the files it is read from.

    Attributes
    ----------
    label : str
        Column label.
    paths : tuple of str
        Its FASTA/FASTQ files.
    record : str or None
        With a per-record collection, the record id inside ``paths[0]`` that is this genome.
    """

    label: str
    paths: tuple[str, ...]
    record: str | None = None


def label_from_path(path: str | os.PathLike) -> str:
    """Label for a file: its name without compression and FASTA/FASTQ suffixes.

    ``GCF_000005845.2_ASM584v2_genomic.fna.gz`` -> ``GCF_000005845.2_ASM584v2_genomic``;
    ``-`` (standard input) -> ``stdin``.
    """
    if os.fspath(path) == STDIN:
        return "stdin"
    name = os.path.basename(os.fspath(path))
    stem = _SUFFIXES.sub("", name)
    return stem or name


def _check_label(label: object) -> str:
    if not isinstance(label, str) or not label or any(c in label for c in "\t\n\r") or label != label.strip():
        raise InvalidParameterError("label", label, "a genome label is a non-empty string without tabs or newlines")
    return label


def resolve_genomes(genomes: Mapping[str, object] | Sequence[GenomeInput]) -> list[GenomeInput]:
    """Normalize the ``genomes`` argument of :func:`kmerdb.build`.

    Parameters
    ----------
    genomes : mapping or sequence of GenomeInput
        ``label -> path`` or ``label -> [paths]``, or ready :class:`GenomeInput` objects.

    Raises
    ------
    InvalidParameterError
        Empty collection, bad label, or a genome without files.
    DuplicateLabelError
        A label given twice.
    InputError
        A file is missing, empty, unreadable or binary.
    """
    if isinstance(genomes, Mapping):
        items = []
        for label, paths in genomes.items():
            _check_label(label)
            if isinstance(paths, (str, os.PathLike)):
                files: Iterable = [paths]
            elif isinstance(paths, bytes) or not isinstance(paths, Iterable):
                raise InvalidTypeError(f"genomes[{label!r}]", paths, "a path or a list of paths")
            else:
                files = paths
            items.append(GenomeInput(label, tuple(_input_path(p, f"genomes[{label!r}]") for p in files)))
    elif isinstance(genomes, (str, bytes, os.PathLike)) or not isinstance(genomes, Iterable):
        raise InvalidTypeError("genomes", genomes, "a mapping label -> path(s), or a list of GenomeInput")
    else:
        items = list(genomes)
        if not all(isinstance(g, GenomeInput) for g in items):
            raise InvalidTypeError("genomes", genomes, "a mapping label -> path(s), or a list of GenomeInput")
    if not items:
        raise InvalidParameterError("genomes", [], "no genome to index")
    seen: set[str] = set()
    for g in items:
        _check_label(g.label)
        if g.label in seen:
            raise DuplicateLabelError(g.label, "every genome needs its own label")
        seen.add(g.label)
        if not g.paths:
            raise InvalidParameterError("genomes", g.label, "a genome needs at least one file")
        for p in g.paths:
            _input_path(p, f"genomes[{g.label!r}]")
            check_readable(p)
    return items


def _input_path(value: object, argument: str) -> str:
    """An input path as ``str``; None, numbers and empty strings name no file."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidTypeError(argument, value, "a path (str or os.PathLike)")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise InvalidTypeError(argument, value, "a path (str or os.PathLike)")
    if not path:
        raise InvalidParameterError(argument, path, "an empty string names no input file")
    return path


def _stat_kind(path: str) -> str:
    """``"file"`` or ``"stream"`` (FIFO, pipe, socket); anything else is one InputError.

    Only a ``stat``: nothing is opened, so a FIFO is neither blocked on nor drained here.
    ``-`` is standard input: a stream whatever it is, unless it is a terminal.
    """
    if not path:
        raise InputError("''", "an empty string names no input file")
    if path == STDIN:
        try:
            terminal = os.isatty(_stdin_fd())
        except (OSError, ValueError):  # no descriptor: the open says why
            terminal = False
        if terminal:
            raise InputError(path, "standard input is a terminal: pipe or redirect FASTA/FASTQ into it")
        return "stream"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "stream"
    if stat.S_ISDIR(mode):
        raise InputError(path, "is a directory, not a FASTA/FASTQ file")
    if stat.S_ISCHR(mode) and os.path.realpath(path).startswith(("/dev/pts/", "/dev/tty")):
        raise InputError(path, "is a terminal, not a FASTA/FASTQ file: pipe or redirect the data into it")
    raise InputError(path, "is a device, not a FASTA/FASTQ file")


def is_stream(path: str) -> bool:
    """True for a FIFO or pipe (read once, as a stream); False for a regular file.

    Raises
    ------
    InputError
        Missing, a directory, a terminal or another device.
    """
    return _stat_kind(path) == "stream"


def _fifo_wait() -> float:
    text = os.environ.get("KMERDB_FIFO_WAIT")
    if text:
        try:
            return max(0.0, float(text))
        except ValueError:
            raise InvalidParameterError("KMERDB_FIFO_WAIT", text, "expected a number of seconds") from None
    return FIFO_WAIT


def _open_stream(path: str) -> io.BufferedReader:
    """Open a FIFO or pipe without blocking, waiting a bounded time for its first byte.

    A plain ``open`` of a FIFO blocks until some process opens it for writing, for ever if
    none does.  Opened non-blocking, the open returns at once; ``poll`` then waits for data
    or for a writer that came and went (end of stream).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        wait = _fifo_wait()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        if not poller.poll(int(wait * 1000)):
            raise InputError(path, f"a FIFO or pipe that nothing was written to in {wait:g} s (no writer?)")
        os.set_blocking(fd, True)  # data is there: from now on, read at the writer's pace
        return io.BufferedReader(io.FileIO(fd, "rb", closefd=True), buffer_size=_SNIFF)
    except BaseException:
        os.close(fd)
        raise


def _stdin_fd() -> int:
    """The descriptor of standard input: ``sys.stdin``'s, so that a program embedding kmerdb
    that replaced it is followed, else 0."""
    stdin = sys.stdin
    return stdin.fileno() if stdin is not None else 0


def _open_stdin(path: str) -> io.BufferedReader:
    """Standard input as a binary stream of its own (a duplicate of descriptor 0).

    Unlike a named FIFO, nothing here can block for ever on a missing writer: a pipe's writer
    exists from the start, and a slow one (an aligner, a download) is waited for.
    """
    try:
        fd = os.dup(_stdin_fd())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read standard input: {getattr(exc, 'strerror', None) or exc}") from None
    return io.BufferedReader(io.FileIO(fd, "rb", closefd=True), buffer_size=_SNIFF)


def _check_head(path: str, head: bytes, stream: bool) -> str:
    """Refuse, from its first bytes, an input that is empty, binary, or not FASTA/FASTQ.

    Returns
    -------
    str
        ``"fasta"`` or ``"fastq"``, from the first character of the content (not the name).
    """
    what = "stream" if stream else "file"
    if not head:
        raise InputError(path, f"empty {what}")
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _SNIFF)
        except zlib.error:
            raise InputError(path, "damaged gzip data") from None
        if not head:
            raise InputError(path, f"empty {what} (gzip with no content)")
    if b"\x00" in head:
        raise InputError(path, f"binary {what}, not FASTA/FASTQ")
    first = head.lstrip()[:1]
    if not first:
        raise InputError(path, f"empty {what} (only white space)")
    if first not in (b">", b"@"):
        raise InputError(path, "not FASTA or FASTQ: a record must start with '>' or '@'", line=1)
    return "fasta" if first == b">" else "fastq"


def check_readable(path: str) -> None:
    """Fail early, with one clear message, on a missing, empty, unreadable or binary file.

    A FIFO or pipe is only checked to be one: reading its head would take bytes that
    nothing can give back.  Its content is checked as it is read (:func:`read_records`).
    """
    if _stat_kind(path) == "stream":
        return
    _file_format(path)


def _file_format(path: str) -> str:
    """Check a regular file's head (see :func:`check_readable`) and return its format."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    return _check_head(path, head, stream=False)


def estimated_bases(path: str) -> int:
    """About how many bases a file holds, without reading it (for progress totals).

    Plain files: their size.  Gzip: the trailer's ISIZE (uncompressed size mod 2**32) when
    it is plausible, else four times the compressed size.
    """
    if _stat_kind(path) == "stream":
        return 0  # unknown until read; the progress total is corrected as it is
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if fh.read(2) == b"\x1f\x8b" and size >= 18:
            fh.seek(-4, os.SEEK_END)
            isize = int.from_bytes(fh.read(4), "little")
            return isize if size <= isize < 64 * size else 4 * size
    return size


def parse_input_args(
    inputs: Sequence[str], manifest: str | None = None, per_record: bool = False
) -> list[GenomeInput]:
    """Turn console inputs into genomes.

    Each input is ``PATH`` (label from the file name) or ``LABEL=PATH[,PATH...]``;
    ``manifest`` is a TSV of ``label<TAB>path`` lines (paths relative to it; a label on
    several lines gathers several files).  With ``per_record`` every record of every file
    becomes its own genome, labelled by its record id.
    """
    order: list[str] = []
    files: dict[str, list[str]] = {}

    def add(label: str, paths: list[str]) -> None:
        if label in files:
            raise DuplicateLabelError(label, "give each genome its own label (LABEL=PATH)")
        order.append(label)
        files[label] = paths

    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise InvalidTypeError("inputs", inputs, "a list of PATH or LABEL=PATH strings")
    for arg in inputs:
        if not isinstance(arg, str):
            raise InvalidTypeError("inputs", arg, "PATH or LABEL=PATH strings")
        if not arg:
            raise InvalidParameterError("inputs", arg, "an empty string names no input file")
        label, eq, rest = arg.partition("=")
        if eq and label and not os.path.exists(arg):
            add(_check_label(label), [p for p in rest.split(",") if p])
        else:
            add(label_from_path(arg), [arg])
    if manifest is not None:
        grouped: dict[str, list[str]] = {}
        for label, path in read_manifest(manifest):
            grouped.setdefault(label, []).append(path)
        for label, paths in grouped.items():
            add(label, paths)
    if per_record:
        return per_record_genomes([p for label in order for p in files[label]])
    return [GenomeInput(label, tuple(files[label])) for label in order]


def read_manifest(path: str) -> list[tuple[str, str]]:
    """Read a ``label<TAB>path`` manifest; paths are relative to the manifest's folder.

    Blank lines and lines starting with ``#`` are skipped.
    """
    if not os.path.exists(path):
        raise InputError(path, "no such manifest")
    base = os.path.dirname(os.path.abspath(path))
    rows: list[tuple[str, str]] = []
    raw = _open_stream(path) if _stat_kind(path) == "stream" else open(path, "rb")  # noqa: SIM115 - closed below
    try:
        with io.TextIOWrapper(raw, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                fields = line.split("\t")
                if len(fields) != 2 or not fields[0] or not fields[1]:
                    raise InputError(path, "expected 'label<TAB>path'", line=lineno)
                label = fields[0].strip()
                if label.lower() == "label" and fields[1].strip().lower() == "path" and not rows:
                    continue  # header line
                p = fields[1].strip()
                rows.append((_check_label(label), p if os.path.isabs(p) else os.path.join(base, p)))
    except UnicodeDecodeError:
        raise InputError(path, "manifest is not UTF-8 text") from None
    if not rows:
        raise InputError(path, "manifest lists no genome")
    return rows


def per_record_genomes(paths: Sequence[str]) -> list[GenomeInput]:
    """One genome per record of each file, labelled by the record id (first word of its header)."""
    out = []
    for path in paths:
        if is_stream(path):
            raise InputError(path, "per-record genomes read their file twice: give a regular file, not a FIFO or pipe")
        check_readable(path)
        for name, _ in read_records(path):
            out.append(GenomeInput(_check_label(name), (path,), record=name))
    labels = [g.label for g in out]
    if len(set(labels)) != len(labels):
        dup = next(lab for lab in labels if labels.count(lab) > 1)
        raise DuplicateLabelError(dup, "record ids must be unique with per-record genomes")
    if not out:
        raise InputError(paths[0] if paths else "-", "no records")
    return out


def read_records(path: str, progress=None) -> Iterator[tuple[str, bytes]]:
    """Yield ``(record_id, sequence_bytes)`` for every record of a FASTA/FASTQ file.

    Parameters
    ----------
    path : str
        Plain or gzip file (detected from its first bytes).
    progress : callable, optional
        Called with the number of raw (possibly compressed) bytes consumed so far.

    Raises
    ------
    InputError
        Naming the file and the line for malformed input.
    """
    streamed = is_stream(path)
    if streamed:
        raw: io.BufferedReader = _open_stdin(path) if path == STDIN else _open_stream(path)
        try:
            fileformat = _check_head(path, raw.peek(_SNIFF), stream=True)  # peeked, not taken: dnaio reads it again
        except BaseException:
            raw.close()
            raise
    else:
        fileformat = _file_format(path)
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed by the with block below; opened apart to name the error
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    with raw:
        stream = _decompressed(raw)
        n = 0
        try:
            # the format from the content: dnaio would take it from a file name (x.fa holding FASTQ)
            with dnaio.open(stream, fileformat=fileformat) as reader:
                for rec in reader:
                    n += 1
                    seq = rec.sequence.encode("ascii")
                    name = rec.name.split(None, 1)[0] if rec.name.strip() else f"record{n}"
                    _check_nucleotides(path, n, name, seq)
                    yield name, seq
                    if progress is not None and not streamed:
                        progress(raw.tell())
        except dnaio.exceptions.FileFormatError as exc:
            found = getattr(exc, "line", None)
            line = found + 1 if found is not None else None
            msg = str(exc)
            msg = re.sub(r"^Error in FAST[AQ] file at (line \d+|unknown line): ", "", msg)
            raise InputError(path, f"malformed {'FASTQ' if 'FASTQ' in str(exc) else 'FASTA'}: {msg}", line) from None
        except UnicodeDecodeError:
            raise InputError(path, "binary or non-ASCII content, not FASTA/FASTQ") from None
        except _GZIP_ERRORS as exc:
            raise InputError(path, f"damaged gzip data ({exc or 'truncated'})") from None
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
        if n == 0:
            raise InputError(path, "no records")


def _isal_error() -> tuple[type[BaseException], ...]:
    try:  # the error of the ISA-L inflater xopen uses where it is installed
        import isal.isal_zlib as isal_zlib
    except ImportError:
        return ()
    error: type[BaseException] = vars(isal_zlib)["error"]
    return (error,)


#: What a damaged or truncated gzip stream raises, through xopen or the standard library.
_GZIP_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error, *_isal_error())


def _decompressed(raw: io.BufferedReader) -> BinaryIO:
    """``raw`` itself, or its gzip content read through xopen (ISA-L where installed: measured
    1.3x faster than the standard library's ``gzip`` on a 1.4 MB genome), told by its first bytes."""
    if raw.peek(2)[:2] != b"\x1f\x8b":
        return raw
    return xopen.xopen(raw, "rb", threads=0)


def _check_nucleotides(path: str, n: int, name: str, seq: bytes) -> None:
    """Refuse a record that is protein, not DNA: no k-mer would come out of it.

    Looks at the first 64 KiB of the record (counted by bytes.translate in C): a protein
    shows itself in a few hundred letters, and a genome is not read twice for this.
    """
    head = seq[:_SNIFF]
    foreign = len(head.translate(None, _NOT_FOREIGN))
    if not foreign:
        return  # DNA, the usual case: the letters need no counting
    letters = len(head.translate(None, _NOT_LETTER))
    if letters and foreign > _FOREIGN_SHARE * letters:
        share = 100 * foreign / letters
        raise InputError(
            path,
            f"record {name!r} looks like protein, not DNA: {share:.0f}% of its letters are amino-acid codes "
            "(E, F, I, L, P, Q...) that are no nucleotide; kmerdb indexes nucleotide sequences",
            _record_line(path, n),
        )


def _record_line(path: str, n: int) -> int | None:
    """Line where the n-th record (1-based) of a regular file starts (for error messages only)."""
    if is_stream(path):
        return None  # its bytes are gone
    with open(path, "rb") as raw, _decompressed(raw) as fh:
        fastq = None
        seen = 0
        for lineno, line in enumerate(fh, 1):
            if fastq is None:
                fastq = line.startswith(b"@")
            # FASTQ records are four lines (as dnaio reads them); FASTA records start at '>'
            if (fastq and lineno % 4 == 1) or (not fastq and line.startswith(b">")):
                seen += 1
                if seen == n:
                    return lineno
    return None
