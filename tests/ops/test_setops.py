"""Set operations written as new databases, against Python set algebra on the oracle."""

from __future__ import annotations

import os
import shutil

import numpy as np
import oracle
import pytest
from conftest import FIXTURES

import kmerdb

from .executors import EXECUTORS, executor_kwargs

K = 21
LABELS = ("A", "B", "C")


def contents(path, k: int = K) -> dict[str, int]:
    """{k-mer: count} of the one genome of a database, by iterating it."""
    out = {}
    with kmerdb.open(path) as db:
        assert len(db.genomes) == 1
        for keys, rows in db.iter_rows():
            for code, value in zip(keys.tolist(), rows[:, 0].tolist()):
                out[oracle.decode(int(code), k)] = int(value)
    return out


def expected(op: str, sets: dict[str, dict[str, int]], genomes, q=None) -> dict[str, int]:
    """The operation by Python set algebra, with the documented count rules."""
    chosen = [sets[g] for g in genomes]
    universe = set().union(*[set(s) for s in chosen])
    held = {x: sum(x in s for s in chosen) for x in universe}
    if op == "union":
        keep = universe
    elif op == "intersection":
        keep = set.intersection(*[set(s) for s in chosen])
    elif op == "difference":
        keep = set(chosen[0]) - set().union(*[set(s) for s in chosen[1:]])
    elif op == "at-least":
        keep = {x for x in universe if held[x] >= q}
    elif op == "exactly":
        keep = {x for x in universe if held[x] == q}
    else:
        keep = {x for x in universe if 1 <= held[x] <= q}
    out = {}
    for x in keep:
        values = [s.get(x, 0) for s in chosen]
        if op == "intersection":
            out[x] = min(values)
        elif op == "difference":
            out[x] = values[0]
        else:
            out[x] = sum(values)
    return out


CASES = [
    ("union", None, None),
    ("intersection", None, None),
    ("difference", None, None),
    ("difference", ["C", "A"], None),
    ("at-least", None, 2),
    ("exactly", None, 1),
    ("exactly", ["B", "C"], 2),
    ("at-most", None, 2),
    ("union", ["B"], None),
    ("intersection", ["A", "C"], None),
]


@pytest.mark.parametrize("op,genomes,q", CASES)
def test_setop_equals_set_algebra_with_counts(built, oracle_sets, tmp_path, op, genomes, q):
    sets = oracle_sets(K)
    out = tmp_path / "out.kmerdb"
    with kmerdb.open(built(k=K, counts=True)) as db:
        report = db.setop(op, out, genomes=genomes, q=q, threads=2)
    chosen = tuple(genomes or LABELS)
    want = expected(op, sets, chosen, q)
    assert report.genomes == chosen and report.n_kmers == len(want) and report.op == op
    assert contents(out) == want
    with kmerdb.open(out) as res:
        assert res.genomes == (report.label,)
        assert report.label == (f"{op}-{q}" if q else op)
        rec = res.genome(report.label)
        assert rec.n_kmers == len(want) and rec.total == sum(want.values())
        assert rec.spectrum == tuple(sorted({v: list(want.values()).count(v) for v in set(want.values())}.items()))
        assert res.config.k == K and res.config.counts and res.config.evidence == "exact"
        assert res.col_weights().distinct.tolist() == [len(want)]


@pytest.mark.parametrize("op,q", [("union", None), ("difference", None), ("at-most", 1)])
def test_setop_on_presence_index(built, oracle_sets, tmp_path, op, q):
    sets = oracle_sets(31)
    out = tmp_path / "p.kmerdb"
    report = kmerdb.setop(built(k=31, counts=False, partitions=64), op, out, q=q, threads=1, label="result")
    want = expected(op, sets, LABELS, q)
    assert report.label == "result"
    assert contents(out, 31) == {x: 1 for x in want}
    with kmerdb.open(out) as res:
        assert not res.config.counts and res.config.n_partitions == 64
        assert res.genome("result").spectrum == ()


