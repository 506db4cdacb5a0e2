"""Unitigs: they spell exactly a layer's k-mers, cannot be glued, and survive the file format."""

import gzip
import io

import numpy as np
import oracle
import pytest

import kmerdb
from kmerdb.core import bits
from kmerdb.core import unitigs as U
from kmerdb.core.kmers import canonical, kmers_from_strings

# -- brute force ---------------------------------------------------------------------------


def spelled(seqs, k):
    """Canonical k-mers of every window of the unitig strings, with repeats."""
    return [oracle.canonical(s[i : i + k]) for s in seqs for i in range(len(s) - k + 1)]


def successors(kmer, kset):
    """Distinct oriented successors of an oriented k-mer: strings y with y[:-1] == kmer[1:]."""
    return {kmer[1:] + b for b in "ACGT" if oracle.canonical(kmer[1:] + b) in kset}


def predecessors(kmer, kset):
    return {b + kmer[:-1] for b in "ACGT" if oracle.canonical(b + kmer[:-1]) in kset}


def glue_errors(seqs, kset, k):
    """Pairs of different unitigs where one can be continued by the other (brute force).

    Unitig U ending in oriented k-mer x can be extended by y when x has exactly one
    successor y (as distinct canonical k-mers), y has exactly one predecessor (x), and y is
    not x itself or its reverse complement.  y must then be the first k-mer of another
    unitig read forward, or the last one read backward; that is a glue the compaction missed.
    """
    starts = {}
    for i, s in enumerate(seqs):
        starts.setdefault(s[:k], []).append(i)
        starts.setdefault(oracle.reverse_complement(s[-k:]), []).append(i)
    errors = []
    for i, s in enumerate(seqs):
        for x in (s[-k:], oracle.reverse_complement(s[:k])):  # both ends, read outwards
            out = successors(x, kset)
            if len({oracle.canonical(y) for y in out}) != 1:
                continue
            y = next(iter(out))
            if oracle.canonical(y) == oracle.canonical(x):
                continue
            if len({oracle.canonical(p) for p in predecessors(y, kset)}) != 1:
                continue
            errors += [(i, j, x, y) for j in starts.get(y, []) if j != i]
    return errors


def unitig_strings(ut: U.UnitigSet) -> list[str]:
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[ut.codes()].tobytes().decode()
    b = ut.base_starts()
    return [letters[b[u] : b[u + 1]] for u in range(ut.n_unitigs)]


def check_compaction(kset: set[str], k: int, glue: bool = True) -> U.UnitigSet:
    keys = np.sort(kmers_from_strings(sorted(kset), k))
    array, ordinals = U.build_unitigs(keys, k)
    ut = U.UnitigSet(array)
    seqs = unitig_strings(ut)
    assert ut.n == len(kset) and ut.n_bases == sum(map(len, seqs))
    spell = spelled(seqs, k)
    assert len(spell) == len(set(spell)), "a k-mer is spelled twice"
    assert set(spell) == kset, "unitigs do not spell the set"
    # consecutive k-mers of a unitig are linked: each has a unique successor and predecessor
    for s in seqs:
        for i in range(len(s) - k):
            x, y = s[i : i + k], s[i + 1 : i + 1 + k]
            assert {oracle.canonical(z) for z in successors(x, kset)} == {oracle.canonical(y)}
            assert {oracle.canonical(z) for z in predecessors(y, kset)} == {oracle.canonical(x)}
    if glue:
        assert glue_errors(seqs, kset, k) == []
    # ordinals: each key's rank in unitig order; base_of says where it starts, ordinal_of back
    assert np.array_equal(np.sort(ordinals), np.arange(keys.size))
    positions = ut.base_of(ordinals)
    assert (canonical(ut.kmer_at(positions), k) == keys).all()
    assert np.array_equal(positions, ut.positions()[ordinals])
    assert np.array_equal(ut.ordinal_of(positions), ordinals)
    assert (np.sort(ut.kmers()) == keys).all()
    return ut


