"""Merge: validation before any write, equivalence with a build of all genomes, hard links,
label de-duplication, --force."""

from __future__ import annotations

import os

import dbcheck
import lmdb
import msgpack
import numpy as np
import pytest
from conftest import GENOMES
from dbcheck import assert_matches_oracle, assert_same_answers, universe

import kmerdb
from kmerdb.store.encodings import encoding_for

K = 21
PARTS = 4


@pytest.fixture(scope="module")
def singles(tmp_path_factory):
    """Single-genome indexes of A, B, C and the index of all three, with and without counts."""
    root = tmp_path_factory.mktemp("merge")
    made = {}
    for counts in (True, False):
        tag = "c" if counts else "p"
        for label, paths in GENOMES.items():
            path = root / f"{tag}{label}.kmerdb"
            kmerdb.build(path, {label: paths}, k=K, partitions=PARTS, counts=counts, threads=2)
            made[tag + label] = path
        path = root / f"{tag}ABC.kmerdb"
        kmerdb.build(path, GENOMES, k=K, partitions=PARTS, counts=counts, threads=2)
        made[tag + "ABC"] = path
    made["root"] = root
    return made


@pytest.fixture(scope="module")
def oracle_k(oracle_sets):
    sets = oracle_sets(K)
    kmers, codes = universe(sets, K)
    return sets, kmers, codes


@pytest.mark.parametrize("mode", ["presence", "count"])
def test_merge_of_singles_answers_like_a_build_of_all(singles, oracle_k, tmp_path, mode):
    sets, kmers, codes = oracle_k
    tag = "c" if mode == "count" else "p"
    out = tmp_path / "merged.kmerdb"
    report = kmerdb.merge(out, [singles[tag + g] for g in "ABC"], mode=mode, threads=2)
    assert report.labels == ("A", "B", "C") and report.n_genomes == 3
    assert_matches_oracle(out, sets, ["A", "B", "C"], kmers, codes)
    assert_same_answers(out, singles[tag + "ABC"])  # k-mers, rows, and genome statistics
    with kmerdb.open(out) as db:
        assert db.config.counts == (mode == "count")
        assert db.n_kmers == kmerdb.open(singles[tag + "ABC"]).n_kmers
        # one new layer per partition for the other sources' misses
        assert all(len(layers) <= 2 for layers in db.snapshot.partitions)
        assert [h.command for h in db.history()] == ["merge"]
    assert kmerdb.verify(out, threads=2).ok


