"""Colour-class column groups: forms, widths, removed genomes and damage."""

from __future__ import annotations

import numpy as np
import pytest

from kmerdb.core import bits, kernels
from kmerdb.core.colours import SparseRows
from kmerdb.errors import CorruptDatabaseError
from kmerdb.store import classes
from kmerdb.store.classes import (
    BITMAP,
    COMPLEMENT,
    DIFFERENCE,
    LIST,
    ClassCounts,
    ColourClasses,
    UnitigClassCounts,
    UnitigClasses,
    class_nbytes,
    forest_parents,
    reordered,
)
from kmerdb.store.encodings import Placement, SlotOrdinals, encoding_for

from .groups import encoded_group


def case(g: int, n: int = 500, seed: int = 0):
    """Rows with a core class (all but a few genomes), small classes and middling ones."""
    rng = np.random.default_rng(seed)
    m = np.zeros((n, g), dtype=np.uint32)
    core = np.ones(g, dtype=bool)
    core[rng.choice(g, size=min(2, g - 1), replace=False)] = False
    kinds = rng.integers(0, 3, n)
    for i in range(n):  # building the test case only
        if kinds[i] == 0:
            m[i, core] = 1
        elif kinds[i] == 1:
            m[i, rng.choice(g, size=min(g, 2), replace=False)] = rng.integers(1, 5)
        else:
            m[i] = rng.random(g) < 0.5
    m[:3] *= 70000  # wide counts
    return m


@pytest.mark.parametrize("g", [1, 3, 9, 40, 300])
@pytest.mark.parametrize("cls", [ColourClasses, ClassCounts, UnitigClasses, UnitigClassCounts])
def test_round_trip_over_database_columns(g, cls):
    m = case(g)
    n = m.shape[0]
    slots = np.random.default_rng(2).permutation(n)
    ids = tuple(range(1000, 1000 + g))
    removed = {ids[0]} if g > 1 else set()
    alive = [gid for gid in ids if gid not in removed]
    column_of = {gid: c for c, gid in enumerate(reversed(alive))}
    rows = SparseRows.from_dense(m if cls.keeps_counts else m > 0)
    group = encoded_group(cls, rows, slots, ids, column_of)
    assert group.n == n and group.n_classes == len({tuple(r) for r in (m > 0).tolist()})
    by_slot = np.zeros_like(m)
    by_slot[slots] = m
    want = np.zeros((n, len(column_of)), dtype=np.int64)
    for j, gid in enumerate(ids):
        if gid in column_of:
            want[:, column_of[gid]] = by_slot[:, j]
    if not cls.keeps_counts:
        want = (want > 0).astype(np.int64)
    probe = np.array([0, n - 1, 7, 7, 200])
    got = group.rows(probe).to_dense(np.uint32 if cls.keeps_counts else bool).astype(np.int64)
    assert np.array_equal(got, want[probe])
    # class members expand to the same rows
    ids_ = group.class_ids(probe)
    assert np.array_equal(group.members(ids_).to_dense(), want[probe] > 0)
    held, total = group.tally(0, n)
    assert np.array_equal(held, (by_slot[:, group.keep] > 0).sum(axis=0))
    assert np.array_equal(total, by_slot[:, group.keep].astype(np.int64).sum(axis=0) if cls.keeps_counts else held)


