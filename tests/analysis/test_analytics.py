"""Weights, intersections, distances and spectra against the brute-force oracle and set algebra."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import numpy as np
import oracle
import pytest
from conftest import FIXTURES

import kmerdb
from kmerdb.analysis import analytics, classes, pairs
from kmerdb.config import Config
from kmerdb.core.kmers import kmer_minimizer_hashes, partition_of
from kmerdb.ops.inputs import per_record_genomes
from kmerdb.store.catalog import Catalog, GenomeRecord
from kmerdb.store.layer import write_layer

LABELS = ("A", "B", "C")


# -- references -------------------------------------------------------------------------
def ref_matrix(metric: str, sets: dict[str, dict[str, int]], labels, k: int) -> list[list[float]]:
    """The metric for every ordered pair, straight from the definitions."""
    out = []
    for a in labels:
        row = []
        for b in labels:
            sa, sb = set(sets[a]), set(sets[b])
            inter, union = len(sa & sb), len(sa | sb)
            j = inter / union if union else 1.0
            if metric == "jaccard":
                v = j
            elif metric == "jaccard-distance":
                v = 1.0 - j
            elif metric == "containment":
                v = inter / len(sa) if sa else 1.0
            elif metric == "mash":
                v = -math.log(2 * j / (1 + j)) / k if j > 0 else 1.0
            else:  # bray-curtis
                mins = sum(min(sets[a][x], sets[b][x]) for x in sa & sb)
                den = sum(sets[a].values()) + sum(sets[b].values())
                v = 1.0 - 2.0 * mins / den if den else 0.0
            row.append(v)
        out.append(row)
    return out


def assert_matrix_equals(got: np.ndarray, expected: list[list[float]]) -> None:
    exp = np.array(expected, dtype=np.float64)
    assert got.shape == exp.shape
    # the same quotients of the same integers: equal up to the last bit or two of a float
    assert np.allclose(got, exp, rtol=1e-12, atol=1e-15), (got, exp)


def collection_sets(k: int) -> dict[str, dict[str, int]]:
    return {rid: oracle.count_kmers([seq], k) for rid, seq in oracle.read_sequences(FIXTURES / "collection.fa")}


@pytest.fixture(scope="module")
def collection_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("coll") / "coll.kmerdb"
    kmerdb.build(path, per_record_genomes([str(FIXTURES / "collection.fa")]), k=15, counts=True, partitions=4, threads=2)
    return path


# -- a database made by hand: several layers per partition, several column groups, a removed
#    genome, more than 64 genomes ----------------------------------------------------------------
def make_db(path, genome_sets: dict[str, dict[int, int]], k: int, counts: bool, partitions: int = 4, removed: int = 0, seed: int = 0):
    """Write a database from {label: {k-mer code: count}} with two layers per partition and
    column groups that hold shuffled subsets of genome ids; ``removed`` extra genome ids appear
    in the groups but not in the catalog's genomes (as after a removal)."""
    rng = np.random.default_rng(seed)
    config = Config.create(k=k, partitions=partitions, counts=counts)
    labels = list(genome_sets)
    n_ids = len(labels) + removed
    alive = sorted(rng.choice(n_ids, size=len(labels), replace=False).tolist())
    id_of = dict(zip(labels, alive))
    universe = np.array(sorted(set().union(*[set(s) for s in genome_sets.values()])), dtype=np.uint64)
    dense = np.zeros((universe.size, n_ids), dtype=np.int64)
    index = {int(x): i for i, x in enumerate(universe.tolist())}
    for label, s in genome_sets.items():
        for code, c in s.items():
            dense[index[code], id_of[label]] = c
    dead = [i for i in range(n_ids) if i not in alive]
    dense[:, dead] = rng.integers(0, 3, size=(universe.size, len(dead)))  # noise in removed columns
    parts = partition_of(kmer_minimizer_hashes(universe, k, config.m), partitions)
    import os

    os.mkdir(path)
    cat = Catalog.create(str(path), config)
    layer_id = 0
    records = []
    for p in range(partitions):
        rows = np.flatnonzero(parts == p)
        halves = np.array_split(rng.permutation(rows), 2)
        recs = []
        for half in halves:
            ids = rng.permutation(n_ids)
            cut = int(rng.integers(1, n_ids)) if n_ids > 1 else 1
            groups = []
            for gids in (ids[:cut], ids[cut:]):
                if gids.size == 0:
                    continue
                m = dense[np.ix_(half, gids)]
                groups.append((tuple(int(g) for g in gids), m if counts else m > 0))
            recs.append(write_layer(str(path), p, layer_id, 1, universe[half], groups, config))
            layer_id += 1
        records.append(recs)
    genomes = [
        GenomeRecord(id_of[label], label, (), len(s), sum(s.values()) if counts else len(s), ())
        for label, s in genome_sets.items()
    ]
    with cat.write() as w:
        w.put_genomes(genomes)
        for p, recs in enumerate(records):
            w.put_partition(p, recs)
        w.put_state("ready", 1, n_ids, layer_id)
    cat.close()
    return path


