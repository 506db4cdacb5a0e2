"""Colour-class column encodings: a class id per slot, each distinct set of genomes stored once.

A column group of ``g`` genomes over ``n`` slots, kind ``classes`` (presence) or
``class-counts``, is one ``uint64`` array:

=========  ============================================================================
section    content
=========  ============================================================================
header     16 words: magic ``kmerCLRS``, version, n, g, C (classes), id width, member
           width w (``bits(g - 1)``), payload bits, offset width, count bytes (0: presence),
           count values, start width, then zeros
ids        n fields of ``id width`` bits (:mod:`kmerdb.core.bits`): the class of each slot
forms      C fields of 2 bits: 0 sorted member list, 1 sorted list of the genomes *not* in
           the class (complement), 2 bitmap (g bits, genome i at bit i), 3 difference
           (version 2)
offsets    C + 1 fields of ``offset width`` bits: the bit where each class starts in the payload
payload    one bit stream of the classes: a list is its members, w bits each; a bitmap g
           bits; a difference its parent's id (``id width`` bits), the number a of genomes
           it adds (``bits(g)`` bits), the a genomes added and the genomes removed (w bits
           each, ascending); then a padding word
starts     (counts only) n + 1 fields of ``start width`` bits: slot s's counts are values
           ``starts[s]:starts[s + 1]``
values     (counts only) one unsigned integer of ``count bytes`` per (slot, member of its
           class), aligned with the members in ascending order; saturating at uint32's max
=========  ============================================================================

Kinds ``unitig-classes`` and ``unitig-class-counts`` are laid out in their layer's unitig
order instead: a layer written with colour classes orders its unitigs by the class of their
first k-mer, so a class's k-mers lie together in the unitig sequence, and the ids become
runs.  Header words 12 and 13 hold R (runs) and the bytes of a bound (4 or 8); the ids
section is replaced by

=========  ============================================================================
bounds     R + 1 unsigned integers of 4 or 8 bytes, increasing from 0 to n: run r holds
           the k-mers of unitig order ``bounds[r]:bounds[r + 1]``
runs       R fields of ``id width`` bits: the class of each run
=========  ============================================================================

A slot's class is then found from the unitig order of its k-mer (its exact evidence): its
run (the previous one, the rank of the order among the run starts, or a search of the bounds)
and one field.  Groups written later over an existing layer (an append) and groups of layers
with approximate evidence use the slot-ordered kinds.

Each class takes the cheapest of its three forms, so a class of a few genomes costs a few
members, the class of the core genome (all genomes but a few) costs the few it lacks, and
only classes of middling size cost a bitmap.  A group written with a new layer (its
:class:`~kmerdb.store.encodings.Placement` names the class pairs joined in the layer's graph)
writes a class as its difference from a neighbour where that is cheaper: the two sides of a
variant differ by the genomes that carry it (:func:`_differences`).  Class ids are numbered by decreasing number of
slots.  Classes live in the group's file: a layer's classes are the distinct colours of its
own k-mers, so a file is complete by itself and a new group (an append) never touches an
old one.  See docs/format.md for the size model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np

from kmerdb.core import bits, kernels
from kmerdb.core.colours import SparseRows, segment_positions
from kmerdb.errors import CorruptDatabaseError
from kmerdb.store.encodings import (
    ColumnEncoding,
    Placement,
    SlotOrdinals,
    count_dtype,
    register_encoding,
)

__all__ = [
    "ColourClasses",
    "ClassCounts",
    "UnitigClasses",
    "UnitigClassCounts",
    "slot_ordered",
    "reordered",
    "MAGIC",
    "VERSION",
    "HEADER_WORDS",
    "class_nbytes",
    "member_width",
    "forest_parents",
]

MAGIC = int.from_bytes(b"kmerCLRS", "little")
# Version 2 adds the difference form; version 1 (no differences) is read.
VERSION = 2
VERSIONS = (1, 2)
HEADER_WORDS = 16
LIST, COMPLEMENT, BITMAP, DIFFERENCE = 0, 1, 2, 3
#: Levels of differences a writer puts below a class written whole: the longest chain a
#: reader follows to expand a class (readers refuse chains past kernels.MAX_CHAIN).
DIFF_DEPTH = 16
_U32_MAX = int(np.iinfo(np.uint32).max)
# Run bounds take 4 bytes below this many k-mers in the layer, else 8.
_BOUND32 = 1 << 32
# Below this many genomes, query tallies read a class's presence byte (a table lookup per slot)
# instead of tallying class ids and expanding them.
_BYTE_TALLY_GENOMES = 32
# Runs shorter than this many k-mers on average: class lookups prefetch the run index ahead
# and do not try the previous run first.
_SHORT_RUNS = 64


def member_width(g: int) -> int:
    """Bits of one member of a group of ``g`` genomes."""
    return bits.width_for(max(0, g - 1))


def _forms(sizes: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest form of each class and its payload bits."""
    w = member_width(g)
    listed = sizes * w
    complement = (g - sizes) * w
    bitmap = np.full(sizes.shape, g, dtype=np.int64)
    forms = np.where(listed <= np.minimum(complement, bitmap), LIST, np.where(complement <= bitmap, COMPLEMENT, BITMAP))
    nbits = np.where(forms == LIST, listed, np.where(forms == COMPLEMENT, complement, bitmap))
    return forms.astype(np.uint8), nbits.astype(np.int64)


