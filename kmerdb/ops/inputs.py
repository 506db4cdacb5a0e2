"""Genome inputs: labels, manifests, per-record collections, and record reading.

A genome is one or more FASTA/FASTQ files (plain or gzip, detected by content,
not by name), or one record of a multi-FASTA with ``per_record``.  Every failure to
read an input becomes one :class:`~kmerdb.errors.InputError` naming the file and,
where it applies, the line.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

import dnaio

from kmerdb.errors import DuplicateLabelError, InputError, InvalidParameterError

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
]

_SUFFIXES = re.compile(r"(\.(fa|fasta|fna|ffn|faa|frn|fas|fq|fastq|seq|txt))?(\.(gz|gzip|bgz))?$", re.IGNORECASE)
_SNIFF = 1 << 16


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

    ``GCF_000005845.2_ASM584v2_genomic.fna.gz`` -> ``GCF_000005845.2_ASM584v2_genomic``.
    """
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
            files = [paths] if isinstance(paths, (str, os.PathLike)) else cast(Iterable, paths)
            items.append(GenomeInput(_check_label(label), tuple(os.fspath(p) for p in files)))
    else:
        items = list(genomes)
        if not all(isinstance(g, GenomeInput) for g in items):
            raise InvalidParameterError("genomes", type(genomes).__name__, "expected a mapping label -> path(s)")
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
            check_readable(p)
    return items


def check_readable(path: str) -> None:
    """Fail early, with one clear message, on a missing, empty, unreadable or binary file."""
    if not os.path.exists(path):
        raise InputError(path, "no such file")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, not a FASTA/FASTQ file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise InputError(path, "empty file")
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, _SNIFF)
        except zlib.error:
            raise InputError(path, "damaged gzip data") from None
        if not head:
            raise InputError(path, "empty file (gzip with no content)")
    if b"\x00" in head:
        raise InputError(path, "binary file, not FASTA/FASTQ")
    first = head.lstrip()[:1]
    if not first:
        raise InputError(path, "empty file (only white space)")
    if first not in (b">", b"@"):
        raise InputError(path, "not FASTA or FASTQ: a record must start with '>' or '@'", line=1)


def estimated_bases(path: str) -> int:
    """About how many bases a file holds, without reading it (for progress totals).

    Plain files: their size.  Gzip: the trailer's ISIZE (uncompressed size mod 2**32) when
    it is plausible, else four times the compressed size.
    """
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

    for arg in inputs:
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
    try:
        with open(path, encoding="utf-8") as fh:
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
    check_readable(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the with block below; opened apart to name the error
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    with raw:
        magic = raw.read(2)
        raw.seek(0)
        stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw)
        n = 0
        try:
            with dnaio.open(stream) as reader:
                for rec in reader:
                    n += 1
                    yield rec.name.split(None, 1)[0] if rec.name.strip() else f"record{n}", rec.sequence.encode(
                        "ascii"
                    )
                    if progress is not None:
                        progress(raw.tell())
        except dnaio.exceptions.FileFormatError as exc:
            found = getattr(exc, "line", None)
            line = found + 1 if found is not None else None
            msg = str(exc)
            msg = re.sub(r"^Error in FAST[AQ] file at (line \d+|unknown line): ", "", msg)
            raise InputError(path, f"malformed {'FASTQ' if 'FASTQ' in str(exc) else 'FASTA'}: {msg}", line) from None
        except UnicodeDecodeError:
            raise InputError(path, "binary or non-ASCII content, not FASTA/FASTQ") from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(path, f"damaged gzip data ({exc or 'truncated'})") from None
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
        if n == 0:
            raise InputError(path, "no records")
