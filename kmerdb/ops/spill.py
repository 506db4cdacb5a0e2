"""Spill buckets: the external-memory half of a build.

Super-k-mers are appended to one bucket per partition.  A bucket keeps a bounded
in-RAM buffer; when the buffers of all buckets together pass their budget, the
largest are flushed to a small pool of spill files.  Each flush reserves a byte range
(an extent) at the end of one pool file and writes it there with ``os.pwrite``, so the
number of open files stays fixed however many partitions there are.

Spill files are named files in a spill folder inside the database directory (see
:func:`spill_folder`), read back by path: the task that reads a bucket may run in
another process or on another machine that sees the same folder.  A pool writes its
files under temporary names and renames them into place when it is closed, so a task
that is run again (a Dask worker died) replaces its files whole.  The folder is removed
when the operation ends, however it ends; the leftovers of a killed writer are inside a
database that says ``building`` (a build) or are removed by the next writer (an append).

A super-k-mer is stored as its k-mer count (uint16) plus its bases, 2 bits each,
4 to a byte, padded to a whole byte.  Every extent carries its record count, byte
counts and a checksum; reading it back checks all of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import mmh3
import numpy as np

from kmerdb.core import kernels
from kmerdb.errors import BuildIntegrityError, CorruptDatabaseError, DiskFullError
from kmerdb.store.storage import at_path, folder_at, open_at, write_guard

__all__ = [
    "SPILL_DIR",
    "pack_superkmers",
    "packed_nbytes",
    "Extent",
    "Bucket",
    "SpillPool",
    "BucketSet",
    "SpillIndex",
    "spill_folder",
    "read_bucket",
    "superkmer_kmers",
]

#: Name of the spill folder inside a database directory.
SPILL_DIR = "spill"

_LEN_DTYPE = np.dtype("<u2")


def packed_nbytes(n_kmers: np.ndarray, k: int) -> np.ndarray:
    """Bytes of each packed super-k-mer of ``n_kmers`` k-mers (int64): its ``n_kmers + k - 1``
    bases, four to a byte."""
    return (np.asarray(n_kmers, dtype=np.int64) + (k - 1) + 3) >> 2


def pack_superkmers(codes: np.ndarray, starts: np.ndarray, n_kmers: np.ndarray, k: int):
    """Pack super-k-mers of one coded sequence, 4 bases per byte.

    Parameters
    ----------
    codes : ndarray of uint8
        The sequence, 2-bit codes (every base a super-k-mer covers is valid).
    starts, n_kmers : ndarray of int64
        First base and k-mer count of each super-k-mer.
    k : int
        k-mer length.

    Returns
    -------
    lengths : ndarray of uint16
        ``n_kmers`` as stored.
    packed : ndarray of uint8
        The bases; super-k-mer i takes ``ceil((n_kmers[i] + k - 1) / 4)`` bytes.
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    n_kmers = np.ascontiguousarray(n_kmers, dtype=np.int64)
    if starts.size and int((starts + n_kmers + (k - 1)).max()) > codes.size:
        raise BuildIntegrityError("a super-k-mer runs past the end of its sequence")
    packed = np.empty(int(packed_nbytes(n_kmers, k).sum()), dtype=np.uint8)
    kernels.pack_superkmers(np.ascontiguousarray(codes, dtype=np.uint8), starts, n_kmers, k, packed)
    return n_kmers.astype(_LEN_DTYPE), packed


@dataclass(frozen=True)
class Extent:
    """One flushed run of a bucket: ``n_records`` super-k-mers in spill file ``file``.

    ``file`` is the file's name inside the spill folder.  Layout at ``offset``:
    ``n_records`` uint16 lengths, then ``n_packed`` bytes.  ``genome_runs`` is a tuple of
    (genome index, record count) in record order.
    """

    file: str
    offset: int
    n_records: int
    n_packed: int
    checksum: int
    genome_runs: tuple

    @property
    def nbytes(self) -> int:
        return self.n_records * _LEN_DTYPE.itemsize + self.n_packed