def random_sets(seed: int, n_sets: int):
    rng = np.random.default_rng(seed)
    for _ in range(n_sets):
        k = int(rng.choice([3, 4, 5, 6, 7, 9, 11, 15]))
        alphabet = "ACGT" if rng.random() < 0.7 else "AC"  # two letters: dense, branchy graphs
        seqs = [
            "".join(rng.choice(list(alphabet), int(rng.integers(k, k + 200))))
            for _ in range(int(rng.integers(1, 5)))
        ]
        if rng.random() < 0.3:
            seqs.append("ACG" * 20)  # a tandem repeat: a cycle
        if rng.random() < 0.2:
            seqs.append("A" * 30)  # a k-mer joined to itself
        kset = set()
        for s in seqs:
            kset.update(oracle.kmers(s, k))
        yield k, kset


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 7, 8, 13, 31, 32, 33, 50, 63, 64])
def test_bit_packing_round_trip(width):
    rng = np.random.default_rng(width)
    for n in (0, 1, 63, 64, 65, 1000, 70000):
        hi = 2**width if width < 64 else 2**63
        values = rng.integers(0, hi, n, dtype=np.uint64)
        if width == 64 and n:
            values[0] = np.uint64(2**64 - 1)
        words = bits.pack(values, width)
        assert words.size == bits.n_words(n, width) and words[-1] == 0
        assert (bits.unpack(words, n, width) == values).all()
        idx = rng.integers(0, max(n, 1), 50) if n else np.zeros(0, np.int64)
        assert (bits.unpack(words, n, width, idx) == values[idx]).all()
        if width == 2:
            assert (bits.pack_codes(values.astype(np.uint8)) == words).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unitigs_spell_the_set_and_cannot_be_glued(seed):
    for k, kset in random_sets(seed, 60):
        check_compaction(kset, k)


@pytest.mark.parametrize("seed", [4, 5])
def test_unitigs_ordered_by_group_are_the_same_unitigs(seed):
    """A group number per k-mer reorders the unitigs (by the group of their first k-mer, then
    that k-mer) and changes nothing else."""
    rng = np.random.default_rng(seed)
    for k, kset in random_sets(seed, 30):
        keys = np.sort(kmers_from_strings(sorted(kset), k))
        group = rng.integers(0, 4, keys.size)
        plain = U.UnitigSet(U.build_unitigs(keys, k)[0])
        array, ordinals = U.build_unitigs(keys, k, group)
        ordered = U.UnitigSet(array)
        assert sorted(unitig_strings(ordered)) == sorted(unitig_strings(plain))
        assert (canonical(ordered.kmer_at(ordered.base_of(ordinals)), k) == keys).all()
        # the first k-mer of each unitig, in order: groups ascending, then k-mers ascending
        firsts = canonical(ordered.kmer_at(ordered.base_starts()[:-1]), k)
        first_group = group[np.searchsorted(keys, firsts)]
        assert list(zip(first_group.tolist(), firsts.tolist())) == sorted(zip(first_group.tolist(), firsts.tolist()))


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_long_chains_and_cycles_by_pointer_jumping(monkeypatch, steps):
    """Chains longer than the walk go through pointer jumping; so do all cycles."""
    monkeypatch.setattr(U, "WALK_STEPS", steps)
    for k, kset in random_sets(10 + steps, 40):
        check_compaction(kset, k)


def test_special_shapes():
    # a circular sequence: every k-mer has one successor and one predecessor
    k = 7
    rng = np.random.default_rng(0)
    while True:  # a circle whose (k-1)-mers are all distinct, in both orientations
        circle = "".join(rng.choice(list("ACGT"), 40))
        ring = circle + circle[: k - 1]
        words = [ring[i : i + k - 1] for i in range(len(circle))]
        canon = [oracle.canonical(w) for w in words]
        if len(set(canon)) == len(canon) and all(w != oracle.reverse_complement(w) for w in words):
            break
    kset = set(oracle.kmers(circle + circle[: k - 1], k))
    ut = check_compaction(kset, k)
    assert ut.n_unitigs == 1 and ut.n_bases == len(kset) + k - 1
    # a homopolymer k-mer is joined to itself and stays alone
    ut = check_compaction({"AAAAA"}, 5)
    assert ut.n_unitigs == 1 and ut.n_bases == 5
    # a palindromic k-mer (even k) ends its unitig but is glued to its one neighbour
    check_compaction({oracle.canonical("GTCCGGAC"), oracle.canonical("GGTCCGGA")}, 8)
    # k = 1: nothing links
    ut = check_compaction({"A", "C"}, 1, glue=False)
    assert ut.n_unitigs == 2
    # empty
    array, ordinals = U.build_unitigs(np.zeros(0, np.uint64), 31)
    ut = U.UnitigSet(array)
    assert ut.n == ut.n_unitigs == ut.n_bases == 0 and ut.kmers().size == 0 and ordinals.size == 0


