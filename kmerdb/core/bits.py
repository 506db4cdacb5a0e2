"""Bit-packed arrays of fixed-width unsigned fields, in numpy.

Fields are laid out most significant bit first: field ``i`` of width ``w`` holds bits
``[i*w, i*w + w)`` of the concatenation of the words, where bit 0 is the most
significant bit of word 0.  With this order a run of 2-bit base codes read as one
integer is the k-mer code (first base most significant), so the same extraction serves
packed fields and k-mers inside packed sequences.

Every packed array ends with one zero padding word, so reading any field (or any
window of at most 64 bits that starts inside the data) touches two existing words.
Packing and extraction are whole-array operations; nothing loops over fields.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kmerdb.errors import CorruptDatabaseError, InvalidParameterError

__all__ = [
    "width_for",
    "n_words",
    "pack",
    "extract",
    "unpack",
    "pack_codes",
    "pack_flags",
    "unpack_flags",
    "read_header",
    "check_fields",
    "RANK_BLOCK_WORDS",
    "rank_directory",
    "rank_index",
]

_U64 = np.uint64
_ONE = _U64(1)
_S6 = _U64(6)
_B63 = _U64(63)
_S64 = _U64(64)
#: Windows read per step by :func:`extract`, so temporaries stay in cache.
_CHUNK = 1 << 16
#: Rank directory granularity: one uint64 per 16 bit words (1024 bits).
RANK_BLOCK_WORDS = 16


def width_for(max_value: int) -> int:
    """Bits needed to store values in ``[0, max_value]`` (at least 1)."""
    return max(1, int(max_value).bit_length())


def n_words(n_fields: int, width: int) -> int:
    """Words of a packed array of ``n_fields`` fields of ``width`` bits, padding word included."""
    return -(-(n_fields * width) // 64) + 1


def pack(values: np.ndarray, width: int) -> np.ndarray:
    """Pack unsigned ``values`` (each < 2**width) into uint64 words.

    Parameters
    ----------
    values : ndarray of unsigned integers
        Values to pack; bits above ``width`` must be zero.
    width : int
        Field width, 1..64.

    Returns
    -------
    ndarray of uint64
        ``n_words(len(values), width)`` words, the last one padding.
    """
    if not 1 <= width <= 64:
        raise ValueError(f"field width must be 1..64, got {width}")
    values = np.asarray(values).astype(np.uint64, copy=False)
    n = values.size
    out = np.zeros(n_words(n, width), dtype=np.uint64)
    if n == 0:
        return out
    # 64 consecutive fields fill exactly `width` words, and field j of such a group always
    # lands at the same bit offset: pack column by column over all groups at once (a loop
    # over the 64 columns, each a whole-array operation on n / 64 values).
    rows = -(-n // 64)
    cols = np.zeros(rows * 64, dtype=np.uint64)
    cols[:n] = values
    cols = np.ascontiguousarray(cols.reshape(rows, 64).T)  # (64, rows): column j contiguous
    words = np.zeros((width, rows), dtype=np.uint64)
    for j in range(64):
        q, off = divmod(j * width, 64)
        end = off + width
        if end <= 64:
            words[q] |= cols[j] << np.uint64(64 - end)
        else:  # the field crosses into the next word
            words[q] |= cols[j] >> np.uint64(end - 64)
            words[q + 1] |= cols[j] << np.uint64(128 - end)
    out[: -(-(n * width) // 64)] = words.T.ravel()[: -(-(n * width) // 64)]
    return out


def extract(words: np.ndarray, bit_offsets: np.ndarray, width: int) -> np.ndarray:
    """Read ``width`` bits (1..64) starting at each of ``bit_offsets``, as uint64.

    ``words`` must hold one word after the last one a window starts in (the padding
    word of :func:`pack` and :func:`pack_codes`).
    """
    bit_offsets = np.asarray(bit_offsets, dtype=np.uint64)
    out = np.empty(bit_offsets.size, dtype=np.uint64)
    down = _U64(64 - width)
    after = words[1:]  # word q + 1 of each window, read through the same index q
    for lo in range(0, bit_offsets.size, _CHUNK):
        b = bit_offsets[lo : lo + _CHUNK]
        q = (b >> _S6).view(np.intp)
        off = b & _B63
        x = out[lo : lo + _CHUNK]
        np.left_shift(words.take(q), off, out=x)
        # numpy's shifts by 64 or more give 0 (C's are undefined): right for off == 0
        np.subtract(_S64, off, out=off)
        x |= after.take(q) >> off
        x >>= down
    return out


def unpack(words: np.ndarray, n_fields: int, width: int, index: np.ndarray | None = None) -> np.ndarray:
    """Fields ``index`` (default: all ``n_fields``) of a packed array, as uint64."""
    if index is None:
        index = np.arange(n_fields, dtype=np.uint64)
    index = np.asarray(index)
    # non-negative int64 slots are their own uint64 bits: a view, not a converted copy
    index = index.view(np.uint64) if index.dtype == np.int64 else index.astype(np.uint64, copy=False)
    return extract(words, index * _U64(width), width)


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """Pack 2-bit base codes (uint8, values 0..3) four to a byte, 32 to a word, first base first.

    Equals ``pack(codes, 2)`` but works on bytes, which is several times faster.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    nw = n_words(codes.size, 2)
    padded = np.zeros(nw * 32, dtype=np.uint8)
    padded[: codes.size] = codes
    quad = padded.reshape(-1, 4)
    packed = (quad[:, 0] << 6) | (quad[:, 1] << 4) | (quad[:, 2] << 2) | quad[:, 3]
    # bytes in reading order are a big-endian word; store words little-endian like every array
    return packed.view(">u8").astype("<u8")


