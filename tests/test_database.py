"""The read handle: opening, description, iteration, sharing between threads and processes."""

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import oracle
import pytest
from conftest import FIXTURES

import kmerdb


def reads():
    return oracle.read_sequences(FIXTURES / "reads.fa")


def test_handle_is_shared_between_threads(built):
    seqs = [s for _, s in reads()]
    with kmerdb.open(built()) as db:
        expected = db.query(seqs).hits
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: db.query(seqs).hits, range(8)))
    assert all((r == expected).all() for r in results)


def _query_in_process(path):
    with kmerdb.open(path) as db:
        return db.query([s for _, s in reads()]).hits.tolist()


def test_many_processes_open_at_once(built):
    path = str(built())
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_query_in_process, [path] * 3)
    assert results[0] == results[1] == results[2] == _query_in_process(path)


def test_info_and_records(built):
    with kmerdb.open(built()) as db:
        info = db.info()
        assert info["n_genomes"] == 3 and info["n_kmers"] == db.n_kmers > 0
        assert info["config"]["k"] == 21 and info["format_version"] == kmerdb.FORMAT_VERSION
        assert set(info["structures"]) >= {"dictionary", "unitigs", "columns"}
        assert db.genome("B").label == "B"
        with pytest.raises(kmerdb.GenomeNotFoundError):
            db.genome("nope")
        blocks = list(db.iter_kmers())
        assert sum(b.size for b in blocks) == db.n_kmers


def test_open_errors(tmp_path):
    with pytest.raises(kmerdb.DatabaseNotFoundError):
        kmerdb.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(kmerdb.DatabaseNotFoundError, match="not a kmerdb"):
        kmerdb.open(tmp_path / "empty")


# -- many genomes in colour classes ------------------------------------------------------------
@pytest.fixture(scope="session")
def many(tmp_path_factory):
    from query.manygenomes import collection

    return collection(tmp_path_factory)


def test_rows_dump_and_genome_unitigs_of_many_genomes(many, monkeypatch, tmp_path):
    """iter_rows in bounded blocks, the dump, and a genome's unitigs: the same from classes as
    from dense columns, and the rows as the oracle says."""
    import dbcheck
    import numpy as np

    from kmerdb import database
    from kmerdb.ops.export import write_dump

    monkeypatch.setattr(database, "ROW_BLOCK_CELLS", len(many.labels) * 100)
    with kmerdb.open(many.db("classes", True)) as db:
        blocks = list(db.iter_rows())
        assert max(rows.shape[0] for _, rows in blocks) == 100
    dbcheck.assert_same_answers(many.db("classes", True), many.db("dense", True))
    _, keys, rows, _ = dbcheck.dump(many.db("classes", True))
    kmers = [oracle.decode(int(x), 21) for x in keys.tolist()]
    assert np.array_equal(rows.astype(np.int64), dbcheck.expected(many.sets, many.labels, kmers))
    out = {}
    for colours in ("classes", "dense"):
        with kmerdb.open(many.db(colours, True)) as db:
            with open(tmp_path / f"{colours}.tsv", "wb") as fh:
                assert write_dump(db, fh) == db.n_kmers
            db.export_unitigs(tmp_path / f"{colours}.fa", genome="c2_g3")
        out[colours] = (tmp_path / f"{colours}.tsv").read_bytes(), (tmp_path / f"{colours}.fa").read_bytes()
    assert out["classes"] == out["dense"]
    seqs = [s for _, s in oracle.read_sequences(tmp_path / "classes.fa")]
    got = {oracle.canonical(x) for s in seqs for x in oracle.kmers(s, 21)}
    assert got == set(many.sets["c2_g3"])


def test_stats_report_colour_classes(many):
    with kmerdb.open(many.db("classes", True)) as db:
        stats = db.stats()
    classes = stats["classes"]
    assert classes["groups"] == 4 and classes["count"] > 0
    assert stats["column_kinds"]["unitig-class-counts"]["groups"] == 4
    assert (
        classes["id_bytes"] + classes["table_bytes"] + classes["count_bytes"] < stats["structures"]["columns"]["bytes"]
    )
    with kmerdb.open(many.db("dense")) as db:
        stats = db.stats()
    assert stats["classes"]["groups"] == 0 and set(stats["column_kinds"]) == {"presence"}


def _class_group_file(path):
    """(catalog snapshot, partition, layer index, group index, full path, layout) of the
    colour-class group with the most classes."""
    import numpy as np

    from kmerdb.store.catalog import Catalog
    from kmerdb.store.encodings import encoding_for

    catalog = Catalog.open(str(path), readonly=True)
    try:
        snap = catalog.read()
    finally:
        catalog.close()
    best = None
    for p, layers in enumerate(snap.partitions):
        for i, rec in enumerate(layers):
            for j, g in enumerate(rec.groups):
                full = path / g.file.path
                lay = encoding_for(g.kind)._layout(np.load(full, mmap_mode="r"), None, str(full))
                if best is None or lay["c"] > best[-1]["c"]:
                    best = (snap, p, i, j, full, lay)
    return best