def test_layers_of_an_index_spell_the_oracle_and_cannot_be_glued(built, oracle_sets):
    k = 21
    sets = oracle_sets(k)
    universe = set().union(*[set(s) for s in sets.values()])
    seen = []
    with kmerdb.open(built(k=k, counts=True, partitions=8)) as db:
        for layers in db.layers:
            for layer in layers:
                seqs = unitig_strings(layer.unitigs)
                spell = spelled(seqs, k)
                assert len(spell) == len(set(spell)) == layer.n
                codes = np.sort(kmers_from_strings(spell, k))
                assert (codes == np.sort(layer.kmers())).all()
                assert (codes == np.sort(layer.unitig_kmers())).all()
                assert glue_errors(seqs, set(spell), k) == []
                seen += spell
        assert set(seen) == universe and len(seen) == len(universe)
        blocks = list(db.iter_kmers())
        assert all((np.diff(b.astype(np.int64)) > 0).all() for b in blocks if b.size > 1)
        assert set(oracle.decode(int(x), k) for b in blocks for x in b) == universe


def test_export_fasta_equals_the_index_and_each_genome(built, oracle_sets):
    k = 21
    sets = oracle_sets(k)
    with kmerdb.open(built(k=k, counts=True, partitions=8)) as db:
        buf = io.BytesIO()
        records, bases = db.export_unitigs(buf)
        text = buf.getvalue().decode()
        lines = text.splitlines()
        assert len(lines) == 2 * records and sum(len(s) for s in lines[1::2]) == bases
        assert lines[0].startswith(">0 LN:i:") and "partition=0" in lines[0]
        for head, seq in zip(lines[0::2], lines[1::2]):
            fields = dict(f.split(":i:") for f in head.split()[1:3])
            assert int(fields["LN"]) == len(seq) and int(fields["KN"]) == len(seq) - k + 1
        universe = set().union(*[set(s) for s in sets.values()])
        spell = spelled(lines[1::2], k)
        assert len(spell) == len(universe) and set(spell) == universe
        for label in db.genomes:
            buf = io.BytesIO()
            db.export_unitigs(buf, genome=label)
            seqs = buf.getvalue().decode().splitlines()[1::2]
            spell = spelled(seqs, k)
            assert len(spell) == len(sets[label]) and set(spell) == set(sets[label])
        with pytest.raises(kmerdb.GenomeNotFoundError):
            db.export_unitigs(io.BytesIO(), genome="nope")


def test_export_to_a_gz_path_is_gzip(built, tmp_path):
    with kmerdb.open(built(k=21, partitions=4)) as db:
        plain, packed = io.BytesIO(), tmp_path / "u.fa.gz"
        db.export_unitigs(plain)
        db.export_unitigs(packed)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.getvalue()


def test_damaged_unitig_arrays_are_refused():
    keys = np.sort(kmers_from_strings(sorted(set(oracle.kmers("ACGTTGCATGCCATAGGATCCAGT" * 3, 9))), 9))
    array, _ = U.build_unitigs(keys, 9)
    U.UnitigSet(array)
    for word, value in ((0, 7), (1, 99), (3, int(array[3]) + 1), (9, int(array[9]) - 1)):
        bad = array.copy()
        bad[word] = value
        with pytest.raises(kmerdb.CorruptDatabaseError):
            U.UnitigSet(bad)
    with pytest.raises(kmerdb.CorruptDatabaseError):
        U.UnitigSet(array[:-1])
    with pytest.raises(kmerdb.CorruptDatabaseError):
        U.UnitigSet(array.astype(np.int64))
    # a unitig start flag cleared: the starts disagree with the header's unitig count
    ut = U.UnitigSet(array)
    assert ut.version == 2 and ut.n_unitigs >= 1
    bad = array.copy()
    first = U.HEADER_WORDS
    bad[first] &= ~np.uint64(1 << 63)  # flag 0 (most significant bit): the first unitig's start
    with pytest.raises(kmerdb.CorruptDatabaseError):
        U.UnitigSet(bad).offsets()


def test_version_1_offsets_are_read():
    """Unitig arrays of format 1 and 2 stored bit-packed offsets: they read the same."""
    keys = np.sort(kmers_from_strings(sorted(set(oracle.kmers("ACGTTGCATGCCATAGGATCCAGTTTAGC" * 3, 9))), 9))
    array, ordinals = U.build_unitigs(keys, 9)
    new = U.UnitigSet(array)
    offsets = new.offsets()
    width = bits.width_for(keys.size)
    packed = bits.pack(offsets.astype(np.uint64), width)
    seq = array[int(array[8]) :]
    old = np.concatenate([array[: U.HEADER_WORDS], packed, seq])
    old[1], old[6], old[8], old[9] = 1, width, U.HEADER_WORDS + packed.size, old.size
    v1 = U.UnitigSet(old)
    assert v1.version == 1
    assert (v1.offsets() == offsets).all() and (v1.kmers() == new.kmers()).all()
    assert (canonical(v1.kmer_at(v1.base_of(ordinals)), 9) == keys).all()
    assert np.array_equal(v1.base_of(ordinals), new.base_of(ordinals))


