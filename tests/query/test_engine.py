"""Lookups and queries (kmerdb.query.engine, through the handle): the oracle's answers, batches,
parallel shares, worker processes."""

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import oracle
import pytest
from conftest import FIXTURES, GENOMES

import kmerdb


def reads():
    return oracle.read_sequences(FIXTURES / "reads.fa")


@pytest.fixture(scope="module")
def bases_ab(tmp_path_factory):
    path = tmp_path_factory.mktemp("ab") / "ab.kmerdb"
    kmerdb.build(path, {g: GENOMES[g] for g in "AB"}, k=21, partitions=4, threads=1)
    return path


def test_query_matches_oracle(built, oracle_sets):
    # 5 partitions: keys are grouped by a modulo, not a mask; 64: some partitions hold no
    # k-mer, and a read's k-mers there are not found
    for k, counts, parts in ((21, True, 8), (31, False, 64), (21, False, 5)):
        sets = oracle_sets(k)
        with kmerdb.open(built(k=k, counts=counts, partitions=parts)) as db:
            names = [n for n, _ in reads()]
            seqs = [s for _, s in reads()]
            res = db.query(seqs, names=names)
            assert res.labels == db.genomes == ("A", "B", "C")
            assert res.names == tuple(names)
            for i, seq in enumerate(seqs):
                hits, n = oracle.query_hits(seq, sets, k)
                assert res.n_kmers[i] == n
                assert res.hits[i].tolist() == [hits[label] for label in res.labels]
                held = sum(1 for x in oracle.kmers(seq, k) if any(x in s for s in sets.values()))
                assert res.found[i] == res.found_raw[i] == held
                if n:
                    assert np.allclose(res.ratio[i], res.hits[i] / n)


def test_query_edge_cases(built):
    with kmerdb.open(built()) as db:
        res = db.query([])
        assert res.hits.shape == (0, 3)
        res = db.query(["ACGT", "", "N" * 50])
        assert res.n_kmers.tolist() == [0, 0, 0] and res.ratio.tolist() == [[0.0] * 3] * 3
        one = db.query(reads()[0][1])
        assert one.hits.shape == (1, 3)
        with pytest.raises(kmerdb.InvalidParameterError):
            db.query(["ACGT"], names=["a", "b"])


@pytest.mark.parametrize("counts", [False, True])
def test_query_of_dense_groups_of_a_few_genomes(tmp_path, oracle_sets, counts):
    """Dense presence bits and dense counts of three genomes, then of two after a removal (a
    byte's bit left without a column): every cell equals the oracle's."""
    sets = oracle_sets(21)
    path = tmp_path / "dense.kmerdb"
    kmerdb.build(path, GENOMES, k=21, partitions=8, counts=counts, colours="dense", threads=1)
    seqs = [s for _, s in reads()]
    for removed in (None, "B"):
        if removed:
            with kmerdb.open(path, "a") as db, db.transaction():
                db.remove_genome(removed)
        with kmerdb.open(path) as db:
            kinds = {g.kind for part in db._engine().layers for layer in part for g in layer.groups}
            assert kinds == {"counts" if counts else "presence"}
            res = db.query(seqs)
            for i, seq in enumerate(seqs):
                hits, n = oracle.query_hits(seq, sets, 21)
                assert res.n_kmers[i] == n
                assert res.hits[i].tolist() == [hits[label] for label in res.labels]
            assert res.labels == tuple(g for g in "ABC" if g != removed)


def test_query_of_partitions_without_kmers(tmp_path):
    """A tiny genome leaves most of 64 partitions without k-mers: keys there are not found."""
    import random

    rng = random.Random(5)
    genome = "".join(rng.choice("ACGT") for _ in range(60))
    (tmp_path / "g.fa").write_text(f">g\n{genome}\n")
    kmerdb.build(tmp_path / "t.kmerdb", {"g": [str(tmp_path / "g.fa")]}, k=21, partitions=64, threads=1)
    reads = [genome[5:50], "".join(rng.choice("ACGT") for _ in range(300)), genome[:30] + "A" * 40]
    sets = {"g": set(oracle.kmers(genome, 21))}
    with kmerdb.open(tmp_path / "t.kmerdb") as db:
        assert sum(1 for part in db._engine().layers if not any(layer.n for layer in part)) > 32
        res = db.query(reads)
    for i, seq in enumerate(reads):
        held = sum(1 for x in oracle.kmers(seq, 21) if x in sets["g"])
        assert res.found[i] == res.found_raw[i] == res.hits[i, 0] == held
    assert res.found[1] == 0 < res.n_kmers[1]