@dataclass(frozen=True)
class Bucket:
    """What a partition's bucket holds: its extents and, counted apart, what went in."""

    extents: tuple[Extent, ...]
    n_records: int
    n_bytes: int


class SpillPool:
    """A few named spill files in ``directory``, written at reserved offsets.

    Parameters
    ----------
    directory : str
        The spill folder (it must exist: a task never creates it, so a task that outlives
        its operation cannot bring a removed folder back).
    n_files : int
        Files to spread the extents over.
    name : str
        Prefix of the file names (``{name}-{i}.spill``); unique per writer.
    """

    def __init__(self, directory: str, n_files: int = 1, name: str = "pool") -> None:
        self.directory = directory
        self.names = [f"{name}-{i}.spill" for i in range(max(1, n_files))]
        # temporary names unique to this writer: a rerun of the same task never shares them
        token = f"tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._temps = [f"{n}.{token}" for n in self.names]
        self.fds: list[int] = []
        self.sizes: list[int] = []
        # the spill folder of a database is ``root/spill``: opened from ``root`` folder by
        # folder, never created here, and every file made and renamed in it by descriptor
        self._root, sub = os.path.split(os.path.normpath(directory))
        with folder_at(self._root, sub, what="spill folder") as folder:
            self._folder = os.dup(folder)
        try:
            for tmp in self._temps:
                with write_guard(self._root, os.path.join(directory, tmp)):
                    self.fds.append(open_at(self._folder, tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, tmp, "spill file", 0o600))
                self.sizes.append(0)
        except BaseException:
            self.discard()
            raise
        self._next = 0

    def write(self, data: bytes | memoryview) -> tuple[str, int]:
        """Reserve an extent, write ``data`` there; returns (file name, offset)."""
        i = self._next
        self._next = (self._next + 1) % len(self.fds)
        offset = self.sizes[i]
        self.sizes[i] += len(data)
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(self.fds[i], view[done:], offset + done)
        except OSError as exc:
            full = DiskFullError.from_error(exc, os.path.join(self.directory, self.names[i]))
            if full is None:
                raise
            raise full from None
        return self.names[i], offset

    def path(self, name: str) -> str:
        """The path of spill file ``name`` once the pool is closed."""
        return os.path.join(self.directory, name)

    def close(self) -> None:
        """Close the files and rename them into place (after this they are read by name).

        A rename replaces a file of the same name: that of an earlier run of the same task.
        """
        fds, self.fds = self.fds, []
        for fd in fds:
            os.close(fd)
        try:
            for tmp, name in zip(self._temps, self.names):
                with write_guard(self._root, self.path(name)):
                    os.replace(tmp, name, src_dir_fd=self._folder, dst_dir_fd=self._folder)
        except BaseException:
            self.discard()
            raise
        self._close_folder()

    def discard(self) -> None:
        """Close and delete the files (a writer that failed)."""
        fds, self.fds = self.fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._folder >= 0:
            for tmp in self._temps:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=self._folder)
        self._close_folder()

    def _close_folder(self) -> None:
        folder, self._folder = self._folder, -1
        if folder >= 0:
            os.close(folder)

    @property
    def bytes_written(self) -> int:
        return sum(self.sizes)