def test_each_class_takes_its_cheapest_form():
    g = 300  # members take 9 bits; a bitmap 300 bits
    m = np.zeros((3, g), dtype=bool)
    m[0, :5] = True  # 5 members: a 45-bit list
    m[1, :-3] = True  # all but 3: a 27-bit complement
    m[2, ::2] = True  # 150 members: a bitmap
    rows = SparseRows.from_dense(m)
    data = ColourClasses.encode(rows, np.arange(3))
    group = ColourClasses(data, tuple(range(g)), {i: i for i in range(g)}, "test")
    # the forms and payload offsets, read from the file as docs/format.md lays them out
    lay, c = group._lay, group.n_classes
    forms = bits.unpack(data[slice(*lay["sections"]["forms"])], c, 2)
    offsets = bits.unpack(data[slice(*lay["sections"]["offsets"])], c + 1, lay["offset_width"]).astype(np.int64)
    by_size = {int(e - s): int(f) for f, s, e in zip(forms, offsets[:-1], offsets[1:])}
    assert by_size == {45: LIST, 27: COMPLEMENT, 300: BITMAP}
    assert np.array_equal(group.rows(np.arange(3)).to_dense(), m)
    _, table = rows.classes()
    assert class_nbytes(table) < m.size // 8 + 64


def test_damaged_group_is_refused_cleanly():
    m = case(40) > 0
    data = ColourClasses.encode(SparseRows.from_dense(m), np.arange(m.shape[0]))
    ids, column_of = tuple(range(40)), {i: i for i in range(40)}
    with pytest.raises(CorruptDatabaseError):
        ColourClasses(data[:-1], ids, column_of, "short")
    with pytest.raises(CorruptDatabaseError):
        ColourClasses(data, ids[:-1], column_of, "wrong genome count")
    with pytest.raises(CorruptDatabaseError):
        ClassCounts(data, ids, column_of, "a presence group read as counts")
    bad = data.copy()
    bad[16] = ~np.uint64(0)  # the first ids word: class ids beyond the table
    group = ColourClasses(bad, ids, column_of, "ids")
    with pytest.raises(CorruptDatabaseError):
        group.rows(np.arange(m.shape[0]))


def test_damaged_runs_are_refused_cleanly():
    """A unitig-ordered group whose runs name classes beyond its table: lookups raise."""
    m = case(40) > 0
    n = m.shape[0]
    ids, column_of = tuple(range(40)), {i: i for i in range(40)}
    group = encoded_group(UnitigClasses, SparseRows.from_dense(m), np.arange(n), ids, column_of)
    start, end = group._lay["sections"]["runs"]
    assert group._lay["runs"] > 1 and group.n_classes < 2 ** group._lay["id_width"]
    bad = group.data.copy()
    bad[start:end] = ~np.uint64(0)  # every run: the largest id its width holds
    broken = UnitigClasses(bad, ids, column_of, "runs", group._ordinals)
    with pytest.raises(CorruptDatabaseError, match="a run names"):
        broken.class_ids(np.arange(n))
    with pytest.raises(CorruptDatabaseError):
        broken.rows(np.arange(n))


def test_damaged_runs_of_a_few_genomes_are_refused_by_the_byte_tally():
    """Three genomes (their bytes tallied in the pass that finds the classes): a run naming a
    class beyond the table raises; the intact group counts what numpy counts."""
    m = np.zeros((300, 3), dtype=bool)
    m[:100, 0] = m[100:200, 1] = m[200:, 2] = True
    n = m.shape[0]
    ids, column_of = ("a", "b", "c"), {"a": 0, "b": 1, "c": 2}
    group = encoded_group(UnitigClasses, SparseRows.from_dense(m), np.arange(n), ids, column_of)
    assert group.n_classes < 2 ** group._lay["id_width"]
    slots = np.random.default_rng(1).integers(0, n, 1000)
    seqs = np.sort(np.random.default_rng(2).integers(0, 7, slots.size))
    tables: dict = {}

    def table_for(cols):
        return tables.setdefault(tuple(cols.tolist()), np.zeros(7 << cols.size, dtype=np.int64))

    group.tally_presence_bytes(slots, seqs, table_for)
    byte = (m[slots] * np.array([4, 2, 1])).sum(axis=1)
    assert np.array_equal(tables[(0, 1, 2)], np.bincount((seqs << 3) | byte, minlength=7 << 3))
    start, end = group._lay["sections"]["runs"]
    bad = group.data.copy()
    bad[start:end] = ~np.uint64(0)
    broken = UnitigClasses(bad, ids, column_of, "runs", group._ordinals)
    with pytest.raises(CorruptDatabaseError, match="a run names"):
        broken.tally_presence_bytes(slots, seqs, table_for)


