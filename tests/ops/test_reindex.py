"""Reindex: evidence rebuilt from the unitigs; round trips; approx indexes merge and append."""

import os
import shutil
from dataclasses import dataclass

import numpy as np
import oracle
import pytest
from conftest import GENOMES

import kmerdb
from kmerdb import reindex
from kmerdb.core.kmers import canonical
from kmerdb.ops.maintenance import data_files
from kmerdb.ops.reindex import target_config
from kmerdb.store.catalog import Catalog

from .executors import EXECUTORS, executor_kwargs

K = 21


def probes(db, n_random: int = 50_000, seed: int = 3) -> np.ndarray:
    """Every k-mer of the index followed by random k-mers (mostly absent)."""
    members = np.concatenate(list(db.iter_kmers()))
    rng = np.random.default_rng(seed)
    return np.concatenate([members, canonical(rng.integers(0, 4**K, n_random, dtype=np.uint64), K)])


def evidence_files(path) -> set[str]:
    """Files that find a layer's keys: dictionaries, MPHFs and evidence."""
    return {
        str(p.relative_to(path))
        for pattern in ("*.evidence.npy", "*.dictionary.npy", "*.mphf.npy")
        for p in path.rglob(pattern)
    }


@pytest.fixture()
def exact_db(tmp_path):
    path = tmp_path / "x.kmerdb"
    kmerdb.build(path, GENOMES, k=K, partitions=4, counts=True, threads=2)
    return path


def test_round_trip_exact_approx_exact_gives_equal_lookups(exact_db):
    with kmerdb.open(exact_db) as db:
        q = probes(db)
        n = db.n_kmers
        before = db.lookup(q, counts=True)
        files0 = evidence_files(exact_db)
    old = kmerdb.open(exact_db)  # a reader of generation 1 keeps its snapshot throughout
    report = reindex(exact_db, "approx", fp_bits=6, z=1, threads=2)
    assert (report.evidence, report.fp_bits, report.z) == ("approx", 6, 1)
    assert report.layers_rewritten == 4 and report.generation == 2
    with kmerdb.open(exact_db) as db:
        assert (db.config.evidence, db.config.fp_bits, db.config.z) == ("approx", 6, 1)
        mid = db.lookup(q, counts=True)
        assert (mid[:n] == before[:n]).all()  # members: never a false negative
        false_rows = mid[n:].any(axis=1) & ~before[n:].any(axis=1)
        assert 0 < false_rows.mean() < 3 * 2**-6  # strangers: ~2^-6 false positives
        assert db.stats()["evidence"]["layer_kinds"] == ["approx"]
    assert (old.lookup(q, counts=True) == before).all() and old.config.evidence == "exact"
    report = reindex(exact_db, "exact", threads=1)
    assert report.layers_rewritten == 4 and report.generation == 3
    with kmerdb.open(exact_db) as db:
        assert (db.config.evidence, db.config.fp_bits, db.config.z) == ("exact", 0, 0)
        assert (db.lookup(q, counts=True) == before).all()
        assert db.n_kmers == n
        # every new evidence file is a new file; the old ones stay for older readers
        assert files0 < evidence_files(exact_db)
        assert [(h.command, h.generation) for h in db.history()][1:] == [("reindex", 2), ("reindex", 3)]
    old.close()


def group_kinds(path) -> set[str]:
    with kmerdb.open(path) as db:
        return {g.kind for layers in db.snapshot.partitions for rec in layers for g in rec.groups}


def test_classes_in_unitig_order_are_rewritten_by_slot_for_approx_evidence(tmp_path):
    """Unitig-ordered classes read a slot's class through its unitig order: going approx writes
    them by MPHF slot (same classes and counts); going back to exact writes them in unitig
    order again, as the build did."""
    path = tmp_path / "c.kmerdb"
    kmerdb.build(path, GENOMES, k=K, partitions=2, counts=True, colours="classes", threads=1)
    assert group_kinds(path) == {"unitig-class-counts"}
    with kmerdb.open(path) as db:
        members = np.concatenate(list(db.iter_kmers()))
        before = db.lookup(members, counts=True)
    reindex(path, "approx", fp_bits=12, threads=1)
    assert group_kinds(path) == {"class-counts"}
    with kmerdb.open(path) as db:
        assert (db.lookup(members, counts=True) == before).all()
    reindex(path, "exact", threads=1)
    assert group_kinds(path) == {"unitig-class-counts"}
    with kmerdb.open(path) as db:
        assert (db.lookup(members, counts=True) == before).all()
    assert kmerdb.verify(path, threads=1).ok