class BucketSet:
    """One spill bucket per partition with a shared RAM buffer budget."""

    def __init__(self, n_partitions: int, k: int, pool: SpillPool, buffer_bytes: int) -> None:
        self.k = k
        self.pool = pool
        self.buffer_bytes = max(1, int(buffer_bytes))
        self._buffers: list[list] = [[] for _ in range(n_partitions)]
        self._buffered = np.zeros(n_partitions, dtype=np.int64)
        self.extents: list[list[Extent]] = [[] for _ in range(n_partitions)]
        self.records_in = np.zeros(n_partitions, dtype=np.int64)
        self.bytes_in = np.zeros(n_partitions, dtype=np.int64)

    def add(self, partition: int, genome: int, lengths: np.ndarray, packed: np.ndarray) -> None:
        """Append super-k-mers of one genome to a bucket."""
        if lengths.size == 0:
            return
        self._buffers[partition].append((genome, lengths, packed))
        size = lengths.nbytes + packed.nbytes
        self._buffered[partition] += size
        self.records_in[partition] += lengths.size
        self.bytes_in[partition] += packed.nbytes
        if self._buffered.sum() > self.buffer_bytes:
            # flush the largest buckets until half the budget is free
            for p in np.argsort(self._buffered)[::-1]:
                if self._buffered.sum() <= self.buffer_bytes // 2 or self._buffered[p] == 0:
                    break
                self.flush(int(p))

    def flush(self, partition: int) -> None:
        """Write a bucket's buffer to the pool as one extent."""
        items = self._buffers[partition]
        if not items:
            return
        lengths = np.concatenate([it[1] for it in items]).astype(_LEN_DTYPE, copy=False)
        packed = np.concatenate([it[2] for it in items])
        runs: list[tuple[int, int]] = []
        for genome, lens, _ in items:
            if runs and runs[-1][0] == genome:
                runs[-1] = (genome, runs[-1][1] + lens.size)
            else:
                runs.append((genome, lens.size))
        data = lengths.tobytes() + packed.tobytes()
        file, offset = self.pool.write(data)
        self.extents[partition].append(
            Extent(file, offset, lengths.size, packed.size, mmh3.hash(data, signed=False), tuple(runs))
        )
        self._buffers[partition] = []
        self._buffered[partition] = 0

    def flush_all(self) -> None:
        for p in range(len(self._buffers)):
            self.flush(p)


class SpillIndex:
    """The caller's record of every partition's bucket, gathered from the writers' extents.

    Writers (scatter tasks) count what they put in each bucket apart from the extents they
    write, and the index adds both up, so that a gather can check what it reads back against
    what went in.
    """

    def __init__(self, n_partitions: int) -> None:
        self.extents: list[list[Extent]] = [[] for _ in range(n_partitions)]
        self.records_in = np.zeros(n_partitions, dtype=np.int64)
        self.bytes_in = np.zeros(n_partitions, dtype=np.int64)

    def add(self, partitions: Sequence[int], records: Sequence[int], nbytes: Sequence[int], extents) -> None:
        """Add one writer's buckets: per partition, its records, bytes and extents."""
        for p, r, b, ext in zip(partitions, records, nbytes, extents):
            self.records_in[p] += r
            self.bytes_in[p] += b
            self.extents[p].extend(ext)

    def bucket(self, partition: int) -> Bucket:
        """A partition's bucket, its extents in file order (so reads do not depend on which
        writer finished first)."""
        extents = sorted(self.extents[partition], key=lambda e: (e.file, e.offset))
        return Bucket(tuple(extents), int(self.records_in[partition]), int(self.bytes_in[partition]))


@contextmanager
def spill_folder(root: str) -> Iterator[str]:
    """The spill folder of an operation writing into database ``root``, removed at the end.

    Call it as the one writer of ``root`` (a new database, or holding the writer lock): a
    folder left by a killed writer is removed first.
    """
    path = os.path.join(root, SPILL_DIR)
    _remove_spill_folder(root)
    with at_path(root, SPILL_DIR, what="spill folder") as (folder, name):
        try:
            os.mkdir(name, 0o755, dir_fd=folder)
        except FileExistsError:  # not removable: a symlink, or not a folder
            raise CorruptDatabaseError(path, "spill folder cannot be replaced (a symlink, or not a folder)") from None
    try:
        yield path
    finally:
        _remove_spill_folder(root)


def _remove_spill_folder(root: str) -> None:
    """Remove ``root/spill`` and everything in it, by descriptor (rmtree never follows a symlink there)."""
    with at_path(root, SPILL_DIR, what="spill folder") as (folder, name):
        shutil.rmtree(name, ignore_errors=True, dir_fd=folder)