def random_family(n_genomes: int, k: int, seed: int, core: int = 300, each: int = 60) -> dict[str, dict[int, int]]:
    """Random k-mer code sets with a shared core and nested clades (few colour classes) plus noise."""
    rng = random.Random(seed)
    top = 4**k
    pool = [rng.randrange(top) for _ in range(core + each * n_genomes)]
    out = {}
    for g in range(n_genomes):
        chosen = set(pool[:core]) | set(rng.sample(pool[core:], each))
        chosen |= {pool[core + (g // 8) * 7 + i] for i in range(5)}  # clade-specific
        out[f"g{g:03d}"] = {c: rng.randint(1, 4) for c in chosen}
    return out


def decoded(sets: dict[str, dict[int, int]], k: int) -> dict[str, dict[str, int]]:
    return {label: {oracle.decode(c, k): n for c, n in s.items()} for label, s in sets.items()}


# -- distinct rows ------------------------------------------------------------------------
@pytest.mark.parametrize("width", [1, 2, 3])
def test_distinct_rows_matches_python(width):
    rng = np.random.default_rng(width)
    base = rng.integers(0, 2**63, size=(37, width), dtype=np.uint64)
    words = base[rng.integers(0, 37, size=5000)]
    weights = rng.integers(1, 9, size=5000)
    for w in (None, weights):
        rows, counts = analytics.distinct_rows(words, w)
        got = {tuple(r): int(c) for r, c in zip(rows.tolist(), counts.tolist())}
        expect = Counter()
        for i, r in enumerate(words.tolist()):
            expect[tuple(r)] += 1 if w is None else int(w[i])
        assert got == dict(expect)
        rows2, counts2 = analytics.distinct_rows(words, w, exact=True)
        assert {tuple(r): int(c) for r, c in zip(rows2.tolist(), counts2.tolist())} == dict(expect)


def test_distinct_rows_survives_hash_collisions(monkeypatch):
    # every row hashes alike: the check against each group's representative must catch it
    monkeypatch.setattr(classes, "_hash_rows", lambda cols: np.zeros(cols[0].size, dtype=np.uint64))
    words = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]], dtype=np.uint64)
    rows, counts = analytics.distinct_rows(words)
    assert {tuple(r): int(c) for r, c in zip(rows.tolist(), counts.tolist())} == {(1, 2): 2, (3, 4): 2, (5, 6): 1}


def test_distinct_rows_empty():
    rows, counts = analytics.distinct_rows(np.zeros((0, 2), dtype=np.uint64))
    assert rows.shape == (0, 2) and counts.size == 0


# -- fixtures against the oracle ------------------------------------------------------------
@pytest.mark.parametrize("counts", [True, False])
def test_weights_and_intersections_match_oracle(built, oracle_sets, counts):
    sets = oracle_sets(21)
    with kmerdb.open(built(k=21, counts=counts)) as db:
        w = db.col_weights(threads=2)
        assert w.labels == LABELS
        assert w.distinct.tolist() == [len(sets[a]) for a in LABELS]
        totals = [sum(sets[a].values()) for a in LABELS] if counts else [len(sets[a]) for a in LABELS]
        assert w.total.tolist() == totals
        inter = db.intersections(threads=2)
        assert inter.dtype == np.int64
        assert inter.tolist() == [[len(set(sets[a]) & set(sets[b])) for b in LABELS] for a in LABELS]
        assert np.array_equal(db.intersections(threads=1), inter)