def test_output_is_queryable(built, oracle_sets, tmp_path):
    sets = oracle_sets(K)
    out = tmp_path / "q.kmerdb"
    kmerdb.setop(built(k=K, counts=True), "intersection", out, genomes=["A", "B"])
    want = {"common": expected("intersection", sets, ("A", "B"))}
    reads = oracle.read_sequences(FIXTURES / "reads.fa")
    with kmerdb.open(out) as res:
        got = res.query([s for _, s in reads])
        for i, (_, seq) in enumerate(reads):
            hits, n = oracle.query_hits(seq, want, K)
            assert got.n_kmers[i] == n and got.hits[i, 0] == hits["common"]
        some = sorted(want["common"])[:50]
        assert res.lookup(some, counts=True)[:, 0].tolist() == [want["common"][x] for x in some]


@pytest.mark.skipif(not hasattr(kmerdb, "merge"), reason="merge is not available")
def test_output_merges_with_its_source(built, oracle_sets, tmp_path):
    sets = oracle_sets(K)
    src = built(k=K, counts=True)
    core = tmp_path / "core.kmerdb"
    kmerdb.setop(src, "intersection", core, label="core")
    merged = tmp_path / "merged.kmerdb"
    kmerdb.merge(merged, [src, core], mode="presence")
    labels = LABELS + ("core",)
    with kmerdb.open(merged) as db:
        assert db.genomes == labels
        both = dict(sets)
        both["core"] = expected("intersection", sets, LABELS)
        inter = db.intersections(threads=2)
        assert inter.tolist() == [[len(set(both[a]) & set(both[b])) for b in labels] for a in labels]


def test_errors(built, tmp_path):
    src = built(k=K, counts=True)
    with kmerdb.open(src) as db:
        with pytest.raises(kmerdb.InvalidParameterError):
            db.setop("xor", tmp_path / "x")
        with pytest.raises(kmerdb.InvalidParameterError):
            db.setop("at-least", tmp_path / "x")  # no q
        with pytest.raises(kmerdb.InvalidParameterError):
            db.setop("at-least", tmp_path / "x", q=4)  # more than the genomes
        with pytest.raises(kmerdb.InvalidParameterError):
            db.setop("union", tmp_path / "x", q=2)
        with pytest.raises(kmerdb.InvalidParameterError):
            db.setop("union", tmp_path / "x", genomes=[])
        with pytest.raises(kmerdb.GenomeNotFoundError):
            db.setop("union", tmp_path / "x", genomes=["A", "Z"])
        with pytest.raises(kmerdb.DuplicateLabelError):
            db.setop("union", tmp_path / "x", genomes=["A", "A"])
        with pytest.raises(kmerdb.InvalidParameterError):
            db.setop("union", tmp_path / "x", label="bad\tlabel")
        with pytest.raises(kmerdb.InvalidParameterError):
            db.setop("union", tmp_path / "no" / "such" / "x")
        assert not os.path.exists(tmp_path / "x")
        (tmp_path / "exists").mkdir()
        with pytest.raises(kmerdb.DatabaseExistsError):
            db.setop("union", tmp_path / "exists")
        assert os.listdir(tmp_path / "exists") == []


def test_failure_removes_the_output(built, tmp_path, monkeypatch):
    from kmerdb.ops import setops

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(setops, "write_layer", boom)
    with pytest.raises(OSError):
        kmerdb.setop(built(k=K, counts=True), "union", tmp_path / "y", threads=1)
    assert not os.path.exists(tmp_path / "y")


def test_empty_result_is_a_valid_database(tmp_path):
    rng = np.random.default_rng(1)
    paths = {}
    for name in ("x", "y"):
        seq = "".join(np.array(list("ACGT"))[rng.integers(0, 4, 3000)])
        paths[name] = tmp_path / f"{name}.fa"
        paths[name].write_text(f">{name}\n{seq}\n")
    src = tmp_path / "src.kmerdb"
    kmerdb.build(src, {n: str(p) for n, p in paths.items()}, k=K, partitions=4, counts=True, threads=1)
    out = tmp_path / "none.kmerdb"
    report = kmerdb.setop(src, "intersection", out)
    assert report.n_kmers == 0
    with kmerdb.open(out) as db:
        assert db.n_kmers == 0 and db.genomes == ("intersection",)
        assert db.intersections().tolist() == [[0]]
        assert db.query(["ACGT" * 10]).hits.tolist() == [[0]]
        assert db.spectrum() == {"intersection": []}
    again = tmp_path / "again.kmerdb"
    assert kmerdb.setop(out, "union", again).n_kmers == 0