def read_bucket(directory: str, extents: Sequence[Extent], k: int, expected_records: int, expected_bytes: int):
    """Read a bucket back from spill folder ``directory`` and check it against what went in.

    Returns
    -------
    genomes : ndarray of int64
        Genome index of each super-k-mer.
    n_kmers : ndarray of int64
        k-mer count of each super-k-mer.
    packed : ndarray of uint8
        The packed bases, super-k-mers back to back.

    Raises
    ------
    BuildIntegrityError
        If any extent's bytes, records or checksum differ from what was written.
    """
    gen_parts, len_parts, packed_parts = [], [], []
    fds: dict[str, int] = {}
    if not extents:
        chunks: list[bytes] = []
    else:
        root, sub = os.path.split(os.path.normpath(directory))
        try:
            with folder_at(root, sub, what="spill folder") as folder:
                chunks = [_read_extent(directory, folder, fds, ext) for ext in extents]
        except FileNotFoundError:
            raise BuildIntegrityError(f"spill folder {directory} is missing") from None
        finally:
            for fd in fds.values():
                os.close(fd)
    for ext, data in zip(extents, chunks):
        if len(data) != ext.nbytes or mmh3.hash(data, signed=False) != ext.checksum:
            raise BuildIntegrityError(
                f"spill extent at offset {ext.offset} of spill file {ext.file} came back damaged "
                f"({len(data)} of {ext.nbytes} bytes, checksum mismatch)"
            )
        lengths = np.frombuffer(data, dtype=_LEN_DTYPE, count=ext.n_records).astype(np.int64)
        packed = np.frombuffer(data, dtype=np.uint8, offset=ext.n_records * _LEN_DTYPE.itemsize)
        if int(packed_nbytes(lengths, k).sum()) != packed.size:
            raise BuildIntegrityError("spill extent: super-k-mer lengths disagree with its packed bytes")
        gen_parts.append(np.repeat([g for g, _ in ext.genome_runs], [c for _, c in ext.genome_runs]))
        len_parts.append(lengths)
        packed_parts.append(packed)
    n_records = sum(p.size for p in len_parts)
    n_bytes = sum(p.size for p in packed_parts)
    if n_records != expected_records or n_bytes != expected_bytes:
        raise BuildIntegrityError(
            f"spill bucket returned {n_records} records / {n_bytes} bytes, "
            f"but {expected_records} records / {expected_bytes} bytes went in"
        )
    if not len_parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.uint8)
    return (
        np.concatenate(gen_parts).astype(np.int64),
        np.concatenate(len_parts),
        np.concatenate(packed_parts),
    )


def _read_extent(directory: str, folder: int, fds: dict[str, int], ext: Extent) -> bytes:
    fd = fds.get(ext.file)
    if fd is None:
        try:
            fd = fds[ext.file] = open_at(folder, ext.file, os.O_RDONLY | os.O_NONBLOCK, os.path.join(directory, ext.file), "spill file")
        except FileNotFoundError:
            raise BuildIntegrityError(f"spill file {ext.file} is missing from {directory}") from None
    parts = []
    got = 0
    while got < ext.nbytes:
        chunk = os.pread(fd, ext.nbytes - got, ext.offset + got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def superkmer_kmers(n_kmers: np.ndarray, packed: np.ndarray, k: int) -> np.ndarray:
    """Canonical k-mers of packed super-k-mers (uint64), super-k-mer after super-k-mer, each
    one's in order (``n_kmers[i]`` of super-k-mer i), decoded by one compiled pass
    (:func:`kmerdb.core.kernels.superkmer_kmers`; 21 -> 5 ns per k-mer against windows made
    in numpy).

    Raises
    ------
    BuildIntegrityError
        ``packed`` holds fewer bytes than the super-k-mers take.
    """
    n_kmers = np.ascontiguousarray(n_kmers, dtype=np.int64)
    if int(packed_nbytes(n_kmers, k).sum()) > packed.size:
        raise BuildIntegrityError("spill extent: super-k-mer lengths disagree with its packed bytes")
    out = np.empty(int(n_kmers.sum()), dtype=np.uint64)
    kernels.superkmer_kmers(np.ascontiguousarray(packed, dtype=np.uint8), n_kmers, k, out)
    return out