@pytest.mark.parametrize("metric", list(analytics.METRICS))
def test_every_metric_matches_oracle(built, oracle_sets, metric):
    k = 21
    sets = oracle_sets(k)
    with kmerdb.open(built(k=k, counts=True)) as db:
        d = db.distance(metric, threads=2)
        assert d.metric == metric and d.labels == LABELS
        assert_matrix_equals(d.matrix, ref_matrix(metric, sets, LABELS, k))


@pytest.mark.parametrize("metric", ["jaccard", "containment", "mash"])
def test_metrics_at_k31_on_presence_index(built, oracle_sets, metric):
    sets = oracle_sets(31)
    with kmerdb.open(built(k=31, counts=False, partitions=64)) as db:
        assert_matrix_equals(db.distance(metric).matrix, ref_matrix(metric, sets, LABELS, 31))
        with pytest.raises(kmerdb.InvalidParameterError):
            db.distance("bray-curtis")


def test_collection_per_record(collection_db):
    sets = collection_sets(15)
    labels = tuple(sets)
    with kmerdb.open(collection_db) as db:
        assert db.genomes == labels
        for metric in analytics.METRICS:
            assert_matrix_equals(db.distance(metric, threads=2).matrix, ref_matrix(metric, sets, labels, 15))
        inter = db.intersections()
        assert inter.tolist() == [[len(set(sets[a]) & set(sets[b])) for b in labels] for a in labels]


def test_spectrum_matches_oracle(built, oracle_sets):
    sets = oracle_sets(21)
    with kmerdb.open(built(k=21, counts=True)) as db:
        spectra = db.spectrum(threads=2)
        assert list(spectra) == list(LABELS)
        for label in LABELS:
            assert spectra[label] == sorted(Counter(sets[label].values()).items())
        assert db.spectrum("C") == {"C": spectra["C"]}
        with pytest.raises(kmerdb.GenomeNotFoundError):
            db.spectrum("nope")
    with kmerdb.open(built(k=21, counts=False)) as db:  # presence index: the recorded spectra
        assert db.spectrum("A") == {"A": sorted(Counter(sets["A"].values()).items())}


def test_spectrum_of_large_counts(tmp_path):
    k = 11
    sets = {"x": {5: 1, 6: 5000, 7: 5000, 8: 70000}, "y": {5: 2}}
    with kmerdb.open(make_db(tmp_path / "big", sets, k, counts=True, partitions=2)) as db:
        assert db.spectrum() == {"x": [(1, 1), (5000, 2), (70000, 1)], "y": [(2, 1)]}


# -- properties ---------------------------------------------------------------------------
def test_symmetry_diagonals_and_triangle_inequality(collection_db, built):
    rng = random.Random(5)
    for path in (collection_db, built(k=21, counts=True)):
        with kmerdb.open(path) as db:
            for metric in ("jaccard", "jaccard-distance", "mash", "bray-curtis"):
                m = db.distance(metric).matrix
                assert np.array_equal(m, m.T)
                assert np.all(np.diag(m) == (1.0 if metric == "jaccard" else 0.0))
            c = db.distance("containment").matrix
            assert np.all(np.diag(c) == 1.0) and np.all((c >= 0) & (c <= 1))
            jd = db.distance("jaccard-distance").matrix
            n = len(db.genomes)
            triples = list(itertools.permutations(range(n), 3))
            for a, b, x in rng.sample(triples, min(len(triples), 30)):
                assert jd[a, x] <= jd[a, b] + jd[b, x] + 1e-12


def test_triangle_inequality_on_random_sets(tmp_path):
    k = 13
    sets = random_family(12, k, seed=11)
    rng = random.Random(3)
    with kmerdb.open(make_db(tmp_path / "tri", sets, k, counts=False)) as db:
        jd = db.distance("jaccard-distance").matrix
        for _ in range(200):
            a, b, x = rng.sample(range(12), 3)
            assert jd[a, x] <= jd[a, b] + jd[b, x] + 1e-12