def test_presence_merge_of_count_indexes_keeps_no_counts(singles, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    out = tmp_path / "presence.kmerdb"
    kmerdb.merge(out, [singles["cA"], singles["cB"], singles["cC"]], mode="presence", threads=2)
    assert_matches_oracle(out, sets, ["A", "B", "C"], kmers, codes)
    with kmerdb.open(out) as db:
        assert not db.config.counts
        kinds = {g.kind for layers in db.snapshot.partitions for rec in layers for g in rec.groups}
        assert kinds and not any(encoding_for(kind).keeps_counts for kind in kinds)
        with pytest.raises(kmerdb.InvalidParameterError):
            db.lookup(codes[:3], counts=True)
        # presence keeps each source's own statistics (as a build of all three computes them)
        built = {g.label: g for g in kmerdb.open(singles["pABC"]).genome_records}
        for g in db.genome_records:
            assert (g.n_kmers, g.total, g.spectrum) == (built[g.label].n_kmers, built[g.label].total, built[g.label].spectrum)
    assert kmerdb.verify(out).ok


def test_output_starts_as_hard_links_to_the_first_source(singles, tmp_path):
    out = tmp_path / "linked.kmerdb"
    report = kmerdb.merge(out, [singles["cA"], singles["cB"]], mode="count", threads=1)
    assert report.linked > 0 and report.copied == 0
    with kmerdb.open(singles["cA"]) as src:
        refs = [ref for layers in src.snapshot.partitions for rec in layers for ref in rec.all_files()]
    for ref in refs:
        a, b = os.stat(singles["cA"] / ref.path), os.stat(out / ref.path)
        assert (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
    # the sources are untouched
    assert kmerdb.verify(singles["cA"]).ok and kmerdb.open(singles["cA"]).generation == 1


def test_merge_of_multi_genome_sources_and_single_source(singles, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    ab = tmp_path / "ab.kmerdb"
    kmerdb.merge(ab, [singles["cA"], singles["cB"]], mode="count", threads=2)
    abc = tmp_path / "abc.kmerdb"
    kmerdb.merge(abc, [ab, singles["cC"]], mode="count", threads=2)
    assert_same_answers(abc, singles["cABC"])
    copy = tmp_path / "copy.kmerdb"
    kmerdb.merge(copy, [singles["cABC"]], mode="count")
    assert_same_answers(copy, singles["cABC"])
    # reversed order: columns follow the sources
    cba = tmp_path / "cba.kmerdb"
    kmerdb.merge(cba, [singles["pC"], singles["pB"], singles["pA"]], threads=2)
    assert_matches_oracle(cba, sets, ["C", "B", "A"], kmers, codes)


def test_merge_skips_columns_and_kmers_of_removed_genomes(singles, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    ab = tmp_path / "ab.kmerdb"
    kmerdb.merge(ab, [singles["cA"], singles["cB"]], mode="count")
    with kmerdb.open(ab, "a") as db, db.transaction():
        db.remove_genome("B")
    out = tmp_path / "ac.kmerdb"
    kmerdb.merge(out, [singles["cC"], ab], mode="count", threads=2)
    assert_matches_oracle(out, sets, ["C", "A"], kmers, codes)
    # no k-mer of B alone came in with the second source: the new layers hold only A's misses
    with kmerdb.open(out) as db:
        only_b = set(sets["B"]) - set(sets["A"]) - set(sets["C"])
        assert db.n_kmers == len(set(sets["A"]) | set(sets["C"]))
        assert only_b


def test_label_deduplication(singles, tmp_path):
    with pytest.raises(kmerdb.DuplicateLabelError, match="rename-duplicates"):
        kmerdb.merge(tmp_path / "x.kmerdb", [singles["cABC"], singles["cA"]])
    assert not os.path.exists(tmp_path / "x.kmerdb")
    report = kmerdb.merge(
        tmp_path / "d.kmerdb",
        [singles["cABC"], singles["cA"], singles["cB"], singles["cA"]],
        mode="count",
        rename_duplicates=True,
    )
    assert report.labels == ("A", "B", "C", "A.1", "B.1", "A.2")
    with kmerdb.open(tmp_path / "d.kmerdb") as db:
        rows = db.lookup(np.concatenate([b for b in db.iter_kmers()]), counts=True)
        assert np.array_equal(rows[:, 0], rows[:, 3]) and np.array_equal(rows[:, 0], rows[:, 5])
        assert np.array_equal(rows[:, 1], rows[:, 4])


def _set_catalog(path, key: bytes, update) -> None:
    env = lmdb.open(str(path / "catalog"), subdir=True)
    with env.begin(write=True) as txn:
        rec = msgpack.unpackb(txn.get(key), raw=False, strict_map_key=False)
        update(rec)
        txn.put(key, msgpack.packb(rec, use_bin_type=True))
        dbcheck.reseal(txn)  # checksums consistent: what merge finds behind them
    env.close()


def test_validation_fails_before_any_write(singles, tmp_path):
    out = tmp_path / "out.kmerdb"
    other_k = tmp_path / "k19.kmerdb"
    kmerdb.build(other_k, {"A": GENOMES["A"]}, k=19, partitions=PARTS)
    other_p = tmp_path / "p8.kmerdb"
    kmerdb.build(other_p, {"A": GENOMES["A"]}, k=K, partitions=8)
    other_m = tmp_path / "m7.kmerdb"
    kmerdb.build(other_m, {"A": GENOMES["A"]}, k=K, m=7, partitions=PARTS)
    approx = tmp_path / "approx.kmerdb"
    kmerdb.merge(approx, [singles["pB"]])
    _set_catalog(approx, b"config", lambda rec: rec.update(evidence="approx", fp_bits=8, z=0))
    building = tmp_path / "building.kmerdb"
    kmerdb.merge(building, [singles["pC"]])
    _set_catalog(building, b"state", lambda rec: rec.update(state="building"))

    cases = [
        ([singles["pA"], building], {}, kmerdb.NotReadyError, "not ready"),
        ([singles["pA"], other_k], {}, kmerdb.IncompatibleIndexError, "k=19"),
        ([singles["pA"], other_m], {}, kmerdb.IncompatibleIndexError, "m=7"),
        ([singles["pA"], other_p], {}, kmerdb.IncompatibleIndexError, "partitions=8"),
        ([singles["pA"], approx], {}, kmerdb.MixedEvidenceError, "reindex"),
        ([singles["cA"], singles["pB"]], {"mode": "count"}, kmerdb.MissingCountsError, "presence only"),
        ([singles["pA"], singles["pA"]], {}, kmerdb.DuplicateLabelError, "'A'"),
        ([singles["pA"], tmp_path / "nowhere"], {}, kmerdb.DatabaseNotFoundError, "no such"),
        ([singles["pA"]], {"mode": "both"}, kmerdb.InvalidParameterError, "mode"),
        ([], {}, kmerdb.InvalidParameterError, "at least one"),
    ]
    for sources, kwargs, error, text in cases:
        with pytest.raises(error, match=text):
            kmerdb.merge(out, sources, **kwargs)
        assert not os.path.exists(out)
        assert not [n for n in os.listdir(tmp_path) if ".merge-" in n]
    # every case is its own type
    assert len({c[2] for c in cases}) == len(cases) - 3


def test_force_replaces_an_existing_output_only_after_success(singles, oracle_k, tmp_path):
    sets, kmers, codes = oracle_k
    out = tmp_path / "out.kmerdb"
    kmerdb.merge(out, [singles["pA"]])
    with pytest.raises(kmerdb.DatabaseExistsError):
        kmerdb.merge(out, [singles["pB"]])
    reader = kmerdb.open(out)
    with pytest.raises(kmerdb.DuplicateLabelError):
        kmerdb.merge(out, [singles["pB"], singles["pB"]], force=True)
    assert_matches_oracle(out, sets, ["A"], kmers, codes)
    kmerdb.merge(out, [singles["pB"], singles["pC"]], force=True, threads=2)
    assert_matches_oracle(out, sets, ["B", "C"], kmers, codes)
    # a reader of the replaced database keeps its mapped files
    assert reader.genomes == ("A",) and reader.lookup(codes[:50]).shape == (50, 1)
    reader.close()
    assert not [n for n in os.listdir(tmp_path) if ".merge-" in n]
    not_db = tmp_path / "plain"
    not_db.mkdir()
    with pytest.raises(kmerdb.DatabaseExistsError, match="not a kmerdb database"):
        kmerdb.merge(not_db, [singles["pA"]], force=True)


def test_sources_are_registered_readers_while_they_are_read(singles):
    from kmerdb.ops.add import read_sources, release_sources
    from kmerdb.store.lock import live_readers

    srcs = read_sources([singles["pA"], singles["pB"]])
    try:
        for src in srcs:
            generations, any_generation, n_live = live_readers(str(src.path))
            assert generations == {src.snapshot.generation} and not any_generation and n_live == 1
    finally:
        release_sources(srcs)
    assert live_readers(str(singles["pA"]))[2] == 0