def test_unsorted_keys_make_the_same_layer(tmp_path):
    from kmerdb.config import Config
    from kmerdb.store.layer import Layer, write_layer

    rng = np.random.default_rng(5)
    keys = np.unique(canonical(rng.integers(0, 4**15, 5000, dtype=np.uint64), 15))
    shuffled = rng.permutation(keys)
    cfg = Config.create(k=15, partitions=1)
    rows = rng.random((keys.size, 2)) < 0.5
    order = np.argsort(shuffled)
    rec = write_layer(str(tmp_path), 0, 0, 1, shuffled, [((0, 1), rows[np.argsort(order)])], cfg)
    layer = Layer(str(tmp_path), rec, {0: 0, 1: 1})
    found, slots = layer.find(keys)
    assert found.all()
    out = np.zeros((keys.size, 2), dtype=bool)
    layer.fill_rows(slots, out, False)
    assert (out == rows).all()
    assert (np.sort(layer.unitig_kmers()) == keys).all()


@pytest.mark.parametrize("counts", [False, True])
def test_a_layer_of_colour_classes_stores_runs_along_its_unitigs(tmp_path, counts):
    """Unitigs ordered by class: a class's k-mers are one run unless a unitig changes class
    inside; every slot's row equals the one written."""
    from kmerdb.config import Config
    from kmerdb.store.layer import Layer, write_layer

    rng = np.random.default_rng(8)
    keys = np.unique(canonical(rng.integers(0, 4**15, 6000, dtype=np.uint64), 15))
    cfg = Config.create(k=15, partitions=1, counts=counts, colours="classes")
    g = 40
    patterns = rng.random((12, g)) < 0.4
    rows = patterns[rng.integers(0, 12, keys.size)] * rng.integers(1, 300, (keys.size, g))
    rows = rows if counts else rows > 0
    rec = write_layer(str(tmp_path), 0, 0, 1, keys, [(tuple(range(g)), rows)], cfg)
    assert rec.groups[0].kind == ("unitig-class-counts" if counts else "unitig-classes")
    layer = Layer(str(tmp_path), rec, {i: i for i in range(g)})
    group = layer.groups[0]
    assert group.n_classes == len({tuple(r) for r in (rows > 0).tolist()})
    # random k-mers make short unitigs: a run per class, more only where a unitig changes class
    runs = group._lay["runs"]
    assert group.n_classes <= runs <= group.n_classes + layer.unitigs.n_unitigs
    found, slots = layer.find(keys)
    assert found.all()
    out = np.zeros((keys.size, g), dtype=np.int64 if counts else bool)
    layer.fill_rows(slots, out, counts)
    assert (out == rows).all()


@pytest.mark.skipif(not all(p.exists() for p in __import__("conftest").shared_genomes()), reason="no shared data")
def test_real_partition_unitigs_spell_its_kmers():
    """One partition of E. coli: the compaction at real scale spells exactly the set."""
    from kmerdb.core.kmers import encode, kmer_minimizer_hashes, partition_of, sequence_kmers
    from kmerdb.ops.inputs import read_records

    path = str(__import__("conftest").shared_genomes()[0])
    seq = b"".join(s for _, s in read_records(path))[:400_000]
    _, kmers, hashes = sequence_kmers(encode(seq), 31, 13)
    part = partition_of(hashes, 4)
    keys = np.sort(kmers[part == 0])
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    array, ordinals = U.build_unitigs(keys, 31)
    ut = U.UnitigSet(array)
    assert (np.sort(ut.kmers()) == keys).all()
    assert (canonical(ut.kmer_at(ut.base_of(ordinals)), 31) == keys).all()
    assert ut.n_unitigs < keys.size  # compaction happened
    assert (kmer_minimizer_hashes(ut.kmers(), 31, 13) % 4 == 0).all()