# -- layers, groups, removed genomes, wide rows ---------------------------------------------------
@pytest.mark.parametrize(
    "n_genomes,counts,removed",
    [(5, False, 0), (5, True, 2), (70, False, 3), (130, True, 0), (64, False, 1)],
)
def test_hand_made_layers_and_groups(tmp_path, n_genomes, counts, removed):
    k = 13
    sets = random_family(n_genomes, k, seed=n_genomes)
    path = make_db(tmp_path / "db", sets, k, counts=counts, removed=removed, seed=n_genomes)
    labels = tuple(sets)
    with kmerdb.open(path) as db:
        assert db.genomes == labels
        inter = db.intersections(threads=2)
        expect = np.array([[len(set(sets[a]) & set(sets[b])) for b in labels] for a in labels])
        assert np.array_equal(inter, expect)
        w = db.col_weights(threads=2)
        assert w.distinct.tolist() == [len(sets[a]) for a in labels]
        if counts:
            assert w.total.tolist() == [sum(sets[a].values()) for a in labels]
            bc = db.distance("bray-curtis")
            strs = decoded({a: sets[a] for a in labels[:6]}, k)
            assert_matrix_equals(bc.matrix[:6, :6], ref_matrix("bray-curtis", strs, labels[:6], k))
            spectra = db.spectrum()
            assert spectra[labels[-1]] == sorted(Counter(sets[labels[-1]].values()).items())
        j = db.distance("jaccard").matrix
        assert np.allclose(j, expect / (np.diag(expect)[:, None] + np.diag(expect)[None, :] - expect))


def test_small_blocks_give_the_same_answer(built, monkeypatch):
    with kmerdb.open(built(k=21, counts=True)) as db:
        inter = db.intersections()
        bc = db.distance("bray-curtis").matrix
        monkeypatch.setattr(classes, "MAX_BLOCK_ROWS", 1024)
        monkeypatch.setattr(classes, "_MERGE_ROWS", 16)
        monkeypatch.setattr(pairs, "_PAIR_CHUNK", 100)
        monkeypatch.setattr(pairs, "_HIST_BYTES", 0)  # fold the histograms at every chunk
        monkeypatch.setattr(pairs, "_DIRECT_CELLS", 0)  # every count level by pair counts
        assert np.array_equal(db.intersections(threads=1, max_memory="64M"), inter)
        assert np.array_equal(db.distance("bray-curtis", threads=1).matrix, bc)
        assert np.array_equal(pairs.min_rows(analytics.colour_classes(db, counts=True, threads=1), 1, 3), bc_mins(db)[1:3])


def bc_mins(db):
    rows = np.concatenate([r for _, r in db.iter_rows(counts=True)]).astype(np.int64)
    return np.minimum(rows[:, :, None], rows[:, None, :]).sum(axis=0)


# -- sparse stream ----------------------------------------------------------------------------
def test_iter_distances_max_distance_and_nearest(tmp_path):
    k = 13
    sets = random_family(20, k, seed=2)
    with kmerdb.open(make_db(tmp_path / "s", sets, k, counts=False)) as db:
        labels = db.genomes
        dense = db.distance("jaccard-distance").matrix
        cut = float(np.median(dense[np.triu_indices(20, 1)]))
        got = {(a, b): v for a, b, v in db.iter_distances("jaccard-distance", max_distance=cut)}
        expect = {
            (labels[i], labels[j]): dense[i, j] for i in range(20) for j in range(i + 1, 20) if dense[i, j] <= cut
        }
        assert got.keys() == expect.keys() and all(np.isclose(got[p], expect[p]) for p in got)
        # similarities are filtered on 1 - value and reported as similarities
        sim = list(analytics.iter_distances(db, "jaccard", max_distance=cut, block=3))
        assert {(a, b) for a, b, _ in sim} == expect.keys()
        assert all(np.isclose(v, 1 - expect[(a, b)]) for a, b, v in sim)
        near = list(analytics.iter_distances(db, "mash", nearest=3, block=7))
        mash = db.distance("mash").matrix
        assert len(near) == 20 * 3
        for i, label in enumerate(labels):
            mine = [(b, v) for a, b, v in near if a == label]
            order = sorted((j for j in range(20) if j != i), key=lambda j: (mash[i, j], j))[:3]
            assert [b for b, _ in mine] == [labels[j] for j in order]
        cont = list(db.iter_distances("containment", max_distance=1.0))
        assert len(cont) == 20 * 19  # ordered pairs, never a genome with itself
        with pytest.raises(kmerdb.InvalidParameterError):
            list(db.iter_distances("jaccard"))
        with pytest.raises(kmerdb.InvalidParameterError):
            list(db.iter_distances("jaccard", nearest=0))