@pytest.mark.parametrize("damage", ["class-id", "run-bound", "offset", "member", "count-start"])
def test_verify_finds_a_damaged_class_group(many, tmp_path, damage):
    """A class id beyond the classes, runs of classes out of order (unitig-ordered groups),
    offsets out of order, a member beyond the genomes, count ranges shifted between two
    slots: verify
    names the group (its checksum, and its decoding with the checksum made to match); queries
    and lookups fail cleanly or answer right."""
    import dataclasses
    import os
    import shutil

    import dbcheck
    import numpy as np

    from kmerdb.core import bits
    from kmerdb.errors import CorruptDatabaseError
    from kmerdb.ops.maintenance import VerifyContext, verify, verify_partition
    from kmerdb.store.storage import data_file_checksum

    copy = tmp_path / "db"
    shutil.copytree(many.db("classes", True), copy, ignore=shutil.ignore_patterns("locks"))
    snap, p, i, j, full, lay = _class_group_file(copy)
    os.chmod(full, 0o644)
    data = np.load(full)
    sec = lay["sections"]
    if damage == "class-id":
        name, count = ("ids", lay["n"]) if "ids" in sec else ("runs", lay["runs"])
        lo, hi = sec[name]
        ids = bits.unpack(data[lo:hi], count, lay["id_width"])
        assert lay["c"] < 1 << lay["id_width"]
        ids[0] = lay["c"]
        data[lo:hi] = bits.pack(ids, lay["id_width"])
    elif damage == "run-bound":
        lo, hi = sec["bounds"]
        bounds = data[lo:hi].view(f"<u{lay['bound_bytes']}")
        assert lay["runs"] > 2
        bounds[1] = bounds[2]
    elif damage == "offset":
        lo, hi = sec["offsets"]
        offsets = bits.unpack(data[lo:hi], lay["c"] + 1, lay["offset_width"])
        offsets[1] = offsets[2] + lay["w"]
        data[lo:hi] = bits.pack(offsets, lay["offset_width"])
    elif damage == "count-start":
        lo, hi = sec["starts"]
        starts = bits.unpack(data[lo:hi], lay["n"] + 1, lay["start_width"])
        starts[1] += 1  # slot 0 gets one count more than its class has, slot 1 one fewer
        data[lo:hi] = bits.pack(starts, lay["start_width"])
    else:
        lo, hi = sec["payload"]
        forms = bits.unpack(data[slice(*sec["forms"])], lay["c"], 2)
        offsets = bits.unpack(data[slice(*sec["offsets"])], lay["c"] + 1, lay["offset_width"])
        listed = int(np.flatnonzero((forms == 0) & (offsets[1:] > offsets[:-1]))[0])
        # the payload is a bit stream read most significant bit first: its first member := g
        stream = np.unpackbits(data[lo:hi].astype(">u8").view(np.uint8))
        w, at = lay["w"], int(offsets[listed])
        assert lay["g"] < 1 << w
        stream[at : at + w] = (lay["g"] >> np.arange(w - 1, -1, -1)) & 1
        data[lo:hi] = np.packbits(stream).view(">u8").astype("<u8")
    np.save(full, data)

    report = verify(copy, threads=1)
    assert not report.ok
    assert any(full.name in problem for problem in report.problems)
    # the checksum made to match: the decoding itself finds the damage
    nbytes, digest = data_file_checksum(str(copy), full.relative_to(copy).as_posix())
    rec = snap.partitions[p][i]
    groups = list(rec.groups)
    groups[j] = dataclasses.replace(groups[j], file=dataclasses.replace(groups[j].file, nbytes=nbytes, checksum=digest))
    layers = list(snap.partitions[p])
    layers[i] = dataclasses.replace(rec, groups=tuple(groups))
    parts = list(snap.partitions)
    parts[p] = tuple(layers)
    resealed = dataclasses.replace(snap, partitions=tuple(parts))
    _, problems, *_ = verify_partition(VerifyContext(str(copy), resealed), p)
    assert any("column group" in problem or full.name in problem for problem in problems), problems

    kmers, codes = dbcheck.universe(many.sets, 21, extra=20)
    reads = many.reads(n=20, seed=2)
    want_hits, _ = many.hits(reads)
    want = dbcheck.expected(many.sets, many.labels, kmers)
    try:
        db = kmerdb.open(copy)
    except CorruptDatabaseError:
        return  # open checks what is cheap: runs out of order are refused there
    with db:
        for ask in (lambda: db.query(reads).hits, lambda: db.lookup(codes, counts=True)):
            try:
                got = ask()
            except CorruptDatabaseError:
                continue
            assert np.array_equal(got, want_hits) or np.array_equal(got, want)
