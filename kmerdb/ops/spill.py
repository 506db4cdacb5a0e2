"""Spill buckets: the external-memory half of a build.

Super-k-mers are appended to one bucket per partition.  A bucket keeps a bounded
in-RAM buffer; when the buffers of all buckets together pass their budget, the
largest are flushed to a small pool of shared temp files.  Each flush reserves a
byte range (an extent) at the end of one pool file and writes it there with
``os.pwrite``, so the number of open files stays fixed however many partitions there
are.  Pool files are unlinked as soon as they are created: a killed build leaves
nothing behind, and forked gather workers read them through inherited descriptors.

A super-k-mer is stored as its k-mer count (uint16) plus its bases, 2 bits each,
4 to a byte, padded to a whole byte.  Every extent carries its record count, byte
counts and a checksum; reading it back checks all of them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import mmh3
import numpy as np

from kmerdb.errors import BuildIntegrityError

__all__ = ["pack_superkmers", "unpack_bases", "Extent", "SpillPool", "BucketSet"]

_LEN_DTYPE = np.dtype("<u2")


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
    nbases = n_kmers + (k - 1)
    nbytes = (nbases + 3) >> 2
    out_start = np.cumsum(nbytes) - nbytes  # in bytes
    total = int(nbytes.sum()) * 4
    # base offset inside its super-k-mer, for every padded output position
    owner = np.repeat(np.arange(starts.size), nbytes * 4)
    offset = np.arange(total) - np.repeat(out_start * 4, nbytes * 4)
    inside = offset < nbases[owner]
    src = np.where(inside, starts[owner] + offset, 0)
    bases = np.where(inside, codes[src], 0).astype(np.uint8).reshape(-1, 4)
    packed = (bases[:, 0] << 6) | (bases[:, 1] << 4) | (bases[:, 2] << 2) | bases[:, 3]
    return n_kmers.astype(_LEN_DTYPE), packed.astype(np.uint8)


def unpack_bases(packed: np.ndarray) -> np.ndarray:
    """Inverse of the packing: 4 codes per byte, most significant first."""
    out = np.empty((packed.size, 4), dtype=np.uint8)
    out[:, 0] = packed >> 6
    out[:, 1] = (packed >> 4) & 3
    out[:, 2] = (packed >> 2) & 3
    out[:, 3] = packed & 3
    return out.ravel()


@dataclass(frozen=True)
class Extent:
    """One flushed run of a bucket: ``n_records`` super-k-mers in ``file``.

    Layout at ``offset``: ``n_records`` uint16 lengths, then ``n_packed`` bytes.
    ``genome_runs`` is a tuple of (genome index, record count) in record order.
    """

    file: int
    offset: int
    n_records: int
    n_packed: int
    checksum: int
    genome_runs: tuple

    @property
    def nbytes(self) -> int:
        return self.n_records * _LEN_DTYPE.itemsize + self.n_packed


class SpillPool:
    """A few unlinked temp files shared by all buckets, written at reserved offsets."""

    def __init__(self, directory: str, n_files: int) -> None:
        self.fds: list[int] = []
        self.sizes: list[int] = []
        for _ in range(max(1, n_files)):
            fd, name = tempfile.mkstemp(prefix=".spill-", dir=directory)
            os.unlink(name)
            self.fds.append(fd)
            self.sizes.append(0)
        self._next = 0

    def write(self, data: bytes | memoryview) -> tuple[int, int]:
        """Reserve an extent, write ``data`` there; returns (file index, offset)."""
        i = self._next
        self._next = (self._next + 1) % len(self.fds)
        offset = self.sizes[i]
        self.sizes[i] += len(data)
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self.fds[i], view[done:], offset + done)
        return i, offset

    def read(self, file: int, offset: int, nbytes: int) -> bytes:
        """Read back ``nbytes`` at ``offset`` of pool file ``file``."""
        parts = []
        got = 0
        while got < nbytes:
            chunk = os.pread(self.fds[file], nbytes - got, offset + got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []

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


def read_bucket(pool: SpillPool, extents: list[Extent], k: int, expected_records: int, expected_bytes: int):
    """Read a bucket back and check it against what went in.

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
    for ext in extents:
        data = pool.read(ext.file, ext.offset, ext.nbytes)
        if len(data) != ext.nbytes or mmh3.hash(data, signed=False) != ext.checksum:
            raise BuildIntegrityError(
                f"spill extent at offset {ext.offset} of temp file {ext.file} came back damaged "
                f"({len(data)} of {ext.nbytes} bytes, checksum mismatch)"
            )
        lengths = np.frombuffer(data, dtype=_LEN_DTYPE, count=ext.n_records).astype(np.int64)
        packed = np.frombuffer(data, dtype=np.uint8, offset=ext.n_records * _LEN_DTYPE.itemsize)
        if int(((lengths + (k - 1) + 3) >> 2).sum()) != packed.size:
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


def superkmer_kmers(n_kmers: np.ndarray, packed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Canonical k-mers of packed super-k-mers.

    Returns
    -------
    kmers : ndarray of uint64
        Canonical k-mers, super-k-mer after super-k-mer.
    owner : ndarray of int64
        Index of the super-k-mer each k-mer came from.
    """
    from kmerdb.core.kmers import BLOCK, canonical, kmer_windows

    nbytes = (n_kmers + (k - 1) + 3) >> 2
    byte_start = np.cumsum(nbytes) - nbytes
    kmer_parts = []
    # blocks of whole super-k-mers keep the window passes cache-sized
    bounds = np.searchsorted(byte_start * 4, np.arange(0, packed.size * 4 + BLOCK, BLOCK))
    bounds = np.unique(np.append(bounds, n_kmers.size))
    lo = 0
    for hi in bounds[1:]:
        if hi <= lo:
            continue
        b0 = int(byte_start[lo])
        b1 = int(byte_start[hi - 1] + nbytes[hi - 1])
        bases = unpack_bases(packed[b0:b1])
        windows = kmer_windows(bases, k)
        local = (byte_start[lo:hi] - b0) * 4
        counts = n_kmers[lo:hi]
        idx = np.repeat(local - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
        kmer_parts.append(canonical(windows[idx], k))
        lo = int(hi)
    owner = np.repeat(np.arange(n_kmers.size), n_kmers)
    if not kmer_parts:
        return np.zeros(0, dtype=np.uint64), owner
    return np.concatenate(kmer_parts), owner