@pytest.mark.parametrize("pairs_budget", [analytics.DENSE_PAIR_BYTES, 0])
def test_iter_distances_bray_curtis_dense_and_from_classes(tmp_path, monkeypatch, pairs_budget):
    # within the budget the (G, G) min-sums are summed directly; beyond it, from the class table
    monkeypatch.setattr(analytics, "DENSE_PAIR_BYTES", pairs_budget)
    k = 13
    sets = random_family(12, k, seed=5)
    counted = {label: {code: 1 + (code % 4) for code in kmers} for label, kmers in sets.items()}
    with kmerdb.open(make_db(tmp_path / "c", counted, k, counts=True)) as db:
        labels = db.genomes
        mins = bc_mins(db)
        totals = np.diag(mins)
        want = {
            (labels[i], labels[j]): 1 - 2 * mins[i, j] / (totals[i] + totals[j])
            for i in range(12)
            for j in range(i + 1, 12)
        }
        got = {(a, b): v for a, b, v in analytics.iter_distances(db, "bray-curtis", max_distance=1.0, block=5)}
        assert got.keys() == want.keys() and all(np.isclose(got[p], want[p]) for p in got)


# -- results ---------------------------------------------------------------------------------
def test_distance_matrix_formats(built):
    with kmerdb.open(built(k=21, counts=True)) as db:
        d = db.distance("jaccard")
    assert d["A", "B"] == d.matrix[0, 1]
    with pytest.raises(kmerdb.GenomeNotFoundError):
        d["A", "Z"]
    tsv = d.to_tsv().splitlines()
    assert tsv[0].split("\t") == ["jaccard", "A", "B", "C"]
    assert [float(x) for x in tsv[2].split("\t")[1:]] == d.matrix[1].tolist()
    phy = d.to_phylip().splitlines()
    # PHYLIP holds distances: 1 - J, and 0 on the diagonal
    assert phy[0] == "3" and phy[1].split()[0] == "A"
    assert [float(x) for x in phy[1].split()[1:]] == [0.0] + (1 - d.matrix[0, 1:]).tolist()
    assert d.to_dict() == {"metric": "jaccard", "labels": ["A", "B", "C"], "matrix": d.matrix.tolist()}
    assert np.array_equal(d.as_distance(), 1 - d.matrix)


def test_bad_metric(built):
    with kmerdb.open(built(k=21, counts=True)) as db:
        with pytest.raises(kmerdb.InvalidParameterError):
            db.distance("euclid")
        with pytest.raises(kmerdb.InvalidParameterError):
            db.distance("containment").tree()


def test_empty_genome_conventions(tmp_path):
    k = 11
    sets = {"x": {1: 1, 2: 1}, "empty": {}, "y": {2: 1, 3: 1}}
    with kmerdb.open(make_db(tmp_path / "e", sets, k, counts=True, partitions=2)) as db:
        assert db.distance("jaccard").matrix.tolist() == [[1, 0, 1 / 3], [0, 1, 0], [1 / 3, 0, 1]]
        assert db.distance("containment").matrix[1].tolist() == [1.0, 1.0, 1.0]
        assert db.distance("mash").matrix[0, 1] == 1.0
        assert db.distance("bray-curtis").matrix[1, 1] == 0.0


@pytest.mark.skipif(not hasattr(kmerdb.Database, "append_genome"), reason="append is not available")
def test_after_append_and_remove(tmp_path, oracle_sets):
    from conftest import GENOMES

    sets = oracle_sets(21)
    path = tmp_path / "layered.kmerdb"
    kmerdb.build(path, {"A": GENOMES["A"], "B": GENOMES["B"]}, k=21, partitions=4, counts=True, threads=2)
    with kmerdb.open(path, "a") as db:
        with db.transaction():
            db.append_genome("C", GENOMES["C"])
        labels = ("A", "B", "C")
        for metric in analytics.METRICS:
            assert_matrix_equals(db.distance(metric, threads=2).matrix, ref_matrix(metric, sets, labels, 21))
        with db.transaction():
            db.remove_genome("A")
    with kmerdb.open(path) as db:
        labels = ("B", "C")
        assert db.genomes == labels
        for metric in analytics.METRICS:
            assert_matrix_equals(db.distance(metric, threads=2).matrix, ref_matrix(metric, sets, labels, 21))
        assert db.spectrum("C") == {"C": sorted(Counter(sets["C"].values()).items())}
        assert db.col_weights().distinct.tolist() == [len(sets["B"]), len(sets["C"])]
        pairs = list(db.iter_distances("jaccard", nearest=1))
        assert [(a, b) for a, b, _ in pairs] == [("B", "C"), ("C", "B")]