def test_query_of_str_bytes_and_both_answers_alike(built):
    """Sequences as str, as bytes and mixed (characters beyond ASCII among them, one position
    each) answer the same, sequence by sequence."""
    seqs = [s for _, s in reads()][:20]
    odd = [s[:40] + "é" + s[40:] for s in seqs[:5]]  # a break in k-mers, one character wide
    as_str = seqs + odd
    as_bytes = [s.encode("ascii", "replace") for s in as_str]
    mixed = [b if i % 2 else s for i, (s, b) in enumerate(zip(as_str, as_bytes))]
    with kmerdb.open(built()) as db:
        want = db.query(as_str)
        assert want.n_kmers[20:].tolist() == [db.query(s).n_kmers[0] for s in odd]
        assert want.n_kmers[20] == len(odd[0]) - 21 + 1 - 21  # the k-mers over the odd character
        for other in (as_bytes, mixed, tuple(mixed), [bytearray(b) for b in as_bytes]):
            assert _same(want, db._engine().query(other))


def test_work_arrays_kept_between_calls_leave_no_trace(built, monkeypatch):
    """A thread's work arrays, kept from call to call, never carry one call's k-mers into the
    next: calls of more, fewer and other sequences answer as a fresh engine does; arrays past
    the budget are let go when a call ends, and closing lets go of them all."""
    from kmerdb.query import engine

    seqs = [s for _, s in reads()]
    calls = [seqs, seqs[:3], seqs[::-1] + seqs, ["ACGT" * 30], seqs[5:9]]
    with kmerdb.open(built()) as db:
        want = [db.query(c) for c in calls]
    with kmerdb.open(built()) as db:
        eng = db._engine()
        for c, w in zip(calls, want):
            assert _same(db.query(c), w)
            assert eng._local.scratch.nbytes > 0  # kept
        monkeypatch.setattr(engine, "_KEEP_BYTES", 0)
        assert _same(db.query(calls[0]), want[0])
        assert eng._local.scratch is None  # past the budget: let go
        db.query(calls[1])
        eng.close()
        assert getattr(eng._local, "scratch", None) is None


def test_threads_sharing_an_engine_answer_alike(built):
    """Threads querying one handle at once (each with its own work arrays) get the answers of
    one thread."""
    seqs = [s for _, s in reads()]
    parts = [seqs[i::4] for i in range(4)]
    with kmerdb.open(built()) as db:
        want = [db.query(p) for p in parts]

        def run(i: int) -> list:
            return [db.query(parts[(i + j) % 4]) for j in range(8)]

        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(run, range(4)))
        for i in range(4):
            assert all(_same(r, want[(i + j) % 4]) for j, r in enumerate(got[i]))


def test_lookup_strings_codes_and_orientation(built, oracle_sets):
    k = 21
    sets = oracle_sets(k)
    universe = sorted(set().union(*[set(s) for s in sets.values()]))[:500]
    absent = "A" * k if "A" * k not in set().union(*sets.values()) else None
    with kmerdb.open(built(k=k)) as db:
        counts = db.lookup(universe, counts=True)
        expected = np.array([[sets[g].get(x, 0) for g in db.genomes] for x in universe])
        assert (counts == expected).all()
        presence = db.lookup(universe)
        assert presence.dtype == bool and (presence == (expected > 0)).all()
        rc = [oracle.reverse_complement(x).lower() for x in universe]
        assert (db.lookup(rc, counts=True) == expected).all()
        codes = np.array([oracle.encode(x) for x in universe], dtype=np.uint64)
        assert (db.lookup(codes, counts=True) == expected).all()
        if absent:
            assert not db.lookup([absent]).any()
        assert db.lookup([]).shape == (0, 3)
        for bad in (["ACGT"], ["N" * k]):
            with pytest.raises(kmerdb.InvalidParameterError):
                db.lookup(bad)
        with pytest.raises(kmerdb.InvalidParameterError):
            db.lookup(np.array([4**k], dtype=np.uint64))
    with (
        kmerdb.open(built(k=31, counts=False, partitions=64)) as db,
        pytest.raises(kmerdb.InvalidParameterError, match="presence only"),
    ):
        db.lookup(["A" * 31], counts=True)