def pack_flags(flags: np.ndarray) -> np.ndarray:
    """Pack booleans one bit each, first flag most significant: equals ``pack(flags, 1)``,
    through ``np.packbits``."""
    flags = np.asarray(flags, dtype=bool)
    padded = np.zeros(n_words(flags.size, 1) * 64, dtype=bool)
    padded[: flags.size] = flags
    return np.packbits(padded).view(">u8").astype("<u8")


def unpack_flags(words: np.ndarray, n_fields: int) -> np.ndarray:
    """The first ``n_fields`` flags of :func:`pack_flags` words, as booleans."""
    return np.unpackbits(np.asarray(words).astype(">u8").view(np.uint8), count=n_fields).view(bool)


def read_header(
    array: npt.ArrayLike, n_header: int, magic: int, version: int | tuple[int, ...], source: str, what: str
) -> tuple[np.ndarray, list[int]]:
    """Check a self-describing uint64 array's shape, magic and version (or one of the versions
    given); return it and its header.

    Raises
    ------
    kmerdb.errors.CorruptDatabaseError
        Naming ``source`` and saying what is wrong.
    """
    arr = np.asarray(array)
    if arr.ndim != 1 or arr.dtype.kind != "u" or arr.itemsize != 8 or arr.size < n_header:
        raise CorruptDatabaseError(source, f"not {what}")
    head = [int(x) for x in arr[:n_header]]
    if head[0] != magic:
        raise CorruptDatabaseError(source, f"not {what} (bad magic)")
    if head[1] not in (version if isinstance(version, tuple) else (version,)):
        raise CorruptDatabaseError(source, f"{what} version {head[1]} is not supported")
    return arr, head


def check_fields(n_array_words: int, fields: list[tuple[int, int]], source: str, what: str) -> None:
    """Check header values that size packed sections against the array that holds them.

    A header is read from a file, so its counts may be anything: each ``(n_fields, width)``
    must have a width of 1..64 bits and all of them together must fit in the array's
    ``n_array_words`` words.  Checked before anything is allocated or unpacked from them
    (a width of 0 would let any count pass a length check and then size an allocation).

    Raises
    ------
    kmerdb.errors.CorruptDatabaseError
        Naming ``source``.
    """
    bits = 0
    for n, width in fields:
        if not 1 <= width <= 64 or n < 0:
            raise CorruptDatabaseError(source, f"{what} header has a field width of {width} bits")
        bits += n * width
    if bits > 64 * n_array_words:
        raise CorruptDatabaseError(source, f"{what} header claims more fields than its {n_array_words} words hold")


def rank_directory(words: np.ndarray) -> np.ndarray:
    """The rank directory of bit words (a length that is a multiple of 4; the last block may
    be partial), as :func:`kmerdb.core.kernels.rank` reads it: one uint64 per 1024-bit block,
    bits 0-31 the 1 bits before the block, bits 32-41, 42-51 and 52-61 those in its first 4, 8
    and 12 words.  Bits here are least significant first (bit b is bit ``b & 63`` of word
    ``b >> 6``), unlike packed fields."""
    quarters = np.bitwise_count(words).reshape(-1, 4).sum(axis=1, dtype=np.uint64)
    per_block = RANK_BLOCK_WORDS // 4
    quarters = np.concatenate([quarters, np.zeros(-len(quarters) % per_block, np.uint64)])
    quarters = quarters.reshape(-1, per_block)
    block_total = quarters.sum(axis=1, dtype=np.uint64)
    absolute = np.zeros(len(block_total), dtype=np.uint64)
    np.cumsum(block_total[:-1], out=absolute[1:])
    within = np.cumsum(quarters[:, :3], axis=1, dtype=np.uint64)
    return (
        absolute | (within[:, 0] << np.uint64(32)) | (within[:, 1] << np.uint64(42)) | (within[:, 2] << np.uint64(52))
    ).astype(_U64)


def rank_index(positions: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """A bit vector of ``n`` bits with ``positions`` set (distinct, below n, fewer than 2**32),
    followed by its :func:`rank_directory`, and the word where the directory starts: the
    ``arr`` and ``rank_at`` of :func:`kmerdb.core.kernels.rank` (bits at word 0)."""
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size >= 1 << 32:
        raise InvalidParameterError("positions", positions.size, "a rank index counts fewer than 2**32")
    padded = -(-max(1, -(-n // 64)) // 4) * 4  # whole quarters, as the directory counts them
    words = np.zeros(padded, dtype=_U64)
    np.bitwise_or.at(words, positions >> 6, _ONE << (positions & 63).astype(_U64))
    return np.concatenate([words, rank_directory(words)]), padded