def reference_links(keys: np.ndarray, k: int) -> np.ndarray:
    """The links by a plain argsort of the full (k-1)-mer keys, without packing or truncation."""
    from kmerdb.core.kmers import reverse_complement

    n = keys.size
    nxt = np.full(2 * n, -1, dtype=np.int64)
    low = np.uint64((1 << (2 * (k - 1))) - 1)
    rcx = reverse_complement(keys, k)
    t = np.empty(2 * n, dtype=np.uint64)
    rt = np.empty(2 * n, dtype=np.uint64)
    t[0::2], t[1::2] = keys & low, rcx & low
    rt[0::2], rt[1::2] = rcx >> np.uint64(2), keys >> np.uint64(2)
    key, plus = np.minimum(t, rt), t <= rt
    if k % 2 == 0:
        pal = np.flatnonzero(keys == rcx)
        key[2 * pal + 1] = (np.uint64(1) << np.uint64(62)) | pal.astype(np.uint64)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    same = sk[1:] == sk[:-1]
    pair = same.copy()
    pair[1:] &= ~same[:-1]
    pair[:-1] &= ~same[1:]
    j = np.flatnonzero(pair)
    a, b = order[j], order[j + 1]
    ok = (plus[a] != plus[b]) & ((a >> 1) != (b >> 1))
    nxt[a[ok]] = b[ok] ^ 1
    nxt[b[ok]] = a[ok] ^ 1
    return nxt


@pytest.mark.parametrize("k", [31, 30, 20, 21])
def test_links_at_scale_equal_a_plain_reference(k):
    """Large sets take the packed, truncated sort: its links equal a plain argsort's."""
    from kmerdb.core.kmers import kmer_windows, reverse_complement

    rng = np.random.default_rng(k)
    seq = rng.integers(0, 4, 120_000).astype(np.uint8)
    seq[60_000:62_000] = seq[1_000:3_000]  # a repeat: branching (k-1)-mers
    kmers = canonical(kmer_windows(seq, k), k)
    if k % 2 == 0:  # palindromic k-mers: a half and its reverse complement
        half = rng.integers(0, 4 ** (k // 2), 300, dtype=np.uint64)
        kmers = np.concatenate([kmers, (half << np.uint64(k)) | reverse_complement(half, k // 2)])
    keys = np.sort(kmers)
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    assert np.array_equal(U._links(keys, k).astype(np.int64), reference_links(keys, k))
    array, ordinals = U.build_unitigs(keys, k)
    ut = U.UnitigSet(array)
    assert (np.sort(ut.kmers()) == keys).all() and (canonical(ut.kmer_at(ut.base_of(ordinals)), k) == keys).all()


def branch_oracle(kset: set[str], k: int) -> tuple[set[tuple[str, str]], set[str]]:
    """Pairs of k-mers (as canonical strings, ordered) joined at a (k-1)-mer shown on three
    sides or more, brute force; and those (k-1)-mers of at most five sides (every pair kept)."""
    sides: dict[str, list[tuple[str, bool]]] = {}
    for x in kset:
        rx = oracle.reverse_complement(x)
        for t in (x[1:], rx[1:]):  # the right side's suffix, the left side's (of the reverse)
            c = oracle.canonical(t)
            sides.setdefault(c, []).append((x, t == c))
    pairs, small = set(), set()
    for c, seen in sides.items():
        if len(seen) < 3:
            continue
        if len(seen) <= 5:
            small.add(c)
        for i, (x, sx) in enumerate(seen):
            for y, sy in seen[i + 1 :]:
                if sx != sy and x != y:
                    pairs.add((min(x, y), max(x, y)))
    return pairs, small


@pytest.mark.parametrize("k", [5, 15, 31])
def test_branches_are_joins_at_branching_kmers(k):
    """Every branch pair is two k-mers joined at a (k-1)-mer of three sides or more, and a
    (k-1)-mer of at most five sides gives all of its pairs (variants of a shared sequence)."""
    rng = np.random.default_rng(k)
    base = "".join(rng.choice(list("ACGT"), 400))
    seqs = [base]
    for _ in range(5):
        s = list(base)
        for at in rng.choice(len(base), 4, replace=False):
            s[at] = "ACGT"[(("ACGT".index(s[at])) + int(rng.integers(1, 4))) % 4]
        seqs.append("".join(s))
    kset = {oracle.canonical(s[i : i + k]) for s in seqs for i in range(len(s) - k + 1)}
    keys = np.sort(kmers_from_strings(sorted(kset), k))
    strings = [oracle.decode(int(x), k) for x in keys]
    branches: list[np.ndarray] = []
    U.build_unitigs(keys, k, None, branches)
    got = {tuple(sorted((strings[a], strings[b]))) for a, b in branches[0].T.tolist()}
    want, small = branch_oracle(kset, k)
    assert got and got <= want
    for a, b in want:
        # a pair of a (k-1)-mer of a few sides is never left out
        shared = {oracle.canonical(a[1:]), oracle.canonical(oracle.reverse_complement(a)[1:])} & {
            oracle.canonical(b[1:]),
            oracle.canonical(oracle.reverse_complement(b)[1:]),
        }
        if shared & small:
            assert (a, b) in got