def test_approx_source_gives_an_exact_output(oracle_sets, tmp_path):
    sets = oracle_sets(K)
    src = tmp_path / "approx.kmerdb"
    genomes = {label: [str(FIXTURES / name)] for label, name in zip(LABELS, ("genome_a.fa", "genome_b.fa.gz", "genome_c.fq"))}
    kmerdb.build(src, genomes, k=K, partitions=4, counts=True, evidence="approx", fp_bits=12, threads=2)
    out = tmp_path / "core.kmerdb"
    kmerdb.setop(src, "at-least", out, q=2)
    assert contents(out) == expected("at-least", sets, LABELS, 2)
    with kmerdb.open(out) as res, kmerdb.open(src) as approx:
        assert res.config.evidence == "exact"
        assert approx.intersections().tolist() == [[len(set(sets[a]) & set(sets[b])) for b in LABELS] for a in LABELS]


# -- every executor ---------------------------------------------------------------------

#: every operation once, with a selection and a quorum where it takes one
EVERY_OP = [
    ("union", None, None),
    ("intersection", ["A", "C"], None),
    ("difference", ["C", "A", "B"], None),
    ("at-least", None, 2),
    ("exactly", None, 1),
    ("at-most", ["B", "C"], 1),
]


def dump(path) -> tuple[np.ndarray, np.ndarray]:
    """(sorted k-mer codes, their one column) of a set operation's output."""
    with kmerdb.open(path) as db:
        pieces = list(db.iter_rows())
    keys = np.concatenate([k for k, _ in pieces])
    rows = np.concatenate([r for _, r in pieces])
    order = np.argsort(keys)
    return keys[order], rows[order]


@pytest.fixture(scope="module")
def one_thread(built, oracle_sets, tmp_path_factory):
    """Every operation of EVERY_OP with threads=1, checked against the oracle: case -> (dump, genome record)."""
    sets = oracle_sets(K)
    root = tmp_path_factory.mktemp("setop-serial")
    out = {}
    for i, (op, genomes, q) in enumerate(EVERY_OP):
        path = root / f"{i}.kmerdb"
        report = kmerdb.setop(built(k=K, counts=True), op, path, genomes=genomes, q=q, threads=1)
        assert contents(path) == expected(op, sets, tuple(genomes or LABELS), q), op
        with kmerdb.open(path) as db:
            out[i] = (dump(path), db.genome(report.label))
    return out


@pytest.mark.parametrize("where", EXECUTORS)
def test_every_operation_on_every_executor_equals_one_thread(built, one_thread, tmp_path, monkeypatch, request, where):
    kw = executor_kwargs(where, monkeypatch, request)
    src = built(k=K, counts=True)
    for i, (op, genomes, q) in enumerate(EVERY_OP):
        out = tmp_path / f"{i}.kmerdb"
        report = kmerdb.setop(src, op, out, genomes=genomes, q=q, **kw)
        (want_keys, want_rows), want_record = one_thread[i]
        keys, rows = dump(out)
        assert np.array_equal(keys, want_keys) and np.array_equal(rows, want_rows), op
        with kmerdb.open(out) as db:
            assert db.genome(report.label) == want_record


@pytest.mark.parametrize("where", EXECUTORS)
def test_a_failing_task_leaves_no_output(built, tmp_path, monkeypatch, request, where):
    kw = executor_kwargs(where, monkeypatch, request)
    src = tmp_path / "src.kmerdb"
    shutil.copytree(built(k=31, counts=False, partitions=64), src)
    with kmerdb.open(src) as db:
        layers = db.snapshot.partitions
    # the largest partition is the first task: the others are still running when it fails
    first = max(range(len(layers)), key=lambda p: sum(rec.n_kmers for rec in layers[p]))
    os.unlink(src / layers[first][0].groups[0].file.path)
    out = tmp_path / "out.kmerdb"
    with pytest.raises(kmerdb.CorruptDatabaseError, match="missing"):
        kmerdb.setop(src, "union", out, **kw)
    assert not out.exists()