# -- executors: one answer whatever runs the partition tasks -------------------------------------
def every_answer(db, **run) -> dict:
    """Every analytics function of ``db`` under one way of running its tasks (``run``: threads
    and/or scheduler), in comparable form."""
    table = analytics.colour_classes(db, counts=db.config.counts, **run)
    w = analytics.col_weights(db, **run)
    out = {
        "weights": (w.labels, w.distinct.tolist(), w.total.tolist()),
        "intersections": analytics.intersections(db, **run).tolist(),
        "classes": sorted(zip(map(bytes, table.raw), table.weights.tolist())),
        "spectrum": analytics.spectrum(db, **run),
        "sparse": sorted(analytics.iter_distances(db, "jaccard-distance", max_distance=0.9, **run)),
        "nearest": list(analytics.iter_distances(db, "mash", nearest=2, **run)),
    }
    for metric in analytics.METRICS:
        if not METRICS_NEED_COUNTS[metric] or db.config.counts:
            out[metric] = analytics.distance(db, metric, **run).matrix.tolist()
    return out


METRICS_NEED_COUNTS = {name: spec[2] for name, spec in analytics.METRICS.items()}


@pytest.fixture(scope="module")
def layered_db(tmp_path_factory):
    """Several layers and column groups per partition, a removed genome, 70 genomes (9 bytes a row)."""
    k = 13
    sets = random_family(70, k, seed=70)
    return make_db(tmp_path_factory.mktemp("exec") / "db", sets, k, counts=True, removed=1, seed=70), sets


@pytest.fixture(scope="module")
def serial_answers(layered_db):
    path, sets = layered_db
    with kmerdb.open(path) as db:
        answers = every_answer(db, threads=1)
    labels = tuple(sets)
    # the serial answers themselves against the definitions
    assert answers["intersections"] == [[len(set(sets[a]) & set(sets[b])) for b in labels] for a in labels]
    assert answers["weights"][2] == [sum(sets[a].values()) for a in labels]
    assert answers["spectrum"][labels[5]] == sorted(Counter(sets[labels[5]].values()).items())
    return answers


@pytest.mark.parametrize("how", ["fork", "spawn", "dask"])
def test_every_analytics_function_is_the_same_on_every_executor(layered_db, serial_answers, how, monkeypatch, request):
    path, _ = layered_db
    if how == "dask":
        run = {"scheduler": request.getfixturevalue("dask_client")}
    else:
        monkeypatch.setenv("KMERDB_START_METHOD", how)
        run = {"threads": 2}
    with kmerdb.open(path) as db:
        assert every_answer(db, **run) == serial_answers


@pytest.mark.parametrize("workers", [1, 2])
def test_two_threads_on_one_handle(built, oracle_sets, workers):
    """Calls share nothing: two threads computing distances on one handle at once both get the
    oracle's answers, every time (each call in its thread, or each with worker processes)."""
    import threading

    sets = oracle_sets(21)
    expect = {m: ref_matrix(m, sets, LABELS, 21) for m in ("jaccard", "bray-curtis")}
    errors: list[BaseException] = []
    done = []
    with kmerdb.open(built(k=21, counts=True)) as db:

        def work(metrics):
            try:
                for _ in range(4):
                    for metric in metrics:
                        assert_matrix_equals(db.distance(metric, threads=workers).matrix, expect[metric])
                        done.append(metric)
            except BaseException as exc:  # reported to the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(m,)) for m in (("jaccard", "bray-curtis"), ("bray-curtis", "jaccard"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(done) == 16
