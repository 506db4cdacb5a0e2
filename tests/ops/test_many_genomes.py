"""Every writer on many genomes, in every colour encoding, against the brute-force oracle.

A collection of ~50 small related genomes (simulated), some identical, some left without a
k-mer by ``min_count``, is built with ``colours`` "dense", "classes" and "auto", with and
without counts; then one genome is appended, genomes are removed and the index compacted,
two indexes merged and set operations run.  Every k-mer and count is checked against the
oracle, the genome statistics against its spectra, and the column groups written are of
the kind asked for.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import oracle
import pytest
from dbcheck import assert_matches_oracle, universe

import kmerdb
from kmerdb.core.colours import SparseRows
from kmerdb.ops.scatter import gather_counts
from kmerdb.store.layer import Layer

from .test_setops import contents
from .test_setops import expected as setop_expected

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import simulate

K = 15
PARTS = 4
MIN_COUNT = 2
N_SIMULATED = 44
KINDS = {  # (colours, counts) -> kinds its groups may have
    ("dense", False): {"presence"},
    ("dense", True): {"counts"},
    ("classes", False): {"classes", "unitig-classes"},
    ("classes", True): {"class-counts", "unitig-class-counts"},
    ("auto", False): {"presence", "classes", "unitig-classes"},
    ("auto", True): {"counts", "class-counts", "unitig-class-counts"},
}


def _fasta(path: Path, records: list[bytes]) -> str:
    path.write_bytes(b"".join(b">r%d\n%s\n" % (i, seq) for i, seq in enumerate(records)))
    return str(path)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """label -> [path], and the oracle's k-mer counts of each genome with ``MIN_COUNT`` applied.

    Each simulated genome is its sequence plus stretches of it repeated 1, 2 and 3 times (so
    counts of 2 to 7 pass ``MIN_COUNT``); ``dup*`` copy other genomes; ``lonely*`` hold
    sequence seen once only, and ``short`` holds no k-mer at all.
    """
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(11)
    genomes: dict[str, list[str]] = {}
    family = simulate.simulate_family(N_SIMULATED, 1200, 0.03, seed=5)
    for name, seq in family:
        repeats = []
        for times in (1, 2, 3):  # overlapping stretches: counts 2 to 7
            lo = int(rng.integers(0, len(seq) // 2))
            hi = lo + int(rng.integers(100, len(seq) // 3))
            repeats += [seq[lo:hi]] * times
        genomes[name] = [_fasta(root / f"{name}.fa", [seq, *repeats])]
    genomes["dup1"] = genomes[family[0][0]]
    genomes["dup2"] = genomes[family[0][0]]
    genomes["dup3"] = genomes[family[7][0]]
    for i in range(2):
        seq = "".join("ACGT"[b] for b in rng.integers(0, 4, 300)).encode()
        genomes[f"lonely{i}"] = [_fasta(root / f"lonely{i}.fa", [seq])]
    genomes["short"] = [_fasta(root / "short.fa", [b"ACGTACGTAC"])]
    full = oracle.genome_sets(genomes, K)
    sets = {label: {x: c for x, c in counts.items() if c >= MIN_COUNT} for label, counts in full.items()}
    assert not sets["lonely0"] and not sets["lonely1"] and not sets["short"] and full["lonely0"]
    kmers, codes = universe(sets, K, extra=100)
    return genomes, full, sets, kmers, codes


@pytest.fixture(scope="module")
def built(collection, tmp_path_factory):
    """(colours, counts) -> an index of the whole collection (built once)."""
    genomes = collection[0]
    root = tmp_path_factory.mktemp("built")
    made: dict = {}

    def get(colours: str, counts: bool, labels=None):
        key = (colours, counts, tuple(labels or ()))
        if key not in made:
            chosen = {lab: genomes[lab] for lab in labels} if labels else genomes
            path = root / f"{colours}-{int(counts)}-{len(made)}.kmerdb"
            kmerdb.build(
                path, chosen, k=K, partitions=PARTS, counts=counts, colours=colours, min_count=MIN_COUNT, threads=2
            )
            made[key] = path
        return made[key]

    return get


def group_kinds(path) -> set[str]:
    with kmerdb.open(path) as db:
        return {g.kind for layers in db.snapshot.partitions for rec in layers for g in rec.groups}


def check_stats(path, full: dict, labels=None) -> None:
    """Genome records: k-mers and occurrences kept, and the spectrum of all counts."""
    with kmerdb.open(path) as db:
        for rec in db.genome_records:
            if labels is not None and rec.label not in labels:
                continue
            counts = full[labels[rec.label] if isinstance(labels, dict) else rec.label]
            kept = [c for c in counts.values() if c >= rec.min_count]
            assert (rec.n_kmers, rec.total) == (len(kept), sum(kept)), rec.label
            spectrum: dict[int, int] = {}
            for c in counts.values():
                spectrum[c] = spectrum.get(c, 0) + 1
            assert dict(rec.spectrum) == spectrum, rec.label


@pytest.mark.parametrize("counts", [False, True], ids=["presence", "counts"])
@pytest.mark.parametrize("colours", ["dense", "classes", "auto"])
def test_build_many_genomes(built, collection, colours, counts):
    genomes, full, sets, kmers, codes = collection
    path = built(colours, counts)
    assert_matches_oracle(path, sets, list(genomes), kmers, codes)
    check_stats(path, full)
    kinds = group_kinds(path)
    assert kinds and kinds <= KINDS[(colours, counts)]
    with kmerdb.open(path) as db:
        assert db.config.colours == colours
        assert db.history()[0].args["colours"] == colours
    assert kmerdb.verify(path).ok


@pytest.mark.parametrize("few", [False, True], ids=["all", "three"])
@pytest.mark.parametrize("counts", [False, True], ids=["presence", "counts"])
def test_auto_writes_the_smaller_encoding_of_each_group(built, collection, counts, few):
    genomes, _, sets, kmers, codes = collection
    labels = ["genome_0002", "genome_0004", "genome_0006"] if few else None
    sizes = {}
    for colours in ("dense", "classes", "auto"):
        path = built(colours, counts, labels)
        with kmerdb.open(path) as db:
            sizes[colours] = [rec.groups[0].file.nbytes for layers in db.snapshot.partitions for rec in layers]
        assert_matches_oracle(path, sets, labels or list(genomes), kmers, codes)
    assert sizes["auto"] == [min(d, c) for d, c in zip(sizes["dense"], sizes["classes"])]
    # many genomes: classes are smaller; three genomes with counts: dense counts are
    if not few:
        assert sizes["auto"] == sizes["classes"] != sizes["dense"]
    elif counts:
        assert sizes["auto"] == sizes["dense"] != sizes["classes"]


def copy_without(built, genomes, counts: bool, missing: str, where: Path) -> tuple[list[str], Path]:
    """A copy of the classes index of every genome but ``missing``: (its labels, its path)."""
    labels = [lab for lab in genomes if lab != missing]
    path = where / "db.kmerdb"
    shutil.copytree(built("classes", counts, labels), path)
    return labels, path


@pytest.mark.parametrize("counts", [False, True], ids=["presence", "counts"])
def test_append_one_genome_to_a_classes_index(built, collection, tmp_path, counts):
    genomes, full, sets, kmers, codes = collection
    labels, path = copy_without(built, genomes, counts, "genome_0003", tmp_path)
    with kmerdb.open(path) as db:
        before = {p: layers for p, layers in enumerate(db.snapshot.partitions)}
    with kmerdb.open(path, "a") as db, db.transaction():
        db.append_genome("genome_0003", genomes["genome_0003"], min_count=MIN_COUNT)
    assert_matches_oracle(path, sets, [*labels, "genome_0003"], kmers, codes)
    check_stats(path, full)
    with kmerdb.open(path) as db:
        new_id = db.genome_records[-1].id
        for p, layers in enumerate(db.snapshot.partitions):
            old = before[p]
            for rec, was in zip(layers, old):
                # the old groups as they were, and one new group of the new genome
                assert rec.groups[:-1] == was.groups
                assert rec.groups[-1].genome_ids == (new_id,)
            assert len(layers) in (len(old), len(old) + 1)
    assert group_kinds(path) == KINDS[("classes", counts)]
    assert kmerdb.verify(path).ok


def _layer_colours(root, rec, genomes, sets) -> int:
    """Distinct non-empty colours of a layer's k-mers, by the oracle."""
    layer = Layer(str(root), rec, {g.id: i for i, g in enumerate(genomes)})
    colours = set()
    for code in layer.kmers().tolist():
        kmer = oracle.decode(int(code), K)
        colour = frozenset(g.label for g in genomes if kmer in sets[g.label])
        assert colour
        colours.add(colour)
    return len(colours)