def _same(a, b):
    return (a.hits == b.hits).all() and (a.n_kmers == b.n_kmers).all() and (a.found == b.found).all()


def test_parallel_query_equals_single_threaded(built, monkeypatch):
    from kmerdb.query import engine

    monkeypatch.setattr(engine, "_PARALLEL_MIN_BASES", 0)
    seqs = [s for _, s in reads()] * 3
    with kmerdb.open(built()) as db:
        one = db.query(seqs)
        assert db.query_workers == ()
        assert _same(one, db.query(seqs, threads=3))
        pids = list(db.query_workers)
        assert len(pids) == 2
        assert _same(one, db.query(seqs, threads=2))  # the same workers serve again
        assert list(db.query_workers) == pids
        with ThreadPoolExecutor(3) as pool:  # a busy pool: the other threads answer themselves
            results = list(pool.map(lambda _: db.query(seqs, threads=3), range(6)))
        assert all(_same(one, r) for r in results)
        assert _same(db.query(seqs[:1]), db.query(seqs[:1], threads=3))
        assert _same(db.query(seqs, z=2), db.query(seqs, threads=3, z=2))  # the z rule, per share
        with pytest.raises(kmerdb.InvalidParameterError):
            db.query(seqs, threads=0)
    for pid in pids:  # closing the handle ended its workers
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_query_in_many_batches_answers_the_same(built, monkeypatch):
    from kmerdb.query import engine

    seqs = [s for _, s in reads()] + ["", "N" * 40, "ACGT"]
    with kmerdb.open(built()) as db:
        whole = db.query(seqs)
        monkeypatch.setattr(engine, "_QUERY_CELLS", 3 * 500)  # batches of ~500 bases
        monkeypatch.setattr(engine, "_PARALLEL_MIN_BASES", 0)
        assert len(engine._batches(np.array([len(s) for s in seqs]), 500)) > 3
        assert _same(whole, db.query(seqs))
        assert _same(whole, db.query(seqs, threads=2))


def test_parallel_query_survives_a_killed_worker(built, monkeypatch, caplog):
    from kmerdb.query import engine

    monkeypatch.setattr(engine, "_PARALLEL_MIN_BASES", 0)
    seqs = [s for _, s in reads()] * 2
    with kmerdb.open(built()) as db:
        one = db.query(seqs)
        assert _same(one, db.query(seqs, threads=2))
        (pid,) = list(db.query_workers)
        os.kill(pid, signal.SIGKILL)
        with caplog.at_level("WARNING", logger="kmerdb.query.engine"):
            assert _same(one, db.query(seqs, threads=2))  # answered here, with a warning
        assert "query worker" in caplog.text
        assert _same(one, db.query(seqs, threads=2))  # by a new worker
        assert list(db.query_workers) != [pid]


def test_parallel_query_follows_the_snapshot(bases_ab, monkeypatch, tmp_path):
    """Workers answer from the snapshot they were forked with; a refresh replaces them."""
    import shutil

    from kmerdb.query import engine

    monkeypatch.setattr(engine, "_PARALLEL_MIN_BASES", 0)
    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases_ab, path)
    seqs = [s for _, s in reads()] * 2
    with kmerdb.open(path) as reader:
        before = reader.query(seqs, threads=2)
        assert before.labels == ("A", "B")
        old = list(reader.query_workers)
        with kmerdb.open(path, "a") as writer, writer.transaction():
            writer.append_genome("C", GENOMES["C"], threads=1)
        assert _same(before, reader.query(seqs, threads=2))  # still its snapshot
        assert reader.refresh()
        after = reader.query(seqs, threads=2)
        assert after.labels == ("A", "B", "C") and list(reader.query_workers) != old
        assert _same(after, reader.query(seqs))
        assert (after.hits[:, :2] == before.hits).all()