@pytest.mark.parametrize("bound_bytes", [4, 8])
def test_run_bounds_of_either_width_read_back(monkeypatch, bound_bytes):
    """Sequences of 2**32 bases or more take 8-byte run bounds: both widths read the same rows."""
    from kmerdb.store import classes

    if bound_bytes == 8:
        monkeypatch.setattr(classes, "_BOUND32", 1)
    m = case(50)
    n = m.shape[0]
    slots = np.random.default_rng(4).permutation(n)
    ids = tuple(range(50))
    column_of = {g: g for g in ids}
    group = encoded_group(UnitigClassCounts, SparseRows.from_dense(m), slots, ids, column_of)
    assert group._lay["bound_bytes"] == bound_bytes
    by_slot = np.zeros_like(m)
    by_slot[slots] = m
    probe = np.arange(n)
    assert np.array_equal(group.rows(probe).to_dense(np.uint32), by_slot)


@pytest.mark.parametrize("g", [3, 40])
@pytest.mark.parametrize("cls", [ColourClasses, ClassCounts, UnitigClasses, UnitigClassCounts])
@pytest.mark.parametrize("placed", [False, True])
def test_reordered_keeps_every_row_in_its_new_slot(g, cls, placed):
    """A group rewritten for a new slot order (a reindex): each k-mer's row, counts included,
    read at its new slot equals the one read at its old slot; tables are not rebuilt."""
    m = case(g, seed=3)
    n = m.shape[0]
    rng = np.random.default_rng(4)
    slots = rng.permutation(n)
    ids = tuple(range(g))
    column_of = {gid: gid for gid in ids}
    group = encoded_group(cls, SparseRows.from_dense(m if cls.keeps_counts else m > 0), slots, ids, column_of)
    new = rng.permutation(n)  # the k-mer of old slot slots[i] goes to slot new[i]
    kind, data = reordered(group, slots, new, placed)
    assert encoding_for(kind).placed == placed and encoding_for(kind).keeps_counts == cls.keeps_counts
    ordinals = SlotOrdinals(lambda s: np.asarray(s, dtype=np.int64), n) if placed else None
    again = encoding_for(kind)(data, ids, column_of, "test", ordinals)
    dtype = np.uint32 if cls.keeps_counts else bool
    assert np.array_equal(again.rows(new).to_dense(dtype), group.rows(slots).to_dense(dtype))
    assert again.n_classes == group.n_classes


@pytest.mark.parametrize("section", ["forms", "offsets", "payload"])
def test_damaged_class_table_is_refused_not_read_past(section):
    """Every word of a class table's forms, offsets or member entries overwritten, one at a
    time, with all ones or a random value: decoding its classes (list, complement and bitmap
    forms) either answers within the group or raises CorruptDatabaseError; it never reads past
    the table nor names a genome outside the group."""
    g = 300
    m = np.zeros((3, g), dtype=bool)
    m[0, :5] = True
    m[1, :-3] = True
    m[2, ::2] = True
    data = ColourClasses.encode(SparseRows.from_dense(m), np.arange(3))
    ids, column_of = tuple(range(g)), {i: i for i in range(g)}
    lo, hi = ColourClasses(data, ids, column_of, "intact")._lay["sections"][section]
    rng = np.random.default_rng(1)
    refused = 0
    for at in range(lo, hi):
        for value in (~np.uint64(0), np.uint64(rng.integers(0, 2**63))):
            bad = data.copy()
            bad[at] = value
            group = ColourClasses(bad, ids, column_of, "damaged")
            try:
                rows, _ = group.members_or_complement(np.arange(3))
            except CorruptDatabaseError:
                refused += 1
            else:
                assert rows.columns.size == 0 or (rows.columns.min() >= 0 and rows.columns.max() < g)
            # the query's expansion reads the same table in place: refused alike
            hits, everyone = np.zeros((2, g), dtype=np.int64), np.zeros(2, dtype=np.int64)
            try:
                group.add_class_hits(hits, everyone, np.array([0, 1, 1]), np.arange(3), np.array([1, 2, 3]))
            except CorruptDatabaseError:
                refused += 1
    assert refused > 0