@pytest.mark.parametrize("counts", [False, True], ids=["presence", "counts"])
def test_remove_and_compact_recanonicalise_classes(built, collection, tmp_path, counts):
    genomes, _, sets, kmers, codes = collection
    labels, path = copy_without(built, genomes, counts, "genome_0010", tmp_path)
    gone = ["genome_0001", "dup2", "genome_0005", "genome_0006", "genome_0020", "lonely0", "genome_0030"]
    with kmerdb.open(path, "a") as db:
        with db.transaction():
            db.append_genome("genome_0010", genomes["genome_0010"], min_count=MIN_COUNT)
        with db.transaction():
            for label in gone:
                db.remove_genome(label)
        assert any(len(layers) > 1 or len(layers[0].groups) > 1 for layers in db.snapshot.partitions)
        with db.transaction():
            db.compact(threads=2)
    kept = [lab for lab in [*labels, "genome_0010"] if lab not in gone]
    assert_matches_oracle(path, sets, kept, kmers, codes)
    with kmerdb.open(path) as db:
        records = db.genome_records
        for layers in db.snapshot.partitions:
            assert len(layers) == 1 and len(layers[0].groups) == 1
            rec = layers[0]
            # compact writes each partition's layer anew: classes in unitig order
            assert rec.groups[0].kind == ("unitig-class-counts" if counts else "unitig-classes")
            group = Layer(str(path), rec, {g.id: i for i, g in enumerate(records)}).groups[0]
            assert group.n_classes == _layer_colours(path, rec, records, sets)
    assert kmerdb.verify(path).ok


