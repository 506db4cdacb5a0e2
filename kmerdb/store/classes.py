"""Colour-class column encodings: a class id per slot, each distinct set of genomes stored once.

A column group of ``g`` genomes over ``n`` slots, kind ``classes`` (presence) or
``class-counts``, is one ``uint64`` array:

=========  ============================================================================
section    content
=========  ============================================================================
header     16 words: magic ``kmerCLRS``, version, n, g, C (classes), id width, member
           bytes (1, 2 or 4), payload bytes, offset width, count bytes (0: presence),
           count values, start width, then zeros
ids        n fields of ``id width`` bits (:mod:`kmerdb.core.bits`): the class of each slot
forms      C fields of 2 bits: 0 sorted member list, 1 sorted list of the genomes *not* in
           the class (complement), 2 bitmap (``ceil(g / 8)`` bytes, genome i at bit
           ``7 - i % 8`` of byte ``i // 8``)
offsets    C + 1 fields of ``offset width`` bits: the byte offset of each class in the payload
payload    the classes' bytes; lists are little-endian integers of ``member bytes`` each,
           and every class starts at a multiple of ``member bytes``
starts     (counts only) n + 1 fields of ``start width`` bits: slot s's counts are values
           ``starts[s]:starts[s + 1]``
values     (counts only) one unsigned integer of ``count bytes`` per (slot, member of its
           class), aligned with the members in ascending order; saturating at uint32's max
=========  ============================================================================

Each class takes the cheapest of its three forms, so a class of a few genomes costs a few
bytes, the class of the core genome (all genomes but a few) costs the few it lacks, and
only classes of middling size cost a bitmap.  Class ids are numbered by decreasing number of
slots.  Classes live in the group's file: a layer's classes are the distinct colours of its
own k-mers, so a file is complete by itself and a new group (an append) never touches an
old one.  See docs/format.md for the size model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kmerdb.core import bits
from kmerdb.core.colours import SparseRows, segment_positions
from kmerdb.errors import CorruptDatabaseError
from kmerdb.store.encodings import ColumnEncoding, count_dtype, register_encoding

__all__ = ["ColourClasses", "ClassCounts", "MAGIC", "VERSION", "HEADER_WORDS", "class_nbytes"]

MAGIC = int.from_bytes(b"kmerCLRS", "little")
VERSION = 1
HEADER_WORDS = 16
LIST, COMPLEMENT, BITMAP = 0, 1, 2
_U32_MAX = int(np.iinfo(np.uint32).max)
# Below this many genomes, query tallies read a class's presence byte (a table lookup per slot)
# instead of tallying class ids and expanding them.
_BYTE_TALLY_GENOMES = 32


def _member_bytes(g: int) -> int:
    return 1 if g <= 1 << 8 else 2 if g <= 1 << 16 else 4


def _forms(sizes: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest form of each class and its payload bytes (padded to the member width)."""
    mb = _member_bytes(g)
    bitmap = -(-((g + 7) // 8) // mb) * mb
    listed = sizes * mb
    complement = (g - sizes) * mb
    forms = np.where(listed <= np.minimum(complement, bitmap), LIST, np.where(complement <= bitmap, COMPLEMENT, BITMAP))
    nbytes = np.where(forms == LIST, listed, np.where(forms == COMPLEMENT, complement, bitmap))
    return forms.astype(np.uint8), nbytes.astype(np.int64)


def class_nbytes(table: SparseRows) -> int:
    """Bytes of the forms, offsets and payload of a class table (the size model's class part)."""
    _, nbytes = _forms(table.sizes, table.n_columns)
    payload = int(nbytes.sum())
    c = table.n
    return 8 * (bits.n_words(c, 2) + bits.n_words(c + 1, bits.width_for(payload)) + -(-payload // 8))


def _complement_members(table: SparseRows, rows: np.ndarray) -> SparseRows:
    """The genomes not in each of the classes ``rows`` (ascending)."""
    g = table.n_columns
    sub = table.take(rows)
    present = np.zeros((sub.n, g), dtype=bool)
    if sub.nnz:
        present[sub.row_of(), sub.columns] = True
    return SparseRows.from_dense(~present)


class _ClassGroup(ColumnEncoding):
    """Shared reading and writing of the two colour-class kinds."""

    keeps_counts = False
    default = True
    family = "classes"
    since = 2
    n_classes: int

    # -- writing ------------------------------------------------------------------------
    @classmethod
    def encode(cls, rows: SparseRows, slots: np.ndarray) -> np.ndarray:
        n, g = rows.n, rows.n_columns
        # classes of the rows in key order; only the ids (and counts) are put in slot order
        row_class, table = rows.classes()
        class_of = np.empty(n, dtype=np.int64)
        class_of[np.asarray(slots, dtype=np.int64)] = row_class
        del row_class
        c = table.n
        id_width = bits.width_for(max(0, c - 1))
        mb = _member_bytes(g)
        forms, nbytes = _forms(table.sizes, g)
        offsets = np.zeros(c + 1, dtype=np.int64)
        np.cumsum(nbytes, out=offsets[1:])
        payload_bytes = int(offsets[-1])
        payload = np.zeros(-(-payload_bytes // 8) * 8, dtype=np.uint8)
        mdt = np.dtype(f"<u{mb}")
        for form in (LIST, COMPLEMENT):
            which = np.flatnonzero(forms == form)
            if not which.size:
                continue
            members = table.take(which) if form == LIST else _complement_members(table, which)
            at = segment_positions(offsets[which] // mb, members.sizes)
            payload.view(mdt)[at] = members.columns
        which = np.flatnonzero(forms == BITMAP)
        if which.size:
            nb = (g + 7) // 8
            step = max(1, (32 << 20) // max(1, g))
            for lo in range(0, which.size, step):
                part = which[lo : lo + step]
                packed = table.take(part).packed()
                at = (offsets[part][:, None] + np.arange(nb)[None, :]).ravel()
                payload[at] = packed.ravel()
        offset_width = bits.width_for(payload_bytes)
        sections = [
            bits.pack(class_of.astype(np.uint64), id_width),
            bits.pack(forms.astype(np.uint64), 2),
            bits.pack(offsets.astype(np.uint64), offset_width),
            payload.view(np.uint64),
        ]
        count_bytes = total = start_width = 0
        if cls.keeps_counts:
            by_slot = rows.take(_inverse(slots, n)) if n else rows
            values = by_slot.value_counts()
            total = int(values.size)
            dt = count_dtype(int(values.max()) if values.size else 0)
            count_bytes = dt.itemsize
            start_width = bits.width_for(total)
            store = np.zeros(-(-total * count_bytes // 8) * 8, dtype=np.uint8)
            store.view(dt)[:total] = np.minimum(values, np.iinfo(dt).max)
            sections += [bits.pack(by_slot.indptr.astype(np.uint64), start_width), store.view(np.uint64)]
        header = np.zeros(HEADER_WORDS, dtype=np.uint64)
        header[:12] = [
            MAGIC, VERSION, n, g, c, id_width, mb, payload_bytes, offset_width, count_bytes, total, start_width,
        ]
        return np.concatenate([header, *sections])

    @classmethod
    def check(cls, data: np.ndarray, n_genomes: int, source: str) -> None:
        cls._layout(data, n_genomes, source)

    @classmethod
    def _layout(cls, data: np.ndarray, n_genomes: int | None, source: str) -> dict:
        """Header fields and section word offsets, checked against the array's size."""
        arr, head = bits.read_header(data, HEADER_WORDS, MAGIC, VERSION, source, "a colour-class group")
        n, g, c, id_width, mb, payload_bytes, offset_width, count_bytes, total, start_width = head[2:12]
        what = "a colour-class group"
        if n_genomes is not None and g != n_genomes:
            raise CorruptDatabaseError(source, f"holds classes of {g} genomes, the catalog names {n_genomes}")
        if mb != _member_bytes(g) or (count_bytes != 0) != cls.keeps_counts or count_bytes not in (0, 1, 2, 4):
            raise CorruptDatabaseError(source, f"not {what} of kind {cls.kind} (header fields)")
        if c > max(n, 1) or payload_bytes > 8 * arr.size or total > 8 * arr.size:
            raise CorruptDatabaseError(source, f"{what} header claims more than its {arr.size} words hold")
        fields = [(n, id_width), (c, 2), (c + 1, offset_width)]
        if count_bytes:
            fields.append((n + 1, start_width))
        bits.check_fields(arr.size, fields, source, what)
        at = HEADER_WORDS
        sections = {}
        for name, words in (
            ("ids", bits.n_words(n, id_width)),
            ("forms", bits.n_words(c, 2)),
            ("offsets", bits.n_words(c + 1, offset_width)),
            ("payload", -(-payload_bytes // 8)),
        ) + (
            (("starts", bits.n_words(n + 1, start_width)), ("values", -(-total * count_bytes // 8)))
            if count_bytes
            else ()
        ):
            sections[name] = (at, at + words)
            at += words
        if at != arr.size:
            raise CorruptDatabaseError(source, f"{what} of {arr.size} words, its header says {at}")
        return {
            "n": n, "g": g, "c": c, "id_width": id_width, "mb": mb, "payload_bytes": payload_bytes,
            "offset_width": offset_width, "count_bytes": count_bytes, "total": total,
            "start_width": start_width, "sections": sections,
        }

    # -- reading ------------------------------------------------------------------------
    def __init__(self, data: np.ndarray, genome_ids: tuple[int, ...], column_of: Mapping[int, int], source: str) -> None:
        super().__init__(data, genome_ids, column_of, source)
        lay = self._layout(data, len(self.genome_ids), source)
        self._lay = lay
        self.n_classes = lay["c"]
        sec = lay["sections"]
        self._ids = data[slice(*sec["ids"])]
        self._offsets_words = data[slice(*sec["offsets"])]
        self._forms_words = data[slice(*sec["forms"])]
        self._payload = data[slice(*sec["payload"])].view(np.uint8)
        self._table: SparseRows | None = None
        self._packed: np.ndarray | None = None
        # database column of each group member, -1 for a removed genome
        self._column_map = self.columns
        self.tallies_by_class = len(self.genome_ids) > _BYTE_TALLY_GENOMES

    @property
    def n(self) -> int:
        return int(self._lay["n"])

    @property
    def row_nbytes(self) -> int:
        g = len(self.genome_ids)
        return 4 * g if self.keeps_counts else max(1, (g + 7) // 8)

    def class_ids(self, slots: np.ndarray) -> np.ndarray:
        """Class id of each of ``slots`` (int64)."""
        ids = bits.unpack(self._ids, self.n, self._lay["id_width"], slots).view(np.int64)
        if ids.size and int(ids.max()) >= self.n_classes:
            raise CorruptDatabaseError(self.source, f"a slot names class {int(ids.max())} of {self.n_classes}")
        return ids

    def _class_meta(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.n_classes
        forms = bits.unpack(self._forms_words, c, 2, ids).astype(np.int64)
        starts = bits.unpack(self._offsets_words, c + 1, self._lay["offset_width"], ids).view(np.int64)
        ends = bits.unpack(self._offsets_words, c + 1, self._lay["offset_width"], ids + 1).view(np.int64)
        if ids.size and (
            (ends < starts).any() or int(ends.max()) > self._lay["payload_bytes"] or int(forms.max()) > BITMAP
        ):
            raise CorruptDatabaseError(self.source, "a class's offsets or form are out of range")
        return forms, starts, ends

    def local_members(self, ids: np.ndarray) -> SparseRows:
        """Members of classes ``ids`` as group positions (all genomes of the group, ascending)."""
        ids = np.asarray(ids, dtype=np.int64)
        g, mb = len(self.genome_ids), self._lay["mb"]
        forms, starts, ends = self._class_meta(ids)
        parts_rows, parts_cols = [], []
        mdt = np.dtype(f"<u{mb}")
        listed = np.flatnonzero(forms != BITMAP)
        if listed.size:
            if (starts[listed] % mb).any() or ((ends[listed] - starts[listed]) % mb).any():
                raise CorruptDatabaseError(self.source, "a class's members are not aligned")
            sizes = (ends[listed] - starts[listed]) // mb
            at = segment_positions(starts[listed] // mb, sizes)
            cols = self._payload.view(mdt)[at].astype(np.int64) if at.size else np.zeros(0, np.int64)
            if cols.size and int(cols.max()) >= g:
                raise CorruptDatabaseError(self.source, f"a class names genome {int(cols.max())} of {g}")
            rows = np.repeat(listed, sizes)
            comp = forms[listed] == COMPLEMENT
            plain = np.repeat(~comp, sizes)
            parts_rows.append(rows[plain])
            parts_cols.append(cols[plain])
            if comp.any():
                which = listed[comp]
                mask = np.ones((which.size, g), dtype=bool)
                pos = np.searchsorted(which, rows[~plain])
                mask[pos, cols[~plain]] = False
                r, cc = np.nonzero(mask)
                parts_rows.append(which[r])
                parts_cols.append(cc)
        maps = np.flatnonzero(forms == BITMAP)
        if maps.size:
            nb = (g + 7) // 8
            if ((ends[maps] - starts[maps]) < nb).any():
                raise CorruptDatabaseError(self.source, "a class bitmap is short")
            raw = self._payload[(starts[maps][:, None] + np.arange(nb)[None, :])]
            r, cc = np.nonzero(np.unpackbits(raw, axis=1, count=g))
            parts_rows.append(maps[r])
            parts_cols.append(cc)
        rows = np.concatenate(parts_rows) if parts_rows else np.zeros(0, np.int64)
        cols = np.concatenate(parts_cols) if parts_cols else np.zeros(0, np.int64)
        return SparseRows.from_pairs(rows, cols, ids.size, g)

    def members(self, ids: np.ndarray) -> SparseRows:
        """Members of classes ``ids`` as database columns (genomes still in the database)."""
        return self.local_members(ids).remap(self._column_map, self.n_db)

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
        ids = np.asarray(ids, dtype=np.int64)
        g, mb = len(self.genome_ids), self._lay["mb"]
        forms, starts, ends = self._class_meta(ids)
        complement = forms == COMPLEMENT
        parts_rows, parts_cols = [], []
        listed = np.flatnonzero(forms != BITMAP)
        if listed.size:
            if (starts[listed] % mb).any() or ((ends[listed] - starts[listed]) % mb).any():
                raise CorruptDatabaseError(self.source, "a class's members are not aligned")
            sizes = (ends[listed] - starts[listed]) // mb
            at = segment_positions(starts[listed] // mb, sizes)
            cols = self._payload.view(np.dtype(f"<u{mb}"))[at].astype(np.int64) if at.size else np.zeros(0, np.int64)
            if cols.size and int(cols.max()) >= g:
                raise CorruptDatabaseError(self.source, f"a class names genome {int(cols.max())} of {g}")
            parts_rows.append(np.repeat(listed, sizes))
            parts_cols.append(cols)
        maps = np.flatnonzero(forms == BITMAP)
        if maps.size:
            nb = (g + 7) // 8
            if ((ends[maps] - starts[maps]) < nb).any():
                raise CorruptDatabaseError(self.source, "a class bitmap is short")
            held = np.unpackbits(self._payload[(starts[maps][:, None] + np.arange(nb)[None, :])], axis=1, count=g)
            big = held.sum(axis=1, dtype=np.int64) * 2 > g
            held[big] ^= 1  # most genomes: list the missing ones
            complement[maps[big]] = True
            r, cc = np.nonzero(held)
            parts_rows.append(maps[r])
            parts_cols.append(cc)
        rows = np.concatenate(parts_rows) if parts_rows else np.zeros(0, np.int64)
        cols = np.concatenate(parts_cols) if parts_cols else np.zeros(0, np.int64)
        local = SparseRows.from_pairs(rows, cols, ids.size, g)
        return local.remap(self._column_map, self.n_db), complement

    def class_sizes(self, ids: np.ndarray) -> np.ndarray:
        """Genomes of the group (removed ones included) in each of classes ``ids``, from the
        forms and offsets (and a bit count of bitmaps), without listing members."""
        ids = np.asarray(ids, dtype=np.int64)
        g, mb = len(self.genome_ids), self._lay["mb"]
        forms, starts, ends = self._class_meta(ids)
        listed = (ends - starts) // mb
        sizes = np.where(forms == COMPLEMENT, g - listed, listed)
        maps = np.flatnonzero(forms == BITMAP)
        if maps.size:
            nb = (g + 7) // 8
            if ((ends[maps] - starts[maps]) < nb).any():
                raise CorruptDatabaseError(self.source, "a class bitmap is short")
            raw = self._payload[starts[maps][:, None] + np.arange(nb)[None, :]]
            sizes[maps] = np.unpackbits(raw, axis=1, count=g).sum(axis=1, dtype=np.int64)
        return sizes.astype(np.int64)

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
        as ``np.packbits``): bitmaps are copied, lists set through dense blocks of bounded
        size, never a bitwise ``ufunc.at``."""
        ids = np.asarray(ids, dtype=np.int64)
        g, mb = len(self.genome_ids), self._lay["mb"]
        nb = (g + 7) // 8
        forms, starts, ends = self._class_meta(ids)
        out = np.zeros((ids.size, nb), dtype=np.uint8)
        maps = np.flatnonzero(forms == BITMAP)
        if maps.size:
            if ((ends[maps] - starts[maps]) < nb).any():
                raise CorruptDatabaseError(self.source, "a class bitmap is short")
            out[maps] = self._payload[starts[maps][:, None] + np.arange(nb)[None, :]]
        listed = np.flatnonzero(forms != BITMAP)
        step = max(1, (16 << 20) // max(1, g))
        mdt = np.dtype(f"<u{mb}")
        for lo in range(0, listed.size, step):
            part = listed[lo : lo + step]
            if (starts[part] % mb).any() or ((ends[part] - starts[part]) % mb).any():
                raise CorruptDatabaseError(self.source, "a class's members are not aligned")
            sizes = (ends[part] - starts[part]) // mb
            at = segment_positions(starts[part] // mb, sizes)
            cols = self._payload.view(mdt)[at].astype(np.int64) if at.size else np.zeros(0, np.int64)
            if cols.size and int(cols.max()) >= g:
                raise CorruptDatabaseError(self.source, f"a class names genome {int(cols.max())} of {g}")
            comp = forms[part] == COMPLEMENT
            block = np.zeros((part.size, g), dtype=bool)
            block[comp] = True
            # a member list sets its genomes, a complement list clears them
            block[np.repeat(np.arange(part.size), sizes), cols] = np.repeat(~comp, sizes)
            out[part] = np.packbits(block, axis=1)
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
        return self._local_rows(slots).remap(self._column_map, self.n_db)

    def values(self, slots: np.ndarray, counts: bool) -> np.ndarray:
        local = self._local_rows(slots)
        dense = local.to_dense(np.uint32 if (counts and self.keeps_counts) else bool)
        return dense[:, self.keep]

    def packed_rows(self, slots: np.ndarray) -> np.ndarray:
        ids = self.class_ids(np.asarray(slots, dtype=np.int64))
        return self._packed_table()[ids]

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


def _inverse(slots: np.ndarray, n: int) -> np.ndarray:
    """Row of each slot, given the slot of each row (a permutation of ``0..n-1``)."""
    inv = np.empty(n, dtype=np.int64)
    inv[np.asarray(slots, dtype=np.int64)] = np.arange(n, dtype=np.int64)
    return inv