def test_z_alone_writes_no_file_and_nothing_to_do_commits_nothing(exact_db):
    reindex(exact_db, "approx", fp_bits=8)
    files = evidence_files(exact_db)
    report = reindex(exact_db, "approx", z=3)
    assert report.layers_rewritten == 0 and (report.fp_bits, report.z) == (8, 3)
    assert evidence_files(exact_db) == files
    with kmerdb.open(exact_db) as db:
        gen = db.generation
        assert db.config.z == 3 and db.query(["ACGT" * 20]).z == 3
    report = reindex(exact_db, "approx", fp_bits=8, z=3)
    assert report.layers_rewritten == 0 and report.generation == gen


def test_reindex_inside_a_transaction(exact_db):
    with kmerdb.open(exact_db) as db:
        q = probes(db, 1000)
        before = db.lookup(q)
    with kmerdb.open(exact_db, mode="a") as db:
        with db.transaction():
            db.reindex("approx", fp_bits=12)
            assert db.config.evidence == "approx"  # the handle sees what it staged
            db.reindex("exact")
            db.reindex("approx", fp_bits=12)
            db.reindex("exact")
        assert db.config.evidence == "exact" and db.generation == 2
        assert (db.lookup(q) == before).all()
        with pytest.raises(kmerdb.TransactionError):
            db.reindex("approx")  # writes happen inside a transaction
    with pytest.raises(kmerdb.ReadOnlyError), kmerdb.open(exact_db) as db:
        db.reindex("approx")
    with kmerdb.open(exact_db, mode="a") as db:
        with pytest.raises(RuntimeError), db.transaction():
            db.reindex("approx", fp_bits=5)
            raise RuntimeError("rolled back")
        assert db.config.evidence == "exact"
    with kmerdb.open(exact_db) as db:
        assert db.config.evidence == "exact" and (db.lookup(q) == before).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"evidence": "fuzzy"},
        {"evidence": "exact", "fp_bits": 8},
        {"evidence": "exact", "z": 1},
        {"evidence": "approx", "fp_bits": 0},
        {"evidence": "approx", "fp_bits": 33},
        {"evidence": "approx", "z": -1},
        {"evidence": "approx", "fp_bits": "8"},
    ],
)
def test_invalid_parameters_change_nothing(exact_db, kwargs):
    with pytest.raises(kmerdb.InvalidParameterError):
        reindex(exact_db, **kwargs)
    with kmerdb.open(exact_db) as db:
        assert db.generation == 1 and db.config.evidence == "exact"


def test_target_config_defaults():
    cfg = kmerdb.Config.create(k=21)
    a = target_config(cfg, "approx")
    assert (a.evidence, a.fp_bits, a.z) == ("approx", 8, 0)
    b = target_config(a, "approx", z=2)
    assert (b.fp_bits, b.z) == (8, 2)
    assert target_config(b, "exact") == cfg


# -- every executor ---------------------------------------------------------------------


def evidence_arrays(path) -> dict[tuple[int, int], np.ndarray]:
    """(partition, layer id) -> the layer's evidence (or dictionary) array, as the catalog names it."""
    catalog = Catalog.open(str(path))
    try:
        snap = catalog.read()
    finally:
        catalog.close()
    return {
        (p, rec.id): np.load(path / rec.files["dictionary" if "dictionary" in rec.files else "evidence"].path)
        for p, layers in enumerate(snap.partitions)
        for rec in layers
    }