@pytest.mark.parametrize("mode", ["presence", "count"])
def test_merge_two_many_genome_indexes(built, collection, tmp_path, mode):
    genomes, full, sets, kmers, codes = collection
    labels = list(genomes)
    first, second = labels[::2], labels[1::2]
    a = built("classes", True, first)
    b = built("auto", True, second)
    out = tmp_path / "merged.kmerdb"
    kmerdb.merge(out, [a, b], mode=mode, threads=2)
    assert_matches_oracle(out, sets, first + second, kmers, codes)
    check_stats(out, full)
    assert group_kinds(out) <= KINDS[("classes", mode == "count")]
    # and into an index of the first half, in a transaction
    into = tmp_path / "into.kmerdb"
    shutil.copytree(built("classes", mode == "count", first), into)
    with kmerdb.open(into, "a") as db, db.transaction():
        db.merge([b])
    assert_matches_oracle(into, sets, first + second, kmers, codes)
    assert kmerdb.verify(into).ok


@pytest.mark.parametrize(
    "op,q,chosen",
    [
        ("union", None, None),
        ("intersection", None, ["genome_0001", "dup1", "dup2"]),
        ("intersection", None, ["genome_0002", "genome_0003", "genome_0004"]),
        ("difference", None, ["genome_0009", "genome_0008", "genome_0010", "genome_0011"]),
        ("at-least", 5, None),
        ("exactly", 2, None),
        ("at-most", 3, ["genome_0040", "genome_0012", "dup3", "genome_0008", "lonely1"]),
    ],
)
@pytest.mark.parametrize("counts", [False, True], ids=["presence", "counts"])
def test_setops_on_a_classes_index(built, collection, tmp_path, op, q, chosen, counts):
    genomes, _, sets, _, _ = collection
    src = built("classes", counts)
    out = tmp_path / "out.kmerdb"
    kmerdb.setop(src, op, out, genomes=chosen, q=q, threads=2)
    want = setop_expected(op, sets, chosen or list(genomes), q)
    got = contents(out, K)
    assert set(got) == set(want)
    if counts:
        assert got == want
    assert group_kinds(out) <= KINDS[("classes", counts)]


def test_gather_counts_against_brute_force():
    rng = np.random.default_rng(3)
    n_genomes = 37
    kmers = rng.integers(0, 60, 4000).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    genome = rng.integers(0, n_genomes - 3, kmers.size)  # the last three genomes hold nothing
    for min_count in (1, 2, 4):
        for counts in (False, True):
            keys, rows, stats = gather_counts(kmers, genome, n_genomes, min_count, counts=counts)
            assert isinstance(rows, SparseRows) and rows.n == keys.size and rows.n_columns == n_genomes
            truth: dict[int, dict[int, int]] = {}
            for x, g in zip(kmers.tolist(), genome.tolist()):
                truth.setdefault(g, {})[x] = truth.get(g, {}).get(x, 0) + 1
            kept = {g: {x: c for x, c in d.items() if c >= min_count} for g, d in truth.items()}
            assert keys.tolist() == sorted(set().union(*[set(d) for d in kept.values()]))
            got: dict[int, dict[int, int]] = {}
            values = rows.value_counts()
            for i, key in enumerate(keys.tolist()):
                lo, hi = rows.indptr[i], rows.indptr[i + 1]
                assert np.all(np.diff(rows.columns[lo:hi]) > 0)
                for col, value in zip(rows.columns[lo:hi].tolist(), values[lo:hi].tolist()):
                    got.setdefault(col, {})[key] = value
            assert {g: set(d) for g, d in got.items()} == {g: set(d) for g, d in kept.items() if d}
            if counts:
                assert got == {g: d for g, d in kept.items() if d}
            else:
                assert rows.counts is None
            for g in range(n_genomes):
                d = truth.get(g, {})
                n_distinct, total, spectrum = stats[g]
                assert (n_distinct, total) == (len(kept.get(g, {})), sum(kept.get(g, {}).values()))
                assert {c: int(n) for c, n in enumerate(spectrum) if n and c} == {
                    c: sum(1 for v in d.values() if v == c) for c in set(d.values())
                }