def class_nbytes(table: SparseRows) -> int:
    """Bytes of the forms, offsets and payload of a class table written without differences
    (the size model's class part: an upper bound of what differences make of it)."""
    _, nbits = _forms(table.sizes, table.n_columns)
    payload = int(nbits.sum())
    c = table.n
    return 8 * (bits.n_words(c, 2) + bits.n_words(c + 1, bits.width_for(payload)) + -(-payload // 64) + 1)


def _complement_members(table: SparseRows, rows: np.ndarray) -> SparseRows:
    """The genomes not in each of the classes ``rows`` (ascending)."""
    g = table.n_columns
    sub = table.take(rows)
    present = np.zeros((sub.n, g), dtype=bool)
    if sub.nnz:
        present[sub.row_of(), sub.columns] = True
    return SparseRows.from_dense(~present)


def _put(stream: np.ndarray, at: np.ndarray, values: np.ndarray, width: int) -> None:
    """Write ``values`` (non-negative) as ``width``-bit fields at bits ``at`` of a bit array,
    most significant bit first."""
    if not at.size or not width:
        return
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    stream[at[:, None] + (width - 1 - shifts)[None, :]] = (values.astype(np.int64)[:, None] >> shifts[None, :]) & 1


def _entry_bits(stream: np.ndarray, first: np.ndarray, rows: SparseRows, w: int) -> None:
    """Row i of ``rows`` as entries of ``w`` bits from bit ``first[i]`` on."""
    within = np.arange(rows.nnz, dtype=np.int64) - np.repeat(rows.indptr[:-1], rows.sizes)
    _put(stream, np.repeat(first, rows.sizes) + within * w, rows.columns, w)


@dataclass(frozen=True)
class _Differences:
    """Classes written as differences: each class of ``which``, its parent, the genomes it
    adds to its parent and those it removes (rows aligned with ``which``)."""

    which: np.ndarray
    parents: np.ndarray
    added: SparseRows
    removed: SparseRows


def forest_parents(
    c: int, a: np.ndarray, b: np.ndarray, weight: np.ndarray, cost: np.ndarray, depth_cut: int
) -> np.ndarray:
    """Parents (-1 for a root) of ``c`` nodes in a minimum spanning forest of the pairs
    ``(a[e], b[e])`` by ``weight``, each tree rooted at its node of least ``cost`` and cut
    below every ``depth_cut`` levels (:func:`kmerdb.core.kernels.class_forest`)."""
    parent = np.empty(c, dtype=np.int64)
    work = [np.empty(c, dtype=np.int64) for _ in range(4)]
    pairs = [np.empty(2 * c, dtype=np.int64) for _ in range(2)]
    kernels.class_forest(
        np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), np.argsort(weight, kind="stable"),
        np.argsort(cost, kind="stable"), depth_cut, parent, work[0], work[1], pairs[0], pairs[1], work[2], work[3],
    )
    return parent


def _differences(table: SparseRows, joins: np.ndarray | None, nbits: np.ndarray, id_width: int) -> _Differences | None:
    """The classes better written as differences from a neighbour, or None.

    The candidates are the class pairs joined in the layer's graph (a variant's bubble: the
    classes either side differ by the genomes that carry it).  Weighted by the genomes they
    differ by, a minimum spanning forest of the pairs worth a difference both ways is rooted
    at each tree's cheapest class and cut every :data:`DIFF_DEPTH` levels
    (:func:`kmerdb.core.kernels.class_forest`); its edges are the differences.  Memory: a
    packed row per class (the class table as bitmaps) and a few words per pair.
    """
    c, g = table.n, table.n_columns
    if joins is None or not joins.size or c < 2 or DIFF_DEPTH < 1:
        return None
    a, b = np.asarray(joins[0], dtype=np.int64), np.asarray(joins[1], dtype=np.int64)
    inside = (a < c) & (b < c) & (a != b) & (a >= 0) & (b >= 0)
    a, b = a[inside], b[inside]
    w = member_width(g)
    head = id_width + bits.width_for(g)
    packed = table.packed()
    apart = np.empty(a.size, dtype=np.int64)
    step = max(1, (2 << 20) // max(1, packed.shape[1]))  # pairs per block: a few MB of rows
    for lo in range(0, a.size, step):  # blocks of bounded size
        xor = packed[a[lo : lo + step]] ^ packed[b[lo : lo + step]]
        apart[lo : lo + step] = np.bitwise_count(xor).sum(axis=1, dtype=np.int64)
    worth = head + apart * w < np.minimum(nbits[a], nbits[b])
    a, b, apart = a[worth], b[worth], apart[worth]
    if not a.size:
        return None
    parent = forest_parents(c, a, b, apart, nbits, DIFF_DEPTH)
    which = np.flatnonzero(parent >= 0)
    if not which.size:
        return None
    parents = parent[which]
    added, removed = [], []
    step = max(1, (4 << 20) // max(1, g))  # rows unpacked to a byte per genome
    for lo in range(0, which.size, step):
        mine, theirs = packed[which[lo : lo + step]], packed[parents[lo : lo + step]]
        added.append(SparseRows.from_dense(np.unpackbits(mine & ~theirs, axis=1, count=g).astype(bool)))
        removed.append(SparseRows.from_dense(np.unpackbits(theirs & ~mine, axis=1, count=g).astype(bool)))
    return _Differences(which, parents, SparseRows.vstack(added, g), SparseRows.vstack(removed, g))


def _payload_words(
    table: SparseRows, forms: np.ndarray, offsets: np.ndarray, diffs: _Differences | None = None, id_width: int = 0
) -> np.ndarray:
    """The classes written as one bit stream (most significant bit first), padding word included.

    Every class's bits are laid out in a bit array of the payload's length (its size is that of
    the class table, never slots), then packed to bytes and read as big-endian words, the
    order :func:`kmerdb.core.bits.extract` reads.
    """
    g = table.n_columns
    w = member_width(g)
    total = int(offsets[-1])
    stream = np.zeros(-(-total // 64) * 64 + 64, dtype=np.uint8)
    step = max(1, (8 << 20) // max(1, g))
    for form in (LIST, COMPLEMENT):
        which = np.flatnonzero(forms == form)
        for lo in range(0, which.size, step):  # complements go through dense blocks: bounded
            part = which[lo : lo + step]
            members = table.take(part) if form == LIST else _complement_members(table, part)
            _entry_bits(stream, offsets[part], members, w)
    maps = np.flatnonzero(forms == BITMAP)
    for lo in range(0, maps.size, step):
        part = maps[lo : lo + step]
        dense = np.unpackbits(table.take(part).packed(), axis=1, count=g)
        stream[offsets[part][:, None] + np.arange(g)[None, :]] = dense
    if diffs is not None:
        # parent, genomes added (a count, then the ids), genomes removed
        first = offsets[diffs.which]
        aw = bits.width_for(g)
        _put(stream, first, diffs.parents, id_width)
        _put(stream, first + id_width, diffs.added.sizes, aw)
        _entry_bits(stream, first + id_width + aw, diffs.added, w)
        _entry_bits(stream, first + id_width + aw + diffs.added.sizes * w, diffs.removed, w)
    return np.packbits(stream).view(">u8").astype("<u8")


class _ClassGroup(ColumnEncoding):
    """Shared reading and writing of the two colour-class kinds."""

    keeps_counts = False
    default = True
    family = "classes"
    since = 2
    n_classes: int

    # -- writing ------------------------------------------------------------------------
    @classmethod
    def encode(cls, rows: SparseRows, slots: np.ndarray, placement: Placement | None = None) -> np.ndarray:
        n, g = rows.n, rows.n_columns
        # classes of the rows in key order; only the ids (and counts) are put in slot order
        if placement is not None and placement.classes is not None:
            row_class, table = placement.classes
        else:
            row_class, table = rows.classes()
        c = table.n
        id_width = bits.width_for(max(0, c - 1))
        runs = bound_bytes = 0
        if cls.placed:
            if placement is None:
                raise ValueError(f"{cls.kind} groups are written from where their k-mers lie in the unitigs")
            id_sections, runs, bound_bytes = _runs(row_class, placement, id_width)
        else:
            class_of = np.empty(n, dtype=np.int64)
            class_of[np.asarray(slots, dtype=np.int64)] = row_class
            id_sections = [bits.pack(class_of.astype(np.uint64), id_width)]
            del class_of
        del row_class
        w = member_width(g)
        forms, nbits = _forms(table.sizes, g)
        diffs = _differences(table, placement.joins if placement is not None else None, nbits, id_width)
        if diffs is not None:
            forms[diffs.which] = DIFFERENCE
            nbits[diffs.which] = id_width + bits.width_for(g) + (diffs.added.sizes + diffs.removed.sizes) * w
        offsets = np.zeros(c + 1, dtype=np.int64)
        np.cumsum(nbits, out=offsets[1:])
        payload_bits = int(offsets[-1])
        offset_width = bits.width_for(payload_bits)
        sections = [
            *id_sections,
            bits.pack(forms.astype(np.uint64), 2),
            bits.pack(offsets.astype(np.uint64), offset_width),
            _payload_words(table, forms, offsets, diffs, id_width),
        ]
        count_bytes = total = start_width = 0
        if cls.keeps_counts:
            by_slot = rows.in_slot_order(slots)
            values = by_slot.value_counts()
            total = int(values.size)
            dt = count_dtype(int(values.max()) if values.size else 0)
            count_bytes = dt.itemsize
            start_width = bits.width_for(total)
            store = np.zeros(-(-total * count_bytes // 8) * 8, dtype=np.uint8)
            store.view(dt)[:total] = np.minimum(values, np.iinfo(dt).max)
            sections += [bits.pack(by_slot.indptr.astype(np.uint64), start_width), store.view(np.uint64)]
        header = np.zeros(HEADER_WORDS, dtype=np.uint64)
        header[:14] = [
            MAGIC,
            VERSION,
            n,
            g,
            c,
            id_width,
            w,
            payload_bits,
            offset_width,
            count_bytes,
            total,
            start_width,
            runs,
            bound_bytes,
        ]
        return np.concatenate([header, *sections])

    @classmethod
    def check(cls, data: np.ndarray, n_genomes: int, source: str) -> None:
        cls._layout(data, n_genomes, source)

    @classmethod
    def _layout(cls, data: np.ndarray, n_genomes: int | None, source: str) -> dict:
        """Header fields and section word offsets, checked against the array's size."""
        arr, head = bits.read_header(data, HEADER_WORDS, MAGIC, VERSIONS, source, "a colour-class group")
        n, g, c, id_width, w, payload_bits, offset_width, count_bytes, total, start_width = head[2:12]
        runs, bound_bytes = head[12:14]
        what = "a colour-class group"
        if cls.placed and (bound_bytes not in (4, 8) or runs > n or (runs == 0) != (n == 0)):
            raise CorruptDatabaseError(source, f"not {what} in unitig order (header fields)")
        if n_genomes is not None and g != n_genomes:
            raise CorruptDatabaseError(source, f"holds classes of {g} genomes, the catalog names {n_genomes}")
        if w != member_width(g) or (count_bytes != 0) != cls.keeps_counts or count_bytes not in (0, 1, 2, 4):
            raise CorruptDatabaseError(source, f"not {what} of kind {cls.kind} (header fields)")
        if c > max(n, 1) or payload_bits > 64 * arr.size or total > 8 * arr.size:
            raise CorruptDatabaseError(source, f"{what} header claims more than its {arr.size} words hold")
        fields = [(runs, id_width) if cls.placed else (n, id_width), (c, 2), (c + 1, offset_width)]
        if count_bytes:
            fields.append((n + 1, start_width))
        bits.check_fields(arr.size, fields, source, what)
        at = HEADER_WORDS
        sections = {}
        ids: tuple[tuple[str, int], ...] = (
            (("bounds", -(-(runs + 1) * bound_bytes // 8)), ("runs", bits.n_words(runs, id_width)))
            if cls.placed
            else (("ids", bits.n_words(n, id_width)),)
        )
        for name, words in (
            ids
            + (
                ("forms", bits.n_words(c, 2)),
                ("offsets", bits.n_words(c + 1, offset_width)),
                ("payload", -(-payload_bits // 64) + 1),
            )
            + (
                (("starts", bits.n_words(n + 1, start_width)), ("values", -(-total * count_bytes // 8)))
                if count_bytes
                else ()
            )
        ):
            sections[name] = (at, at + words)
            at += words
        if at != arr.size:
            raise CorruptDatabaseError(source, f"{what} of {arr.size} words, its header says {at}")
        return {
            "n": n,
            "g": g,
            "c": c,
            "id_width": id_width,
            "w": w,
            "payload_bits": payload_bits,
            "offset_width": offset_width,
            "count_bytes": count_bytes,
            "total": total,
            "start_width": start_width,
            "sections": sections,
            "runs": runs,
            "bound_bytes": bound_bytes,

        }

    # -- reading ------------------------------------------------------------------------
    def __init__(
        self,
        data: np.ndarray,
        genome_ids: tuple[int, ...],
        column_of: Mapping[int, int],
        source: str,
        ordinals: SlotOrdinals | None = None,
    ) -> None:
        super().__init__(data, genome_ids, column_of, source, ordinals)
        lay = self._layout(data, len(self.genome_ids), source)
        self._lay = lay
        self.n_classes = lay["c"]
        sec = lay["sections"]
        self._ordinals = ordinals
        self._bounds: np.ndarray | None = None
        # the rank index of the run starts, made at the first lookup (kernels.run_classes)
        self._index: tuple[np.ndarray, int] | None = None
        if self.placed:
            self._bounds = self._open_runs(ordinals)
        else:
            self._ids = data[slice(*sec["ids"])]
        self._offsets_words = data[slice(*sec["offsets"])]
        self._forms_words = data[slice(*sec["forms"])]
        self._payload = data[slice(*sec["payload"])]
        self._table: SparseRows | None = None
        self._packed: np.ndarray | None = None
        self._plan: np.ndarray | None = None
        self.tallies_by_class = len(self.genome_ids) > _BYTE_TALLY_GENOMES

    @property
    def n(self) -> int:
        return int(self._lay["n"])

    @property
    def row_nbytes(self) -> int:
        g = len(self.genome_ids)
        return 4 * g if self.keeps_counts else max(1, (g + 7) // 8)

    def _open_runs(self, ordinals: SlotOrdinals | None) -> np.ndarray:
        """The bounds of the runs, checked against the layer (unitig-ordered kinds)."""
        lay = self._lay
        if ordinals is None:
            raise CorruptDatabaseError(self.source, "a class group in unitig order, in a layer without exact evidence")
        if ordinals.n != lay["n"]:
            raise CorruptDatabaseError(self.source, f"laid out over {lay['n']} k-mers, its layer has {ordinals.n}")
        runs = lay["runs"]
        words = self.data[slice(*lay["sections"]["bounds"])]
        bounds = np.asarray(words).view(np.dtype(f"<u{lay['bound_bytes']}"))[: runs + 1]
        if int(bounds[0]) != 0 or int(bounds[-1]) != lay["n"] or (runs and not (bounds[1:] > bounds[:-1]).all()):
            raise CorruptDatabaseError(self.source, "the runs of classes do not cover the unitigs in order")
        self._runs = self.data[slice(*lay["sections"]["runs"])]
        return bounds

    def _run_index(self) -> tuple[np.ndarray, int]:
        """For short runs, the bit vector of the run starts and its rank directory, and the
        word where that starts (:func:`~kmerdb.core.bits.rank_index`), made at first use: a
        bit per k-mer and 1/16 more, in memory, at most about 64 bits per run.  For long runs
        an empty index: lookups search the bounds (:func:`~kmerdb.core.kernels.run_classes`)."""
        if self._index is None:
            bounds = cast(np.ndarray, self._bounds)
            if self._short_runs():
                self._index = bits.rank_index(bounds[:-1], self.n)
            else:
                self._index = (np.zeros(0, dtype=np.uint64), 0)
        return self._index

    def _short_runs(self) -> bool:
        """Whether the runs are short (many genomes): their lookups prefetch ahead and do not
        try the previous run first (:func:`~kmerdb.core.kernels.run_classes`)."""
        return self.n < _SHORT_RUNS * self._lay["runs"]

    def _sweep_runs(self, n_keys: int) -> None:
        """Read the runs' arrays in order before ``n_keys`` lookups that would need most of
        their cache lines (see :func:`~kmerdb.core.kernels.sweep`)."""
        # 1,000 genomes, with the class table swept as well (add_class_hits), three
        # alternating runs: 186, 183, 173 -> 181, 180, 172 ns per k-mer
        if kernels.sweep_pays(n_keys, self.n):
            bounds, runs = cast(np.ndarray, self._bounds), self._runs.view(np.ndarray)
            kernels.sweep(self._run_index()[0], runs, bounds[:0] if self._short_runs() else bounds, runs[:0], runs[:0])

    def class_ids(self, slots: np.ndarray) -> np.ndarray:
        """Class id of each of ``slots`` (int64)."""
        slots = np.asarray(slots, dtype=np.int64)
        if self._bounds is None:
            ids = bits.unpack(self._ids, self.n, self._lay["id_width"], slots).view(np.int64)
        else:
            at = cast(SlotOrdinals, self._ordinals).of(slots)  # checked below n by the layer
            ids = np.empty(at.size, dtype=np.int64)
            self._sweep_runs(at.size)
            index, rank_at = self._run_index()
            status = kernels.run_classes(
                self._bounds, index, rank_at, np.ascontiguousarray(at, dtype=np.int64),
                self._runs.view(np.ndarray), self._lay["id_width"], self.n_classes, ids, self._short_runs(),
            )
            if status != kernels.OK:
                raise CorruptDatabaseError(self.source, f"a run names a class beyond its {self.n_classes}")
            return ids
        if ids.size and int(ids.max()) >= self.n_classes:
            raise CorruptDatabaseError(self.source, f"a slot names class {int(ids.max())} of {self.n_classes}")
        return ids

    def local_members(self, ids: np.ndarray) -> SparseRows:
        """Members of classes ``ids`` as group positions (all genomes of the group, ascending)."""
        rows, complement = self._local_shortest(ids)
        if not complement.any():
            return rows
        # complements expanded through dense blocks of bounded size
        g = len(self.genome_ids)
        flip = np.flatnonzero(complement)
        keep = np.flatnonzero(~complement)
        parts = [(keep, rows.take(keep))]
        step = max(1, (16 << 20) // max(1, g))
        for lo in range(0, flip.size, step):
            part = flip[lo : lo + step]
            sub = rows.take(part)
            held = np.ones((part.size, g), dtype=bool)
            held[sub.row_of(), sub.columns] = False
            parts.append((part, SparseRows.from_dense(held)))
        order = np.concatenate([idx for idx, _ in parts])
        stacked = SparseRows.vstack([r for _, r in parts], g)
        back = np.empty(order.size, dtype=np.int64)
        back[order] = np.arange(order.size)
        return stacked.take(back)

    def _kernel_table(self) -> tuple:
        """The class table as :mod:`kmerdb.core.kernels` takes it: forms, offsets, payload and
        its numbers (offset width, payload bits, member width, genomes, classes, id width,
        width of a difference's count)."""
        if self._plan is None:
            lay = self._lay
            g = len(self.genome_ids)
            self._plan = np.array(
                [lay["offset_width"], lay["payload_bits"], lay["w"], g, self.n_classes, lay["id_width"], bits.width_for(g)],
                dtype=np.int64,
            )
        return self._forms_words.view(np.ndarray), self._offsets_words.view(np.ndarray), self._payload.view(np.ndarray), self._plan

    def add_class_hits(
        self, hits: np.ndarray, everyone: np.ndarray, seq: np.ndarray, ids: np.ndarray, amount: np.ndarray
    ) -> None:
        """Add ``amount[i]`` to row ``seq[i]`` of ``hits`` (an integer type, sequences x
        database columns, whose range holds every final cell: sums wrap on the way) at the
        genomes of class ``ids[i]``, decoded from the class table in place
        (:func:`kmerdb.core.kernels.class_hits`); a class of most of the group's genomes adds
        to ``everyone[seq[i]]`` instead, which the caller adds to every column of the group
        (:attr:`cols`).  Pairs in any order; those of one sequence together cost least (its
        classes are then expanded once)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.columns.size and int(self.columns.max()) >= hits.shape[1]:
            raise CorruptDatabaseError(self.source, "a genome of the group is not a column of the database")
        c = self.n_classes
        if kernels.sweep_pays(ids.size, c):  # the pairs would need most of the table's lines
            forms, offsets, payload, _ = self._kernel_table()
            kernels.sweep(forms, offsets, payload, forms[:0], forms[:0])
        # a contiguous hits array is prefetched row by row (kernels.class_hits)
        rows = hits.reshape(-1) if hits.flags.c_contiguous else hits[:0, :0].reshape(-1)
        lanes, lane_base = _byte_lanes(hits, self.columns)
        status = kernels.class_hits(
            *self._kernel_table(), ids, self.columns.astype(np.int64), seq, amount, hits, rows, lanes, lane_base, everyone,
            np.zeros((c, 3), dtype=np.int64), np.empty((c, 4), dtype=np.int64),
        )
        if status != kernels.OK:
            raise CorruptDatabaseError(self.source, "a class's id, form, offsets or members are out of range")

    def _shortest_sizes(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of classes ``ids`` (int64), the genomes their shorter form lists and whether it lists
        those the class lacks (:func:`kmerdb.core.kernels.class_sizes`)."""
        sizes = np.empty(ids.size, dtype=np.int64)
        complement = np.empty(ids.size, dtype=bool)
        if kernels.class_sizes(*self._kernel_table(), ids, sizes, complement) != kernels.OK:
            raise CorruptDatabaseError(self.source, "a class's id, form, offsets or members are out of range")
        return sizes, complement

    def _local_shortest(self, ids: np.ndarray) -> tuple[SparseRows, np.ndarray]:
        """Classes ``ids`` as group positions in their shorter form: members, or where the
        flag is set, the genomes of the group not in the class (each class decoded straight to
        its place in the rows by :func:`kmerdb.core.kernels.class_members`)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        sizes, complement = self._shortest_sizes(ids)
        indptr = np.zeros(ids.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        columns = np.empty(int(indptr[-1]), dtype=np.int32)
        work = np.empty((2, len(self.genome_ids)), dtype=np.int64)
        chain = np.empty(kernels.MAX_CHAIN, dtype=np.int64)
        if kernels.class_members(*self._kernel_table(), ids, complement, indptr, columns, work, chain) != kernels.OK:
            raise CorruptDatabaseError(self.source, "a class's id, form, offsets or members are out of range")
        return SparseRows(indptr, columns, None, len(self.genome_ids)), complement

    def parents(self) -> np.ndarray:
        """The parent of each class written as a difference (the genomes it adds to and
        removes from its parent), -1 for a class written whole (int64, one per class)."""
        out = np.empty(self.n_classes, dtype=np.int64)
        if kernels.class_parents(*self._kernel_table(), out) != kernels.OK:
            raise CorruptDatabaseError(self.source, "a class's id, form, offsets or members are out of range")
        return out

    def members(self, ids: np.ndarray) -> SparseRows:
        """Members of classes ``ids`` as database columns (genomes still in the database)."""
        return self.local_members(ids).remap(self.columns, self.n_db)

    def members_or_complement(self, ids: np.ndarray) -> tuple[SparseRows, np.ndarray]:
        """Classes ``ids`` in their shorter form, as database columns.

        Returns
        -------
        rows : SparseRows
            Row i: the members of class ``ids[i]``, or, where ``complement[i]``, the genomes
            of the group that are *not* in it (genomes no longer in the database left out).
        complement : ndarray of bool
            Which rows list the missing genomes: a class of most of the group's genomes (the
            core genome) costs the few it lacks, so tallies add to every column of the group
            and subtract the few instead of listing them all.
        """
        local, complement = self._local_shortest(ids)
        return local.remap(self.columns, self.n_db), complement

    def class_sizes(self, ids: np.ndarray) -> np.ndarray:
        """Genomes of the group (removed ones included) in each of classes ``ids``, from the
        forms and offsets (and a bit count of bitmaps), without listing members."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        sizes, complement = self._shortest_sizes(ids)
        return np.where(complement, len(self.genome_ids) - sizes, sizes)

    def slots_counting(self, lo: int, hi: int, at_least: int) -> np.ndarray:
        """Slots of ``lo:hi`` with a count of ``at_least`` or more for some genome (ascending;
        class-counts), found by one pass over their count values without listing members."""
        if not self.keeps_counts or hi <= lo:
            return np.zeros(0, dtype=np.int64)
        lay = self._lay
        words = self.data[slice(*lay["sections"]["starts"])]
        starts = bits.unpack(words, self.n + 1, lay["start_width"], np.arange(lo, hi + 1, dtype=np.int64)).view(np.int64)
        first, last = int(starts[0]), int(starts[-1])
        if last < first or last > lay["total"] or (np.diff(starts) < 0).any():
            raise CorruptDatabaseError(self.source, "a slot's counts lie outside the count values")
        dt = np.dtype(f"<u{lay['count_bytes']}")
        values = self.data[slice(*lay["sections"]["values"])].view(np.uint8).view(dt)[first:last]
        at = np.flatnonzero(values >= at_least) + first
        slots = np.searchsorted(starts, at, side="right") - 1 + lo
        return slots[np.append(True, slots[1:] != slots[:-1])] if slots.size else slots

    def count_lengths(self, slots: np.ndarray) -> np.ndarray:
        """How many counts each of ``slots`` has (class-counts), checked to lie inside the
        count values; its class's size, in a sound group."""
        if not self.keeps_counts:
            return np.zeros(np.asarray(slots).size, dtype=np.int64)
        slots = np.asarray(slots, dtype=np.int64)
        lay = self._lay
        words = self.data[slice(*lay["sections"]["starts"])]
        first = bits.unpack(words, self.n + 1, lay["start_width"], slots).view(np.int64)
        last = bits.unpack(words, self.n + 1, lay["start_width"], slots + 1).view(np.int64)
        if slots.size and ((last < first).any() or int(last.max()) > lay["total"]):
            raise CorruptDatabaseError(self.source, "a slot's counts lie outside the count values")
        return last - first

    def local_packed(self, ids: np.ndarray) -> np.ndarray:
        """Classes ``ids`` as presence bits over all genomes of the group (group order, packed
        as ``np.packbits``), through dense blocks of bounded size."""
        ids = np.asarray(ids, dtype=np.int64)
        g = len(self.genome_ids)
        out = np.zeros((ids.size, (g + 7) // 8), dtype=np.uint8)
        step = max(1, (16 << 20) // max(1, g))
        for lo in range(0, ids.size, step):
            rows, complement = self._local_shortest(ids[lo : lo + step])
            block = np.zeros((rows.n, g), dtype=bool)
            block[complement] = True
            # a member list sets its genomes, a complement list clears them
            block[rows.row_of(), rows.columns] = np.repeat(~complement, rows.sizes)
            out[lo : lo + step] = np.packbits(block, axis=1)
        return out

    def table(self) -> SparseRows:
        """Every class's members as group positions (decoded once, then kept)."""
        if self._table is None:
            self._table = self.local_members(np.arange(self.n_classes, dtype=np.int64))
        return self._table

    def _packed_table(self) -> np.ndarray:
        if self._packed is None:
            self._packed = self.table().packed()
        return self._packed

    def _local_rows(self, slots: np.ndarray) -> SparseRows:
        ids = self.class_ids(np.asarray(slots, dtype=np.int64))
        if not ids.size:
            return SparseRows.empty(0, len(self.genome_ids), self.keeps_counts)
        uniq, inverse = np.unique(ids, return_inverse=True)
        rows = self.local_members(uniq).take(inverse)
        if self.keeps_counts:
            rows = SparseRows(rows.indptr, rows.columns, self._slot_counts(np.asarray(slots, np.int64), rows), rows.n_columns)
        return rows

    def _slot_counts(self, slots: np.ndarray, rows: SparseRows) -> np.ndarray:
        lay = self._lay
        sec = lay["sections"]
        starts_words = self.data[slice(*sec["starts"])]
        first = bits.unpack(starts_words, self.n + 1, lay["start_width"], slots).view(np.int64)
        last = bits.unpack(starts_words, self.n + 1, lay["start_width"], slots + 1).view(np.int64)
        if ((last - first) != rows.sizes).any() or (slots.size and int(last.max()) > lay["total"]):
            raise CorruptDatabaseError(self.source, "a slot's counts disagree with its class")
        dt = np.dtype(f"<u{lay['count_bytes']}")
        values = self.data[slice(*sec["values"])].view(np.uint8).view(dt)
        return values[segment_positions(first, rows.sizes)].astype(np.uint32)

    def rows(self, slots: np.ndarray) -> SparseRows:
        return self._local_rows(slots).remap(self.columns, self.n_db)

    def values(self, slots: np.ndarray, counts: bool) -> np.ndarray:
        local = self._local_rows(slots)
        dense = local.to_dense(np.uint32 if (counts and self.keeps_counts) else bool)
        return dense[:, self.keep]

    def packed_rows(self, slots: np.ndarray) -> np.ndarray:
        ids = self.class_ids(np.asarray(slots, dtype=np.int64))
        return self._packed_table()[ids]

    def tally_presence_bytes(
        self, slots: np.ndarray, seqs: np.ndarray, table_for: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        if self._bounds is None or len(self.genome_ids) > 8 or not self._byte_columns:
            super().tally_presence_bytes(slots, seqs, table_for)
            return
        # one byte of genomes in runs of unitig order: each slot's class and its byte are
        # counted in the pass that finds the class (no array of ids, no gather of bytes)
        cols = self._byte_columns[0][1]
        at = cast(SlotOrdinals, self._ordinals).of(np.asarray(slots, dtype=np.int64))
        self._sweep_runs(at.size)
        index, rank_at = self._run_index()
        status = kernels.run_byte_tally(
            self._bounds, index, rank_at, np.ascontiguousarray(at, dtype=np.int64),
            self._runs.view(np.ndarray), self._lay["id_width"], self.n_classes,
            np.ascontiguousarray(self._packed_table()[:, 0]), np.ascontiguousarray(seqs, dtype=np.int64),
            cols.size, table_for(cols), self._short_runs(),
        )
        if status != kernels.OK:
            raise CorruptDatabaseError(self.source, f"a run names a class beyond its {self.n_classes}")

    def class_block(self, lo: int, hi: int, counts: bool) -> tuple[np.ndarray, np.dtype | None]:
        slots = np.arange(lo, hi, dtype=np.int64)
        if not counts:
            if self.full:
                return self.packed_rows(slots), None
            return np.packbits(self.values(slots, False), axis=1), None
        vals = np.ascontiguousarray(self.values(slots, True))
        if not self.keeps_counts:
            vals = vals.astype(np.uint8)
        return vals.view(np.uint8).reshape(vals.shape[0], -1), vals.dtype

    def block_classes(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Classes of slots ``lo:hi`` that occur there: their ids and their slot counts."""
        ids = self.class_ids(np.arange(lo, hi, dtype=np.int64))
        weights = np.bincount(ids, minlength=self.n_classes)
        used = np.flatnonzero(weights)
        return used, weights[used]

    def tally(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        g = len(self.genome_ids)
        if self.keeps_counts:
            rows = self._local_rows(np.arange(lo, hi, dtype=np.int64))
            held = np.bincount(rows.columns, minlength=g)
            total = np.bincount(rows.columns, weights=rows.value_counts(), minlength=g)
            return held[self.keep].astype(np.int64), np.rint(total[self.keep]).astype(np.int64)
        used, weights = self.block_classes(lo, hi)
        members = self.local_members(used)
        held = np.bincount(members.columns, weights=np.repeat(weights, members.sizes), minlength=g)
        held = np.rint(held[self.keep]).astype(np.int64)
        return held, held.copy()

    def count_values(self, lo: int, hi: int) -> np.ndarray | None:
        if not self.keeps_counts:
            return None
        return self.values(np.arange(lo, hi, dtype=np.int64), True)


@register_encoding
class ColourClasses(_ClassGroup):
    """Presence as colour classes: a bit-packed class id per slot and a table of classes."""

    kind = "classes"
    keeps_counts = False


@register_encoding
class ClassCounts(_ClassGroup):
    """Counts over colour classes: class ids, and one count per member of a slot's class."""

    kind = "class-counts"
    keeps_counts = True


@register_encoding
class UnitigClasses(_ClassGroup):
    """Presence as colour classes in the layer's unitig order: runs of classes, a table of classes."""

    kind = "unitig-classes"
    keeps_counts = False
    placed = True
    since = 3


@register_encoding
class UnitigClassCounts(_ClassGroup):
    """Counts over colour classes in unitig order: runs of classes, one count per member of a
    slot's class (by slot)."""

    kind = "unitig-class-counts"
    keeps_counts = True
    placed = True
    since = 3


def _byte_lanes(hits: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, int]:
    """``hits`` as words of eight one-byte cells and the word where a group's genomes
    start, where its bitmaps can be added a byte at a time (:func:`kmerdb.core.kernels.class_hits`):
    cells of one byte, rows of whole words, and the group's genomes the consecutive columns
    from a word's first on, with room for the last word.  Else an empty array and -1."""
    g = columns.size
    first = int(columns[0]) if g else 0
    if (
        hits.dtype.itemsize == 1
        and hits.flags.c_contiguous
        and hits.shape[1] % 8 == 0
        and g
        and first % 8 == 0
        and first + -(-g // 8) * 8 <= hits.shape[1]
        and np.array_equal(columns, np.arange(first, first + g))
    ):
        return hits.view(np.uint64), first // 8
    return np.zeros((0, 0), dtype=np.uint64), -1


def slot_ordered(group: ColumnEncoding) -> tuple[str, np.ndarray]:
    """A unitig-ordered class group rewritten by slot (its kind and array): the same classes
    and counts, an id per slot.  What a layer whose evidence stops being exact keeps."""
    if not group.placed or not isinstance(group, _ClassGroup):
        raise ValueError(f"{group.kind} groups are not in unitig order")
    lay = group._lay
    sec = lay["sections"]
    header = np.array(group.data[:HEADER_WORDS], dtype=np.uint64)
    header[12:14] = 0
    ids = group.class_ids(np.arange(group.n, dtype=np.int64)).astype(np.uint64)
    kind = "class-counts" if group.keeps_counts else "classes"
    rest = group.data[sec["forms"][0] :]
    return kind, np.concatenate([header, bits.pack(ids, lay["id_width"]), np.asarray(rest, dtype=np.uint64)])


def reordered(group: ColumnEncoding, old_slots: np.ndarray, new_slots: np.ndarray, placed: bool) -> tuple[str, np.ndarray]:
    """A class group rewritten for a new slot order of its layer (its kind and array): the same
    classes and counts, without expanding its rows.

    Parameters
    ----------
    group : ColumnEncoding
        An opened colour-class group (by slot or in unitig order).
    old_slots, new_slots : ndarray of int64
        The old and the new slot of each k-mer of the layer (any one order of the k-mers).
    placed : bool
        Lay the ids out as runs in unitig order (the new slots are unitig orders).
    """
    if not isinstance(group, _ClassGroup):
        raise ValueError(f"{group.kind} groups hold no colour classes")
    lay = group._lay
    sec = lay["sections"]
    n = group.n
    old_slots = np.asarray(old_slots, dtype=np.int64)
    new_slots = np.asarray(new_slots, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)  # the old slot of each new slot
    order[new_slots] = old_slots
    ids = group.class_ids(order).astype(np.uint64)
    header = np.array(group.data[:HEADER_WORDS], dtype=np.uint64)
    if placed:
        id_sections, runs, bound_bytes = _runs(ids, Placement(np.arange(n, dtype=np.int64)), lay["id_width"])
        header[12:14] = [runs, bound_bytes]
        kind = "unitig-class-counts" if group.keeps_counts else "unitig-classes"
    else:
        id_sections = [bits.pack(ids, lay["id_width"])]
        header[12:14] = 0
        kind = "class-counts" if group.keeps_counts else "classes"
    tables = [np.asarray(group.data[sec[name][0] : sec[name][1]], dtype=np.uint64) for name in ("forms", "offsets", "payload")]
    counts: list[np.ndarray] = []
    if group.keeps_counts:
        # each new slot's count values, gathered from its old slot's segment
        starts = bits.unpack(group.data[slice(*sec["starts"])], n + 1, lay["start_width"]).view(np.int64)
        first, sizes = starts[:-1].take(order), np.diff(starts).take(order)
        new_starts = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(sizes, out=new_starts[1:])
        width = lay["count_bytes"]
        values = group.data[slice(*sec["values"])].view(np.uint8)[: lay["total"] * width].view(np.dtype(f"<u{width}"))
        store = np.zeros(-(-lay["total"] * width // 8) * 8, dtype=np.uint8)
        store.view(values.dtype)[: lay["total"]] = values[segment_positions(first, sizes)]
        counts = [bits.pack(new_starts, lay["start_width"]), store.view(np.uint64)]
    return kind, np.concatenate([header, *id_sections, *tables, *counts])


def _runs(row_class: np.ndarray, placement: Placement, id_width: int) -> tuple[list[np.ndarray], int, int]:
    """The bounds and runs sections of a unitig-ordered group, its number of runs and the bytes
    of a bound."""
    n = row_class.size
    by_unitig = np.empty(n, dtype=np.int64)
    by_unitig[np.asarray(placement.ordinals, dtype=np.int64)] = row_class  # rows in unitig order
    first = np.flatnonzero(np.concatenate(([True], by_unitig[1:] != by_unitig[:-1]))) if n else by_unitig[:0]
    bounds = np.append(first, n)
    bound_bytes = 4 if n < _BOUND32 else 8
    store = np.zeros(-(-bounds.size * bound_bytes // 8), dtype=np.uint64)
    store.view(np.dtype(f"<u{bound_bytes}"))[: bounds.size] = bounds
    runs = by_unitig[first].astype(np.uint64)
    return [store, bits.pack(runs, id_width)], int(first.size), bound_bytes