def dump(path) -> tuple[np.ndarray, np.ndarray]:
    """(sorted k-mer codes, their rows) of a whole database."""
    with kmerdb.open(path) as db:
        pieces = list(db.iter_rows())
    keys = np.concatenate([k for k, _ in pieces])
    rows = np.concatenate([r for _, r in pieces])
    order = np.argsort(keys)
    return keys[order], rows[order]


@dataclass(frozen=True)
class Reference:
    """An exact index and what one thread makes of it."""

    exact: object  # the original database, never changed
    exact_evidence: dict
    exact_dump: tuple
    approx_evidence: dict  # after reindex(..., "approx", fp_bits=6, z=1, threads=1)
    approx_lookup: np.ndarray
    probes: np.ndarray
    n_layers: int


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reindex-ref")
    exact = root / "exact.kmerdb"
    kmerdb.build(exact, GENOMES, k=K, partitions=4, counts=True, threads=1)
    serial = root / "serial.kmerdb"
    shutil.copytree(exact, serial)
    reindex(serial, "approx", fp_bits=6, z=1, threads=1)
    with kmerdb.open(serial) as db:
        q = probes(db, 2000)
        approx_lookup = db.lookup(q, counts=True)
    ev = evidence_arrays(exact)
    return Reference(exact, ev, dump(exact), evidence_arrays(serial), approx_lookup, q, len(ev))


def assert_same_arrays(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key]), key


@pytest.mark.parametrize("where", EXECUTORS)
def test_round_trip_on_every_executor_equals_one_thread(reference, oracle_sets, tmp_path, monkeypatch, request, where):
    kw = executor_kwargs(where, monkeypatch, request)
    path = tmp_path / "db.kmerdb"
    shutil.copytree(reference.exact, path)
    report = reindex(path, "approx", fp_bits=6, z=1, **kw)
    assert report.layers_rewritten == reference.n_layers and report.generation == 2
    assert_same_arrays(evidence_arrays(path), reference.approx_evidence)
    with kmerdb.open(path) as db:
        assert np.array_equal(db.lookup(reference.probes, counts=True), reference.approx_lookup)
    report = reindex(path, "exact", **kw)
    assert report.layers_rewritten == reference.n_layers and report.generation == 3
    assert_same_arrays(evidence_arrays(path), reference.exact_evidence)
    keys, rows = dump(path)
    assert np.array_equal(keys, reference.exact_dump[0]) and np.array_equal(rows, reference.exact_dump[1])
    # and the rows are the oracle's counts
    sets = oracle_sets(K)
    with kmerdb.open(path) as db:
        labels = db.genomes
    want = {oracle.encode(x): [sets[g].get(x, 0) for g in labels] for x in set().union(*map(set, sets.values()))}
    assert keys.tolist() == sorted(want)
    assert rows.tolist() == [want[code] for code in keys.tolist()]


@pytest.mark.parametrize("where", EXECUTORS)
def test_a_failing_task_commits_nothing(reference, tmp_path, monkeypatch, request, where):
    kw = executor_kwargs(where, monkeypatch, request)
    path = tmp_path / "db.kmerdb"
    shutil.copytree(reference.exact, path)
    with kmerdb.open(path) as db:
        group = db.snapshot.partitions[2][0].groups[0].file.path
    files = set(data_files(str(path)))
    aside = tmp_path / "aside.npy"
    os.rename(path / group, aside)  # the task of partition 2 cannot open its layer
    with pytest.raises(kmerdb.CorruptDatabaseError, match="missing"):
        reindex(path, "approx", fp_bits=6, **kw)
    os.rename(aside, path / group)
    assert set(data_files(str(path))) == files  # the other tasks' new evidence is gone
    with kmerdb.open(path) as db:
        assert db.generation == 1 and db.config.evidence == "exact"
        assert [h.command for h in db.history()] == ["build"]
    assert reindex(path, "approx", fp_bits=6, threads=1).generation == 2  # the lock was released


# -- merge and append on approx indexes ----------------------------------------------------

needs_merge = pytest.mark.skipif(
    not callable(getattr(kmerdb, "merge", None)) or not hasattr(kmerdb.Database, "append_genomes"),
    reason="kmerdb.merge / Database.append_genomes are not available in this tree",
)


