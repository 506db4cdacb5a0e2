"""Column encodings: how the genome columns of a layer are stored, one registered class per kind.

A layer's genome columns come in column groups (:class:`~kmerdb.store.catalog.ColumnGroup`):
one ``.npy`` file per group, slot-major, its ``kind`` named in the catalog.  Everything
that reads or writes group data goes through the :class:`ColumnEncoding` registered for
that kind, so a new encoding is one new subclass and a :func:`register_encoding`:

``presence`` (:class:`PresenceBits`)
    Rows of packed bits (``np.packbits`` along the row, genome i of the group at bit i,
    most significant bit first).
``counts`` (:class:`DenseCounts`)
    One unsigned integer column per genome, in the smallest width that holds the group's
    largest count; counts beyond uint32 saturate at its maximum rather than wrapping.

An encoding class writes a group (:meth:`ColumnEncoding.encode`); an instance is a group
opened over its memory-mapped array and the database's current genomes, and answers the
readers: query rows (:meth:`~ColumnEncoding.fill`), presence bytes for tallies
(:meth:`~ColumnEncoding.presence_bytes`), class blocks and tallies for the analytics
(:meth:`~ColumnEncoding.class_block`, :meth:`~ColumnEncoding.tally`,
:meth:`~ColumnEncoding.count_values`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from kmerdb.config import Config
from kmerdb.core import kernels
from kmerdb.core.colours import SparseRows
from kmerdb.errors import CorruptDatabaseError

__all__ = [
    "ColumnEncoding",
    "Placement",
    "SlotOrdinals",
    "PresenceBits",
    "DenseCounts",
    "register_encoding",
    "encoding_for",
    "encoding_for_config",
    "choose_encoding",
    "encodings",
    "since_format",
    "open_group",
    "pack_presence",
    "unpack_presence",
    "count_dtype",
    "to_counts",
]

_WIDTHS = (np.dtype("<u1"), np.dtype("<u2"), np.dtype("<u4"))

#: (256, 8) int64: the bits of every byte value, most significant first.
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Placement:
    """Where the k-mers of a new layer lie in its unitig sequence (the writer's side).

    Attributes
    ----------
    ordinals : ndarray of int64
        Unitig order of each row's k-mer (row order): a permutation of ``0..n-1``.
    classes : (ndarray, SparseRows) or None
        The rows' colour classes (:meth:`SparseRows.classes`) when the writer computed them
        already (to order the unitigs by class).
    joins : ndarray of int64, shape (2, J), or None
        Pairs of those classes whose k-mers are joined in the layer's graph at a branching
        (k-1)-mer (:attr:`kmerdb.core.unitigs.Compaction.branches`), each pair once: the
        neighbours a class may be written as a difference from.
    """

    ordinals: np.ndarray
    classes: tuple[np.ndarray, SparseRows] | None = None
    joins: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class SlotOrdinals:
    """The unitig order of the k-mer of each slot of a layer (the reader's side): what a
    unitig-ordered encoding reads its rows through.

    Attributes
    ----------
    of : callable
        Slots (int64) -> unitig orders (int64, below ``n``), from the layer's exact evidence.
    n : int
        The layer's k-mers.
    """

    of: Callable[[np.ndarray], np.ndarray]
    n: int


# --------------------------------------------------------------------------------------
# array helpers
# --------------------------------------------------------------------------------------
def pack_presence(matrix: np.ndarray) -> np.ndarray:
    """(n, g) booleans -> (n, ceil(g/8)) uint8 rows of bits."""
    matrix = np.asarray(matrix, dtype=bool)
    n, g = matrix.shape
    if g > 16:
        return np.packbits(matrix, axis=1)
    # few columns: a shift per column is ~30x faster than np.packbits along short rows
    out = np.zeros((n, (g + 7) // 8), dtype=np.uint8)
    for j in range(g):
        out[:, j >> 3] |= matrix[:, j].view(np.uint8) << np.uint8(7 - (j & 7))
    return out


def unpack_presence(rows: np.ndarray, n_genomes: int) -> np.ndarray:
    """(n, ceil(g/8)) uint8 rows -> (n, g) booleans."""
    return np.unpackbits(rows, axis=1, count=n_genomes).view(bool)


def count_dtype(max_count: int) -> np.dtype:
    """Smallest unsigned width that holds ``max_count`` (uint32 at most)."""
    for dt in _WIDTHS:
        if max_count <= np.iinfo(dt).max:
            return dt
    return _WIDTHS[-1]


def to_counts(matrix: np.ndarray) -> np.ndarray:
    """Integer counts -> the smallest width that holds them, saturating at uint32's maximum."""
    matrix = np.asarray(matrix)
    top = int(matrix.max()) if matrix.size else 0
    dt = count_dtype(top)
    if top > np.iinfo(dt).max:
        matrix = np.minimum(matrix, np.iinfo(dt).max)
    return matrix.astype(dt)


# --------------------------------------------------------------------------------------
# the interface
# --------------------------------------------------------------------------------------
class ColumnEncoding(ABC):
    """One column group of a layer, opened: its rows are the layer's slots.

    Subclasses register under the catalog's group kind (:func:`register_encoding`).

    Parameters
    ----------
    data : ndarray
        The group's array, as :meth:`encode` made it (usually memory-mapped).
    genome_ids : tuple of int
        The genomes of the group, in the group's order.
    column_of : mapping of int to int
        Genome id -> column in the database's genome order; genomes missing from it (removed
        from the database) are not read.
    source : str
        Name reported in errors.

    Attributes
    ----------
    cols : ndarray of intp
        Database column of every genome of the group still in the database.
    keep : ndarray of intp
        Position of each of those genomes in the group.
    columns : ndarray of intp
        Database column of every genome of the group, -1 for a removed one.
    """

    #: The catalog's name of the encoding (``ColumnGroup.kind``).
    kind: ClassVar[str]
    #: Whether the group keeps counts (else presence only).
    keeps_counts: ClassVar[bool]
    #: Whether ``data`` is one row per slot (dense groups): the tally of many slots reads it
    #: in order first (:func:`~kmerdb.core.kernels.sweep`).
    rows_per_slot: ClassVar[bool] = False
    #: Whether new groups of an index may be written in this encoding.
    default: ClassVar[bool] = False
    #: ``"dense"`` or ``"classes"``: what ``Config.colours`` calls the encodings of its kind.
    family: ClassVar[str] = "dense"
    #: The on-disk format version that introduced the encoding.
    since: ClassVar[int] = 1
    #: Whether the group is laid out in its layer's unitig order: it is written from a
    #: :class:`Placement` and read through the layer's :class:`SlotOrdinals` (exact evidence).
    placed: ClassVar[bool] = False
    #: Whether query tallies go through :meth:`class_ids` and :meth:`members` (colour classes)
    #: rather than :meth:`presence_bytes`.
    tallies_by_class: bool = False

    def __init__(
        self,
        data: np.ndarray,
        genome_ids: tuple[int, ...],
        column_of: Mapping[int, int],
        source: str,
        ordinals: SlotOrdinals | None = None,
    ) -> None:
        self.check(data, len(genome_ids), source)
        self.data = data
        #: genomes of the database (the column space of :meth:`rows`)
        self.n_db = len(column_of)
        self.source = source
        self.genome_ids = tuple(genome_ids)
        self.columns = np.array([column_of.get(g, -1) for g in self.genome_ids], dtype=np.intp)
        self.keep = np.flatnonzero(self.columns >= 0).astype(np.intp)
        self.cols = self.columns[self.keep]
        n_ids = len(self.genome_ids)
        #: every genome of the group kept, in group order
        self.full = self.keep.size == n_ids
        # every column kept and consecutive in database order: plain slices instead of
        # fancy indexing when rows are written into a caller's matrix
        if self.full and self.cols.size and (np.diff(self.cols) == 1).all():
            self._dest: tuple = (slice(int(self.cols[0]), int(self.cols[-1]) + 1), slice(None))
        else:
            self._dest = (self.cols, self.keep)
        # per packed byte that still has a genome of the database: its index and the database
        # column of each of its (up to 8) genomes, found once here rather than per query
        chunks = ((b // 8, self.columns[b : b + 8]) for b in range(0, self.columns.size, 8))
        self._byte_columns = [(b, cols) for b, cols in chunks if (cols >= 0).any()]

    # -- writing ------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def encode(cls, rows: SparseRows, slots: np.ndarray, placement: Placement | None = None) -> np.ndarray:
        """The array to save for a group.

        Parameters
        ----------
        rows : SparseRows
            One row per k-mer (in key order) over the genomes of the group (column j =
            the group's genome j), with counts for an encoding that keeps them.
        slots : ndarray of int
            The MPHF slot of each row.
        placement : Placement, optional
            Where the rows' k-mers lie in the layer's unitigs: required by a ``placed``
            encoding, ignored by the others.

        Returns
        -------
        ndarray
            One row per slot.
        """

    @classmethod
    @abstractmethod
    def check(cls, data: np.ndarray, n_genomes: int, source: str) -> None:
        """Raise :class:`~kmerdb.errors.CorruptDatabaseError` if ``data`` cannot be a group
        of ``n_genomes`` genomes of this encoding."""

    # -- reading ------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Rows (slots) of the group."""
        return int(self.data.shape[0])

    @property
    def live(self) -> bool:
        """Whether a genome of the group is still in the database."""
        return bool(self.cols.size)

    @property
    def row_nbytes(self) -> int:
        """Bytes of one stored row (sizes the blocks readers take at once)."""
        return int(self.data[:1].nbytes)

    def rows(self, slots: np.ndarray) -> SparseRows:
        """Rows of ``slots`` over the database's genomes (columns of genomes still in it), with
        the counts of an encoding that keeps them."""
        dense = self.values(np.asarray(slots, dtype=np.int64), self.keeps_counts)
        local = SparseRows.from_dense(dense)  # columns in ``keep`` order
        return local.remap(self.cols, self.n_db)

    def class_ids(self, slots: np.ndarray) -> np.ndarray:
        """Class id of each of ``slots`` (encodings with ``tallies_by_class``)."""
        raise NotImplementedError(f"{type(self).__name__} has no colour classes")

    def members(self, ids: np.ndarray) -> SparseRows:
        """Database columns of classes ``ids`` (encodings with ``tallies_by_class``)."""
        raise NotImplementedError(f"{type(self).__name__} has no colour classes")

    def add_class_hits(
        self, hits: np.ndarray, everyone: np.ndarray, seq: np.ndarray, ids: np.ndarray, amount: np.ndarray
    ) -> None:
        """Add ``amount[i]`` to row ``seq[i]`` of ``hits`` at the database columns of class
        ``ids[i]``, or to ``everyone[seq[i]]`` for a class of most of the group's genomes less
        what it lacks (encodings with ``tallies_by_class``)."""
        raise NotImplementedError(f"{type(self).__name__} has no colour classes")

    def members_or_complement(self, ids: np.ndarray) -> tuple[SparseRows, np.ndarray]:
        """Classes ``ids`` as their members or, where the second array says so, as the
        genomes of the group they lack (encodings with ``tallies_by_class``; this default
        lists members only)."""
        ids = np.asarray(ids, dtype=np.int64)
        return self.members(ids), np.zeros(ids.size, dtype=bool)

    @abstractmethod
    def values(self, slots: np.ndarray, counts: bool) -> np.ndarray:
        """Rows of ``slots`` over the kept genomes (``keep`` order): bool presence, or the
        stored counts when ``counts`` (an encoding without counts gives presence)."""

    def fill(self, slots: np.ndarray, out: np.ndarray, counts: bool) -> None:
        """Write the rows of ``slots`` into the group's columns of ``out`` (len(slots) x
        genomes of the database)."""
        if self.live:
            out[:, self._dest[0]] = self.values(slots, counts)

    @abstractmethod
    def packed_rows(self, slots: np.ndarray) -> np.ndarray:
        """Presence of the rows of ``slots`` over all genomes of the group, packed as by
        :func:`pack_presence`."""

    def presence_bytes(self, slots: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Presence of the rows of ``slots``, eight genomes to a byte.

        Yields
        ------
        columns : ndarray of intp
            The database columns of the byte's genomes (up to 8; -1 for a genome no
            longer in the database); bytes without a current genome are skipped.
        values : ndarray of uint8
            One byte per slot, the first genome in the most significant bit.
        """
        if not self._byte_columns:
            return
        rows = self.packed_rows(slots)
        for b, cols in self._byte_columns:
            yield cols, np.ascontiguousarray(rows[:, b])

    def tally_presence_bytes(
        self, slots: np.ndarray, seqs: np.ndarray, table_for: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        """Count the (sequence, presence byte) pairs of the rows of ``slots``.

        For every byte of :meth:`presence_bytes` (database columns ``cols``, w of them), the
        row of ``slots[i]`` adds one to ``table_for(cols)[(seqs[i] << w) | (byte >> (8 -
        w))]`` (:func:`~kmerdb.core.kernels.byte_tally`).
        """
        seqs = np.ascontiguousarray(seqs, dtype=np.int64)
        if self.rows_per_slot and kernels.sweep_pays(np.asarray(slots).size, self.n):
            # the rows would be met one miss at a time: read them in order first
            rows = self.data.view(np.ndarray).reshape(-1)
            kernels.sweep(rows, rows[:0], rows[:0], rows[:0], rows[:0])
        for cols, values in self.presence_bytes(slots):
            kernels.byte_tally(seqs, values, cols.size, table_for(cols))

    @abstractmethod
    def class_block(self, lo: int, hi: int, counts: bool) -> tuple[np.ndarray, np.dtype | None]:
        """Rows ``lo:hi`` over the kept genomes (``cols`` order) as bytes, to be reduced to
        colour classes.

        Returns
        -------
        raw : ndarray of uint8, shape (hi - lo, B)
        dtype : numpy dtype or None
            None: ``raw`` holds presence bits packed as by :func:`pack_presence` (the
            presence layout, asked for with ``counts`` False); else ``raw`` holds one value
            of this dtype per genome (the counts layout).
        """

    @abstractmethod
    def tally(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Distinct k-mers and k-mer occurrences of each kept genome (``cols`` order) in rows
        ``lo:hi`` (int64; occurrences equal distinct k-mers without counts)."""

    def count_values(self, lo: int, hi: int) -> np.ndarray | None:
        """The counts of rows ``lo:hi`` over the kept genomes (``cols`` order), None for an
        encoding that keeps presence only (every k-mer held counts once)."""
        return None


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------
_REGISTRY: dict[str, type[ColumnEncoding]] = {}


def register_encoding(cls: type[ColumnEncoding]) -> type[ColumnEncoding]:
    """Register a :class:`ColumnEncoding` subclass under its ``kind`` (usable as a decorator)."""
    if not getattr(cls, "kind", None):
        raise TypeError(f"{cls.__name__} names no kind")
    _REGISTRY[cls.kind] = cls
    return cls


def encoding_for(kind: str) -> type[ColumnEncoding]:
    """The encoding registered for a catalog group kind.

    Raises
    ------
    CorruptDatabaseError
        If no encoding has that kind (a catalog written by a newer version, or damaged).
    """
    try:
        return _REGISTRY[kind]
    except (KeyError, TypeError):
        raise CorruptDatabaseError(
            "column group", f"unknown column encoding {kind!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def encoding_for_config(config: Config, family: str = "dense", placed: bool = False) -> type[ColumnEncoding]:
    """The encoding of ``family`` (``"dense"`` or ``"classes"``) new groups of an index use;
    ``placed`` asks for the one laid out in unitig order (colour classes only)."""
    wanted = bool(config.counts)
    placed = placed and family == "classes"
    for cls in _REGISTRY.values():
        if cls.default and cls.keeps_counts == wanted and cls.family == family and cls.placed == placed:
            return cls
    raise CorruptDatabaseError("column group", f"no {family} encoding {'keeps counts' if wanted else 'keeps presence'}")


def dense_nbytes(rows: SparseRows, counts: bool) -> int:
    """Bytes of a group's rows in the dense encoding of its kind (without the .npy header)."""
    if not counts:
        return rows.n * ((rows.n_columns + 7) // 8)
    top = int(rows.value_counts().max()) if rows.nnz else 0
    return rows.n * rows.n_columns * count_dtype(top).itemsize


def choose_encoding(
    config: Config, rows: SparseRows, slots: np.ndarray, placement: Placement | None = None
) -> tuple[type[ColumnEncoding], np.ndarray]:
    """The encoding of a new group and its array: ``config.colours`` names the family, or
    ``"auto"`` picks the smaller of the two (dense on a tie).  Colour classes are laid out
    in unitig order when the writer gives the rows' ``placement`` (a new layer with exact
    evidence), by slot otherwise.

    Returns
    -------
    (encoding class, array to save)
    """
    counts = bool(config.counts)
    family = config.colours
    placed = placement is not None
    if family in ("dense", "classes"):
        cls = encoding_for_config(config, family, placed)
        return cls, cls.encode(rows, slots, placement)
    dense = encoding_for_config(config, "dense")
    classes = encoding_for_config(config, "classes", placed)
    coded = classes.encode(rows, slots, placement)
    if coded.nbytes < dense_nbytes(rows, counts):
        return classes, coded
    return dense, dense.encode(rows, slots)


def since_format(kind: str) -> int:
    """The format version a database needs to hold groups of ``kind`` (1 for an unknown kind:
    reading it fails anyway)."""
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    return cls.since if cls is not None else 1


def encodings() -> dict[str, type[ColumnEncoding]]:
    """Every registered encoding by kind."""
    return dict(_REGISTRY)


def open_group(
    group, data: np.ndarray, column_of: Mapping[int, int], ordinals: SlotOrdinals | None = None
) -> ColumnEncoding:
    """Open a catalog :class:`~kmerdb.store.catalog.ColumnGroup` over its loaded array;
    ``ordinals`` (the layer's, with exact evidence) is what a ``placed`` encoding reads by."""
    return encoding_for(group.kind)(data, tuple(group.genome_ids), column_of, group.file.path, ordinals)


# --------------------------------------------------------------------------------------
# dense presence bits
# --------------------------------------------------------------------------------------
@register_encoding
class PresenceBits(ColumnEncoding):
    """Dense presence: a row of ``ceil(g / 8)`` bytes per slot."""

    kind = "presence"
    rows_per_slot = True
    keeps_counts = False
    default = True

    @classmethod
    def encode(cls, rows: SparseRows, slots: np.ndarray, placement: Placement | None = None) -> np.ndarray:
        return rows.in_slot_order(slots).packed()

    @classmethod
    def check(cls, data: np.ndarray, n_genomes: int, source: str) -> None:
        if data.ndim != 2 or data.dtype != np.uint8 or data.shape[1] != (n_genomes + 7) // 8:
            raise CorruptDatabaseError(source, f"not presence bits of {n_genomes} genomes ({data.dtype}, {data.shape})")

    def values(self, slots: np.ndarray, counts: bool) -> np.ndarray:
        return unpack_presence(self.data[slots], len(self.genome_ids))[:, self.keep]

    def fill(self, slots: np.ndarray, out: np.ndarray, counts: bool) -> None:
        if not self.live:
            return
        cols, keep = self._dest
        out[:, cols] = unpack_presence(self.data[slots], len(self.genome_ids))[:, keep]

    def packed_rows(self, slots: np.ndarray) -> np.ndarray:
        return self.data.take(slots, axis=0)

    def class_block(self, lo: int, hi: int, counts: bool) -> tuple[np.ndarray, np.dtype | None]:
        block = np.asarray(self.data[lo:hi])
        if not counts:
            if self.full:
                return block, None
            return np.packbits(unpack_presence(block, len(self.genome_ids))[:, self.keep], axis=1), None
        vals = unpack_presence(block, len(self.genome_ids))[:, self.keep].astype(np.uint8)
        return vals, vals.dtype

    def tally(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        # bits set per column: a histogram of byte values per byte column
        block = np.asarray(self.data[lo:hi])
        nb = block.shape[1]
        flat = block.astype(np.intp) + (np.arange(nb, dtype=np.intp) * 256)
        hist = np.bincount(flat.ravel(), minlength=256 * nb).reshape(nb, 256)
        held = (hist @ _BYTE_BITS).ravel()[: len(self.genome_ids)][self.keep]  # genome i at bit i
        return held, held.copy()


# --------------------------------------------------------------------------------------
# dense counts
# --------------------------------------------------------------------------------------
@register_encoding
class DenseCounts(ColumnEncoding):
    """Dense counts: one unsigned integer per slot and genome, smallest width, saturating."""

    kind = "counts"
    rows_per_slot = True
    keeps_counts = True
    default = True

    @classmethod
    def encode(cls, rows: SparseRows, slots: np.ndarray, placement: Placement | None = None) -> np.ndarray:
        return to_counts(rows.in_slot_order(slots).to_dense(np.uint32))

    @classmethod
    def check(cls, data: np.ndarray, n_genomes: int, source: str) -> None:
        if data.ndim != 2 or data.dtype.kind != "u" or data.dtype.itemsize > 4 or data.shape[1] != n_genomes:
            raise CorruptDatabaseError(source, f"not counts of {n_genomes} genomes ({data.dtype}, {data.shape})")

    def values(self, slots: np.ndarray, counts: bool) -> np.ndarray:
        values = self.data[slots][:, self.keep]
        return values if counts else values > 0

    def fill(self, slots: np.ndarray, out: np.ndarray, counts: bool) -> None:
        if not self.live:
            return
        cols, keep = self._dest
        values = self.data[slots][:, keep]
        out[:, cols] = values if counts else values > 0

    def packed_rows(self, slots: np.ndarray) -> np.ndarray:
        return pack_presence(self.data.take(slots, axis=0) > 0)

    def _kept(self, lo: int, hi: int) -> np.ndarray:
        block = self.data[lo:hi]
        return np.ascontiguousarray(block if self.full else block[:, self.keep])

    def class_block(self, lo: int, hi: int, counts: bool) -> tuple[np.ndarray, np.dtype | None]:
        vals = self._kept(lo, hi)
        if not counts:
            return np.packbits(vals > 0, axis=1), None
        return vals.view(np.uint8).reshape(vals.shape[0], -1), vals.dtype

    def tally(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        vals = self.data[lo:hi][:, self.keep]
        return np.count_nonzero(vals, axis=0).astype(np.int64), vals.sum(axis=0, dtype=np.int64)

    def count_values(self, lo: int, hi: int) -> np.ndarray | None:
        return self.data[lo:hi][:, self.keep]


# the colour-class encodings register themselves on import
from kmerdb.store import classes as _classes  # noqa: E402,F401