@pytest.mark.parametrize("counts", [True, False])
def test_query_of_many_genomes_after_edits(tmp_path, monkeypatch, counts):
    """Eleven genomes (two packed bytes), an appended layer, a removed genome: every cell
    and every sequence's found k-mers (some not in the index) equal the oracle's, through
    the (sequence, byte) tables of whole batches and of batches of one sequence."""
    import random

    from kmerdb.query import engine

    rng = random.Random(11)
    k = 15
    core = "".join(rng.choice("ACGT") for _ in range(4000))
    paths = {}
    for g in range(13):
        own = "".join(rng.choice("ACGT") for _ in range(300))
        lo = rng.randrange(0, 2000)
        seq = core[lo : lo + rng.randrange(800, 2000)] + own  # shared part + private part
        paths[f"g{g:02d}"] = tmp_path / f"g{g:02d}.fa"
        paths[f"g{g:02d}"].write_text(f">g{g}\n{seq}\n")
    first = {label: [str(p)] for label, p in list(paths.items())[:11]}
    db_path = tmp_path / "many.kmerdb"
    kmerdb.build(db_path, first, k=k, partitions=4, counts=counts, threads=1)
    with kmerdb.open(db_path, "a") as db, db.transaction():
        db.append_genome("g11", [str(paths["g11"])], threads=1)
        db.append_genome("g12", [str(paths["g12"])], threads=1)
        db.remove_genome("g03")
    labels = [label for label in paths if label != "g03"]
    sets = oracle.genome_sets({label: [paths[label]] for label in labels}, k)
    reads = [core[i : i + 120] for i in range(0, 3800, 97)]
    reads += [(paths[label].read_text().split()[1])[50:200] for label in labels]
    reads += ["ACGTN" * 30, "".join(rng.choice("ACGT") for _ in range(200)), ""]
    for bins in (engine._TALLY_BINS, 1):  # a table of 1 bin: batches of one sequence
        monkeypatch.setattr(engine, "_TALLY_BINS", bins)
        with kmerdb.open(db_path) as db:
            assert db.genomes == tuple(labels)
            res = db.query(reads)
            for i, seq in enumerate(reads):
                hits, n = oracle.query_hits(seq, sets, k)
                assert res.n_kmers[i] == n
                assert res.hits[i].tolist() == [hits[label] for label in labels]
                held = sum(1 for x in oracle.kmers(seq, k) if any(x in s for s in sets.values()))
                assert res.found[i] == res.found_raw[i] == held
            assert 0 < res.found.sum() < res.n_kmers.sum()


def test_query_workers_do_not_keep_a_writer_lock(bases_ab, monkeypatch, tmp_path):
    """Workers forked while this process holds the writer lock drop their copy of it."""
    import shutil

    from kmerdb.query import engine

    monkeypatch.setattr(engine, "_PARALLEL_MIN_BASES", 0)
    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases_ab, path)
    seqs = [s for _, s in reads()] * 2
    with kmerdb.open(path) as reader:
        with kmerdb.open(path, "a") as writer, writer.transaction():
            writer.append_genome("C", GENOMES["C"], threads=1)
            first = reader.query(seqs, threads=2)  # forks its worker now, lock held
            inside = writer.query(seqs, threads=2)  # the writer's staged snapshot
            assert inside.labels == ("A", "B", "C")
        assert reader.query_workers != () and writer.query_workers == ()
        with kmerdb.open(path, "a") as again, again.transaction():  # the lock is free
            again.remove_genome("C")
        assert _same(first, reader.query(seqs, threads=2))


def test_an_engine_over_the_layers_of_a_snapshot(built, oracle_sets, monkeypatch):
    """A QueryEngine built from opened layers answers like the handle (and the oracle); once
    closed, its workers are gone and it answers in the calling thread."""
    from kmerdb.query import engine as engine_module
    from kmerdb.query.engine import QueryEngine

    monkeypatch.setattr(engine_module, "_PARALLEL_MIN_BASES", 0)
    k = 21
    sets = oracle_sets(k)
    seqs = [s for _, s in reads()] * 2
    with kmerdb.open(built(k=k)) as db:
        engine = QueryEngine(db.config, db.genomes, db.layers)
        try:
            res = engine.query(seqs, threads=2)
            assert len(engine.worker_pids) == 1 and db.query_workers == ()
            assert _same(res, db.query(seqs))
            for i, seq in enumerate(seqs[:5]):
                hits, n = oracle.query_hits(seq, sets, k)
                assert res.n_kmers[i] == n and res.hits[i].tolist() == [hits[label] for label in res.labels]
            universe = sorted(set().union(*[set(s) for s in sets.values()]))[:200]
            expected = np.array([[sets[g].get(x, 0) for g in db.genomes] for x in universe])
            assert (engine.lookup(universe, counts=True) == expected).all()
            (pid,) = engine.worker_pids
        finally:
            engine.close()
        assert engine.worker_pids == ()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert _same(res, engine.query(seqs, threads=2)) and engine.worker_pids == ()