def test_class_hits_equal_members_times_amounts():
    """The query's in-place expansion of (sequence, class) pairs equals adding each class's
    members (from the same table) times its amount, genomes removed from the database left
    out, with a core class's amount counted through ``everyone``."""
    g = 300
    rng = np.random.default_rng(3)
    m = np.zeros((4, g), dtype=bool)
    m[0, :5] = True  # list
    m[1, :-3] = True  # complement
    m[2, ::2] = True  # bitmap, half
    m[3, rng.random(g) < 0.8] = True  # bitmap, most genomes
    data = ColourClasses.encode(SparseRows.from_dense(m), np.arange(4))
    gids = tuple(range(g))
    column_of = {gid: 299 - gid for gid in gids if gid % 7}  # reversed, some removed
    group = ColourClasses(data, gids, column_of, "classes")
    seq = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    slots = np.array([0, 1, 0, 2, 3, 0, 1, 2, 3])  # row i of m is slot i
    cls = group.class_ids(slots)
    amount = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9])
    hits, everyone = np.zeros((3, g), dtype=np.int64), np.zeros(3, dtype=np.int64)
    group.add_class_hits(hits, everyone, seq, cls, amount)
    hits[:, group.cols] += everyone[:, None]
    want = np.zeros_like(hits)
    for s, slot, a in zip(seq, slots, amount):
        for j in np.flatnonzero(m[slot]):
            if j in column_of:
                want[s, column_of[j]] += a
    assert np.array_equal(hits, want)