def approx(path, genomes, **kw):
    kmerdb.build(path, genomes, k=K, partitions=4, evidence="approx", fp_bits=10, z=1, threads=2, **kw)
    return path


def assert_same_index(db, reference, oracle_sets):
    """Equal k-mers (read from the unitigs) and configuration; rows of true k-mers right up
    to false positives: a k-mer of a later layer that an earlier layer's fingerprints accept
    gets the union of both rows, so it may show a genome too many but never one too few."""
    assert db.genomes == reference.genomes
    assert (db.config.evidence, db.config.fp_bits, db.config.z) == ("approx", 10, 1)
    mine = np.sort(np.concatenate(list(db.iter_kmers())))
    theirs = np.sort(np.concatenate(list(reference.iter_kmers())))
    assert np.array_equal(mine, theirs)
    sets = oracle_sets(K)
    universe = sorted(set().union(*[set(s) for s in sets.values()]))
    expected = np.array([[x in sets[g] for g in db.genomes] for x in universe])
    for handle in (db, reference):
        got = handle.lookup(universe)
        assert (got | ~expected).all()  # never a false negative
        assert (got & ~expected).sum() <= 3 * 2**-10 * got.size  # false positives ~2^-10 per layer
    # the column of every genome, read through each layer's own k-mers, is exact
    for layers in db.layers:
        for layer in layers:
            assert layer.evidence.kind == "approx" and layer.evidence.fp_bits == 10
            kmers = layer.unitig_kmers()
            found, slots = layer.find_exact(kmers)
            rows = np.zeros((kmers.size, len(db.genomes)), dtype=bool)
            layer.fill_rows(slots, rows, False)
            want = np.array([[oracle.decode(int(x), K) in sets[g] for g in db.genomes] for x in kmers[:300]])
            assert found.all() and (rows[:300] == want).all()


@needs_merge
def test_merge_keeps_working_on_approx_indexes(tmp_path, oracle_sets):
    a = approx(tmp_path / "a.kmerdb", {"A": GENOMES["A"]})
    bc = approx(tmp_path / "bc.kmerdb", {"B": GENOMES["B"], "C": GENOMES["C"]})
    ref = approx(tmp_path / "ref.kmerdb", GENOMES)
    kmerdb.merge(tmp_path / "m.kmerdb", [a, bc], threads=2)
    with kmerdb.open(tmp_path / "m.kmerdb") as db, kmerdb.open(ref) as reference:
        assert_same_index(db, reference, oracle_sets)
        # strangers that look like members (false positives) must not have become hits
        res = db.query([s for _, s in oracle.read_sequences(GENOMES["A"][0])][:1])
        assert (res.found <= res.found_raw).all()
    # evidence must be equal to merge
    exact = tmp_path / "x.kmerdb"
    kmerdb.build(exact, {"D": GENOMES["A"]}, k=K, partitions=4, threads=1)
    with pytest.raises(kmerdb.MixedEvidenceError):
        kmerdb.merge(tmp_path / "bad.kmerdb", [a, exact])
    other = approx(tmp_path / "o.kmerdb", {"E": GENOMES["A"]})
    reindex(other, "approx", fp_bits=11)
    with pytest.raises(kmerdb.MixedEvidenceError):
        kmerdb.merge(tmp_path / "bad2.kmerdb", [a, other])


@needs_merge
def test_append_keeps_working_on_approx_indexes(tmp_path, oracle_sets):
    db_path = approx(tmp_path / "a.kmerdb", {"A": GENOMES["A"]})
    ref = approx(tmp_path / "ref.kmerdb", GENOMES)
    with kmerdb.open(db_path, mode="a") as db, db.transaction():
        db.append_genomes({"B": GENOMES["B"], "C": GENOMES["C"]}, threads=2)
    with kmerdb.open(db_path) as db, kmerdb.open(ref) as reference:
        assert_same_index(db, reference, oracle_sets)
        assert sum(len(layers) for layers in db.snapshot.partitions) >= 4
    assert os.path.isdir(db_path)