def test_writers_read_layers_in_small_blocks(built, collection, tmp_path, monkeypatch):
    """Compact, merge and set operations give the same answers when layers are read a few
    slots at a time (blocks of sparse rows stacked)."""
    import kmerdb.ops.add as add_module
    import kmerdb.ops.setops as setops_module

    genomes, _, sets, kmers, codes = collection
    labels = list(genomes)
    monkeypatch.setattr(add_module, "_MIN_BLOCK_SLOTS", 50)
    monkeypatch.setattr(add_module, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(setops_module, "_BLOCK_BYTES", 1)
    assert add_module.block_slots(len(labels)) == 50
    out = tmp_path / "merged.kmerdb"
    kmerdb.merge(out, [built("classes", True, labels[:20]), built("dense", True, labels[20:])], mode="count", threads=1)
    assert_matches_oracle(out, sets, labels, kmers, codes)
    with kmerdb.open(out, "a") as db:
        with db.transaction():
            db.remove_genome("genome_0002")
        with db.transaction():
            db.compact(threads=1)
    labels.remove("genome_0002")
    assert_matches_oracle(out, sets, labels, kmers, codes)
    chosen = ["genome_0003", "genome_0004", "genome_0005", "genome_0007"]
    for op, q in (("at-least", 2), ("intersection", None), ("difference", None)):
        result = tmp_path / f"{op}.kmerdb"
        kmerdb.setop(out, op, result, genomes=chosen, q=q, threads=1)
        assert contents(result, K) == setop_expected(op, sets, chosen, q)


@pytest.mark.parametrize("counts", [False, True], ids=["presence", "counts"])
def test_reindex_keeps_classes_written_as_differences(built, collection, tmp_path, counts):
    """A reindex to approximate evidence and back rewrites the class groups by slot and in
    unitig order with their tables as they are, differences included: every k-mer and count
    still equals the oracle's."""
    genomes, _, sets, kmers, codes = collection
    labels = list(genomes)
    path = tmp_path / "reindexed.kmerdb"
    shutil.copytree(built("classes", counts, labels), path)
    with kmerdb.open(path) as db:
        groups = [g for part in db._engine().layers for layer in part for g in layer.groups]
        before = sum(int((g.parents() >= 0).sum()) for g in groups)
    assert before > 0
    kmerdb.reindex(path, "approx", fp_bits=16, threads=2)
    with kmerdb.open(path) as db:
        assert group_kinds(path) == {"class-counts" if counts else "classes"}
        assert db.stats()["classes"]["differences"] == before
    kmerdb.reindex(path, "exact", threads=2)
    assert group_kinds(path) == {"unitig-class-counts" if counts else "unitig-classes"}
    assert_matches_oracle(path, sets, labels, kmers, codes)
    assert kmerdb.verify(path).ok


def test_gather_counts_of_many_keys_against_numpy():
    """Tens of thousands of distinct k-mers over many genomes (the pairs' rows found block by
    block through a directory of the keys), against np.unique of the (k-mer, genome) pairs."""
    rng = np.random.default_rng(11)
    n_genomes = 60
    pool = np.unique(np.concatenate([rng.integers(0, 2**62, 40_000, dtype=np.uint64),
                                     rng.integers(0, 2**30, 5_000, dtype=np.uint64)]))
    kmers = pool[rng.integers(0, pool.size, 300_000)]
    genome = rng.integers(0, n_genomes, kmers.size)
    for counts in (False, True):
        keys, rows, _ = gather_counts(kmers, genome, n_genomes, 1, counts=counts)
        pairs, n = np.unique(np.stack([kmers, genome.astype(np.uint64)]), axis=1, return_counts=True)
        np.testing.assert_array_equal(keys, np.unique(kmers))
        np.testing.assert_array_equal(rows.columns, pairs[1].astype(np.int32))
        np.testing.assert_array_equal(np.diff(rows.indptr), np.bincount(np.searchsorted(keys, pairs[0]), minlength=keys.size))
        if counts:
            np.testing.assert_array_equal(rows.value_counts(), n)