@pytest.mark.parametrize("g", [13, 64, 300, 1000])
@pytest.mark.parametrize("first", [0, 8, 24])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_class_hits_in_byte_lanes_equal_members_times_amounts(g, first, dtype):
    """Where one-byte cells hold a group's genomes from a word's first column on, bitmaps are
    added eight cells at a time: the same sums as genome by genome (wrapping in each cell on
    the way), no cell outside the group's columns touched."""
    rng = np.random.default_rng(g + first)
    n_classes = 40
    m = rng.random((n_classes, g)) < rng.uniform(0.05, 0.95, (n_classes, 1))  # bitmaps mostly
    m[0] = False
    m[0, : max(1, g // 50)] = True  # a list
    m[1] = True
    m[1, -1] = False  # a complement
    data = ColourClasses.encode(SparseRows.from_dense(m), np.arange(n_classes))
    gids = tuple(range(g))
    group = ColourClasses(data, gids, {gid: first + gid for gid in gids}, "classes")
    n_seqs = 7
    seq = np.sort(rng.integers(0, n_seqs, 90))
    slots = rng.integers(0, n_classes, seq.size)
    amount = rng.integers(1, 3, seq.size)
    want = np.zeros((n_seqs, first + g + 40), dtype=np.int64)
    np.add.at(want, (seq[:, None], first + np.arange(g)[None, :]), m[slots] * amount[:, None])
    width = -(-(first + g) // 8) * 8 + 16  # whole words, a word of slack and more
    hits, everyone = np.zeros((n_seqs, width), dtype=dtype), np.zeros(n_seqs, dtype=np.int64)
    assert classes._byte_lanes(hits, group.columns)[1] == first // 8
    group.add_class_hits(hits, everyone, seq, group.class_ids(slots), amount)
    hits[:, group.cols] += everyone.astype(dtype)[:, None]  # in the cells' type, as the query does
    assert np.array_equal(hits, want[:, :width])
    # rows not of whole words: genome by genome, the same sums
    odd = np.zeros((n_seqs, first + g + 1), dtype=dtype)
    assert classes._byte_lanes(odd, group.columns)[1] == -1
    everyone[:] = 0
    group.add_class_hits(odd, everyone, seq, group.class_ids(slots), amount)
    odd[:, group.cols] += everyone.astype(dtype)[:, None]
    assert np.array_equal(odd, want[:, : first + g + 1])


# -- classes written as differences ---------------------------------------------------------


def related(g: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``c`` distinct classes over ``g`` genomes, each after the first one to three genomes
    away from an earlier one (a variant's classes), some of them of most genomes; and the
    pairs (earlier, later) with some random pairs among them (shape (2, J), smaller id first)."""
    rng = np.random.default_rng(seed)
    sets = np.zeros((c, g), dtype=bool)
    sets[0] = rng.random(g) < 0.3
    sets[1] = rng.random(g) < 0.95
    seen = {sets[0].tobytes(), sets[1].tobytes()}
    pairs = [(0, 1)]
    i = 2
    while i < c:  # building the test case only
        j = int(rng.integers(0, i))
        row = sets[j].copy()
        row[rng.choice(g, size=int(rng.integers(1, 4)), replace=False)] ^= True
        if row.tobytes() in seen or not row.any():
            continue
        seen.add(row.tobytes())
        sets[i] = row
        pairs.append((j, i))
        i += 1
    noise = rng.integers(0, c, (60, 2))
    pairs += [(int(min(a, b)), int(max(a, b))) for a, b in noise if a != b]
    return sets, np.unique(np.array(pairs, dtype=np.int64), axis=0).T


def differential_group(g: int, c: int, seed: int, counts: bool = False, joins: bool = True):
    """A unitig-ordered group of ``related`` classes, its slots' classes and counts."""
    sets, pairs = related(g, c, seed)
    rng = np.random.default_rng(seed + 1)
    n = 3 * c
    row_class = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])
    values = sets[row_class] * rng.integers(1, 9, (n, g)).astype(np.uint32)
    rows = SparseRows.from_dense(values if counts else values > 0)
    ordinals = rng.permutation(n).astype(np.int64)
    table = SparseRows.from_dense(sets)
    placement = Placement(ordinals, (row_class, table), pairs if joins else None)
    cls = UnitigClassCounts if counts else UnitigClasses
    slots = np.arange(n, dtype=np.int64)  # row i is slot i
    by_slot = np.zeros(n, dtype=np.int64)
    by_slot[slots] = ordinals
    ids = tuple(range(g))
    group = cls(cls.encode(rows, slots, placement), ids, {i: i for i in ids}, "test",
                SlotOrdinals(lambda s: by_slot[np.asarray(s, dtype=np.int64)], n))
    return group, sets, row_class, values


def chain_depths(parents: np.ndarray) -> np.ndarray:
    depth = np.zeros(parents.size, dtype=np.int64)
    for x in range(parents.size):  # a test's few hundred classes
        y = x
        while parents[y] >= 0:
            depth[x] += 1
            y = parents[y]
            assert depth[x] <= parents.size  # no cycle
    return depth


@pytest.mark.parametrize("g", [40, 300])
@pytest.mark.parametrize("counts", [False, True])
def test_differences_decode_to_their_classes(g, counts):
    """Classes written as differences from their neighbours decode to the same sets, sizes,
    bits and rows as the sets themselves (every reader: members, shorter forms, packed rows,
    counts), in fewer payload bits than written whole."""
    group, sets, row_class, values = differential_group(g, 400, g, counts)
    plain, *_ = differential_group(g, 400, g, counts, joins=False)
    parents = group.parents()
    assert (parents >= 0).sum() > 200 and (plain.parents() < 0).all()
    assert chain_depths(parents).max() <= classes.DIFF_DEPTH
    assert group._lay["payload_bits"] < plain._lay["payload_bits"]
    # the forms, read from the file as docs/format.md lays them out
    forms = bits.unpack(group.data[slice(*group._lay["sections"]["forms"])], group.n_classes, 2)
    assert np.array_equal(forms == DIFFERENCE, parents >= 0)
    c = sets.shape[0]
    every = np.arange(c, dtype=np.int64)
    assert np.array_equal(group.table().to_dense(), sets)
    assert np.array_equal(group.class_sizes(every), sets.sum(axis=1))
    rows, complement = group.members_or_complement(every)
    assert np.array_equal(complement, 2 * sets.sum(axis=1) > g)
    assert np.array_equal(rows.to_dense(), np.where(complement[:, None], ~sets, sets))
    assert np.array_equal(group.local_packed(every[::-1]), np.packbits(sets[::-1], axis=1))
    slots = np.arange(row_class.size)
    assert np.array_equal(group.class_ids(slots), row_class)
    got = group.rows(slots).to_dense(np.uint32 if counts else bool)
    assert np.array_equal(got, values if counts else values > 0)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_chains_are_cut_at_the_depth_asked(monkeypatch, depth):
    monkeypatch.setattr(classes, "DIFF_DEPTH", depth)
    group, sets, *_ = differential_group(100, 300, 7)
    parents = group.parents()
    assert (parents >= 0).any() and chain_depths(parents).max() <= depth
    assert np.array_equal(group.table().to_dense(), sets)


@pytest.mark.parametrize("order", ["by sequence", "shuffled"])
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int64])
def test_class_hits_through_differences_equal_members_times_amounts(dtype, order):
    """The query's expansion of (sequence, class) pairs through chains of differences equals
    adding each class's members times its amount, removed genomes left out; in a narrow type
    the sums wrap on the way and come out exact when they fit.  Pairs may repeat and come in
    any order."""
    g = 300
    group, sets, *_ = differential_group(g, 400, 3)
    gids = tuple(range(g))
    column_of = {gid: 299 - gid for gid in gids if gid % 7}
    group = UnitigClasses(group.data, gids, column_of, "test", group._ordinals)
    rng = np.random.default_rng(5)
    n_seqs = 30
    seq = np.sort(rng.integers(0, n_seqs, 600))
    cls = rng.integers(0, sets.shape[0], seq.size)
    if order == "shuffled":  # pairs repeat, sequences interleave
        mix = rng.permutation(seq.size)
        seq, cls = seq[mix], cls[mix]
    amount = rng.integers(1, 4, seq.size)
    want = np.zeros((n_seqs, g), dtype=np.int64)
    for s, c, a in zip(seq, cls, amount):
        for j in np.flatnonzero(sets[c]):
            if j in column_of:
                want[s, column_of[j]] += a
    if want.max() > np.iinfo(dtype).max:
        amount = np.ones_like(amount)
        want = np.zeros((n_seqs, g), dtype=np.int64)
        for s, c in zip(seq, cls):
            for j in np.flatnonzero(sets[c]):
                if j in column_of:
                    want[s, column_of[j]] += 1
    hits, everyone = np.zeros((n_seqs, g), dtype=dtype), np.zeros(n_seqs, dtype=np.int64)
    group.add_class_hits(hits, everyone, seq, cls, amount)
    total = hits.astype(np.int64)
    total[:, group.cols] += everyone[:, None]
    assert np.array_equal(total, want)


def _set_bits(data: np.ndarray, start_word: int, bit: int, value: int, width: int) -> None:
    """Write a field into a payload as docs/format.md lays it out (first bit most significant)."""
    for t in range(width):
        at = bit + t
        word, shift = start_word + at // 64, np.uint64(63 - at % 64)
        one = np.uint64((value >> (width - 1 - t)) & 1)
        data[word] = (data[word] & ~(np.uint64(1) << shift)) | (one << shift)


@pytest.mark.parametrize("damage", ["self", "beyond", "added"])
def test_damaged_differences_are_refused(damage):
    """A difference whose parent is itself (a cycle), beyond the table, or that claims more
    genomes added than it lists: every reader refuses it, none reads past the table."""
    group, *_ = differential_group(40, 200, 9)
    lay = group._lay
    x = int(np.flatnonzero(group.parents() >= 0)[0])
    offsets = bits.unpack(group.data[slice(*lay["sections"]["offsets"])], group.n_classes + 1, lay["offset_width"])
    bad = group.data.copy()
    start = lay["sections"]["payload"][0]
    lo, id_width = int(offsets[x]), lay["id_width"]
    if damage == "self":
        _set_bits(bad, start, lo, x, id_width)
    elif damage == "beyond":
        _set_bits(bad, start, lo, 2**id_width - 1, id_width)
        assert group.n_classes < 2**id_width
    else:
        aw = bits.width_for(40)
        _set_bits(bad, start, lo + id_width, 2**aw - 1, aw)
    broken = UnitigClasses(bad, group.genome_ids, {i: i for i in range(40)}, "damaged", group._ordinals)
    one = np.array([x], dtype=np.int64)
    hits, everyone = np.zeros((1, 40), np.int64), np.zeros(1, np.int64)
    for read in (
        lambda: broken.class_sizes(one),
        lambda: broken.members(one),
        lambda: broken.local_packed(one),
        lambda: broken.add_class_hits(hits, everyone, np.zeros(1, np.int64), one, np.ones(1, np.int64)),
    ):
        with pytest.raises(CorruptDatabaseError):
            read()
    if damage == "self":
        assert broken.parents()[x] == x  # a cycle names a real class: readers that follow it refuse
    else:
        with pytest.raises(CorruptDatabaseError):
            broken.parents()


def test_a_chain_longer_than_readers_follow_is_refused(monkeypatch):
    """A class at the end of a chain of as many differences as a reader follows decodes; one
    a link further is refused by every reader that follows chains."""
    longest = kernels.MAX_CHAIN
    monkeypatch.setattr(classes, "DIFF_DEPTH", longest + 1)
    g, c = 200, longest + 2
    sets = np.zeros((c, g), dtype=bool)
    sets[0, :25] = True
    for i in range(1, c):  # a path: each class one genome away from the one before
        sets[i] = sets[i - 1]
        sets[i, 25 + i] = True
    assert len({r.tobytes() for r in sets}) == c
    pairs = np.stack([np.arange(c - 1), np.arange(1, c)]).astype(np.int64)
    placement = Placement(np.arange(c, dtype=np.int64), (np.arange(c), SparseRows.from_dense(sets)), pairs)
    data = UnitigClasses.encode(SparseRows.from_dense(sets), np.arange(c), placement)
    ids = tuple(range(g))
    group = UnitigClasses(data, ids, {i: i for i in ids}, "test", SlotOrdinals(lambda s: np.asarray(s, np.int64), c))
    depth = chain_depths(group.parents())
    assert depth.max() == longest + 1
    fine, far = np.flatnonzero(depth == longest), np.flatnonzero(depth == longest + 1)
    assert np.array_equal(group.members(fine).to_dense(), sets[fine])
    hits, everyone = np.zeros((1, g), np.int64), np.zeros(1, np.int64)
    group.add_class_hits(hits, everyone, np.zeros(1, np.int64), fine, np.ones(1, np.int64))
    hits[0] += everyone[0]
    assert np.array_equal(hits[0], sets[fine[0]].astype(np.int64))
    for read in (
        lambda: group.class_sizes(far),
        lambda: group.members(far),
        lambda: group.add_class_hits(hits, everyone, np.zeros(1, np.int64), far, np.ones(1, np.int64)),
    ):
        with pytest.raises(CorruptDatabaseError):
            read()


@pytest.mark.parametrize("damage", ["adds-held", "removes-lacked"])
def test_differences_that_do_not_fit_their_parent_are_refused(damage):
    """A difference that adds a genome its parent holds, or removes one its parent lacks,
    decodes to no class: decoding readers refuse it and verify's group check names it."""
    from kmerdb.ops.maintenance import check_group

    group, sets, *_ = differential_group(40, 200, 9)
    lay = group._lay
    parents = group.parents()
    added = np.array([(sets[x] & ~sets[p]).sum() if p >= 0 else 0 for x, p in enumerate(parents)])
    removed = np.array([(sets[p] & ~sets[x]).sum() if p >= 0 else 0 for x, p in enumerate(parents)])
    x = int(np.flatnonzero((added if damage == "adds-held" else removed) > 0)[0])
    p = int(parents[x])
    offsets = bits.unpack(group.data[slice(*lay["sections"]["offsets"])], group.n_classes + 1, lay["offset_width"])
    w, aw = lay["w"], bits.width_for(40)
    first = int(offsets[x]) + lay["id_width"] + aw
    if damage == "adds-held":  # the first genome added becomes one the parent holds
        at, genome = first, int(np.flatnonzero(sets[p])[0])
    else:  # the first genome removed becomes one the parent lacks
        at, genome = first + int(added[x]) * w, int(np.flatnonzero(~sets[p])[0])
    bad = group.data.copy()
    _set_bits(bad, lay["sections"]["payload"][0], at, genome, w)
    broken = UnitigClasses(bad, group.genome_ids, {i: i for i in range(40)}, "damaged", group._ordinals)
    with pytest.raises(CorruptDatabaseError):
        broken.members(np.array([x]))
    assert check_group(broken)
    assert not check_group(group)


def _kruskal_weight(c, a, b, weight):
    """Brute force: the weight of a minimum spanning forest (plain Kruskal)."""
    link = list(range(c))

    def root(x):
        while link[x] != x:
            x = link[x]
        return x

    total = 0
    for e in sorted(range(a.size), key=lambda e: weight[e]):
        ra, rb = root(int(a[e])), root(int(b[e]))
        if ra != rb:
            link[ra] = rb
            total += int(weight[e])
    return total


@pytest.mark.parametrize("seed", range(6))
def test_class_forest_is_a_minimum_spanning_forest_rooted_at_the_cheapest(seed):
    """Uncut, the parents are a minimum spanning forest of the pairs, each tree rooted at its
    cheapest class; cut, every chain is at most that deep and its links are the forest's."""
    rng = np.random.default_rng(seed)
    c = 40
    a, b = rng.integers(0, c, 90), rng.integers(0, c, 90)
    keep = a != b
    a, b = a[keep].astype(np.int64), b[keep].astype(np.int64)
    weight = rng.integers(1, 6, a.size)
    cost = rng.permutation(c)
    parent = forest_parents(c, a, b, weight, cost, 10**6)
    weight_of = {}
    for x, y, w_ in zip(a.tolist(), b.tolist(), weight.tolist()):
        key = (min(x, y), max(x, y))
        weight_of[key] = min(weight_of.get(key, w_), w_)
    total = 0
    roots = {}
    for x in range(c):
        y, steps = x, 0
        while parent[y] >= 0:
            total += weight_of[(min(y, int(parent[y])), max(y, int(parent[y])))] if y == x else 0
            y = int(parent[y])
            steps += 1
            assert steps <= c  # no cycle
        roots[x] = y
    assert total == _kruskal_weight(c, a, b, weight)
    for r in set(roots.values()):  # the root is the cheapest class of its tree
        assert cost[r] == min(cost[y] for y, r2 in roots.items() if r2 == r)
    cut = forest_parents(c, a, b, weight, cost, 2)
    for x in range(c):
        y, depth = x, 0
        while cut[y] >= 0:
            assert parent[y] == cut[y] or parent[cut[y]] == y  # a link of the uncut forest
            y = int(cut[y])
            depth += 1
        assert depth <= 2
