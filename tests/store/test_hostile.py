"""A database is untrusted input: hostile catalogs and directories are contained.

Each test copies a small real database, crafts one hostile change (a catalog record edited
through LMDB, a symlink, a FIFO, an oversized .npy header) and checks that open, query,
dump, verify, merge, append and vacuum refuse it cleanly (CorruptDatabaseError, or a verify
report naming it), return at once, and leave a sentinel folder outside the database as it was.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
from pathlib import Path

import dbcheck
import lmdb
import numpy as np
import pytest

import kmerdb
from kmerdb.core.unitigs import UnitigSet
from kmerdb.errors import CorruptDatabaseError, KmerDBError
from kmerdb.ops.export import write_dump
from kmerdb.ops.maintenance import verify
from kmerdb.store.catalog import _pack, _unpack

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the database with a sentinel file; checked untouched after each test."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious\n")
    before = sorted(os.listdir(folder))
    yield folder
    assert sorted(os.listdir(folder)) == before, "a file appeared or vanished outside the database"
    assert (folder / "keep.txt").read_text() == "precious\n", "a file outside the database was changed"


@pytest.fixture(autouse=True)
def no_hang():
    """Each case must return: an alarm turns a hang into a failure instead of a stuck suite."""

    def fail(signum, frame):
        raise TimeoutError("the call did not return (it used to hang here)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def edit_catalog(path: Path, key: bytes, change) -> None:
    """Replace catalog record ``key`` by ``change(record)`` (or raw bytes it returns)."""
    env = lmdb.open(str(path / "catalog"), subdir=True, map_size=1 << 32)
    try:
        with env.begin(write=True) as txn:
            new = change(_unpack(txn.get(key)))
            txn.put(key, new if isinstance(new, bytes) else _pack(new))
            dbcheck.reseal(txn)  # a crafted record with consistent checksums: the checks behind them
    finally:
        env.close()


def first_file(path: Path, role: str = "dictionary") -> tuple[bytes, str]:
    """(partition key, relative path) of the first layer's ``role`` file that exists."""
    env = lmdb.open(str(path / "catalog"), subdir=True, readonly=True, lock=False)
    try:
        with env.begin() as txn:
            for p in range(2):
                key = f"partition/{p:05d}".encode()
                layers = _unpack(txn.get(key))["layers"]
                if layers:
                    return key, layers[0]["files"][role]["path"]
    finally:
        env.close()
    raise AssertionError("no layer")


def set_path(path: Path, new_path) -> str:
    """Point the first layer's MPHF record at ``new_path``; returns the old relative path."""
    key, old = first_file(path)

    def change(rec):
        rec["layers"][0]["files"]["dictionary"]["path"] = new_path
        return rec

    edit_catalog(path, key, change)
    return old


def every_read_refuses(path: Path) -> None:
    """open (and, should it open, query and dump) end in one CorruptDatabaseError."""
    with pytest.raises(CorruptDatabaseError), kmerdb.open(path) as handle:
        handle.query(["ACGTACGTACGTACGTACGTAC"])
        write_dump(handle, io.BytesIO())


# -- paths that leave the database ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "integer", "outside-data"])
def test_catalog_paths_outside_the_database_are_refused(db, outside, kind):
    target = outside / "keep.txt"
    new_path = {
        "dotdot": "data/p00000/../../../outside/keep.txt",
        "absolute": str(target),
        "integer": 12345,
        "outside-data": "catalog/data.mdb",
    }[kind]
    set_path(db, new_path)
    with pytest.raises(CorruptDatabaseError, match="partition/0000"):
        kmerdb.open(db)  # refused when the catalog is read, naming the record
    every_read_refuses(db)
    report = verify(db, threads=1)
    assert not report.ok and "partition/0000" in report.problems[0]


def test_symlink_inside_the_database_is_refused_and_merge_links_nothing_outside(db, outside, tmp_path):
    # the case: a folder of the source is a symlink, the path goes through it
    os.symlink(outside, db / "data" / "p00000" / "evil")
    set_path(db, "data/p00000/evil/../evil/keep.txt")
    with pytest.raises(CorruptDatabaseError, match="component"):
        kmerdb.open(db)
    set_path(db, "data/p00000/evil/keep.txt")
    every_read_refuses(db)
    out = tmp_path / "merged.kmerdb"
    with pytest.raises(CorruptDatabaseError, match="symlink"):
        kmerdb.merge(out, [db], threads=1)
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".merged")]  # staging removed
    report = verify(db, threads=1)
    assert any("symlink" in p for p in report.problems)


def test_data_file_replaced_by_a_symlink_to_dev_zero_is_refused(db, outside):
    _, rel = first_file(db)
    (db / rel).unlink()
    os.symlink("/dev/zero", db / rel)
    every_read_refuses(db)
    report = verify(db, threads=1)  # used to read /dev/zero forever
    assert any(rel in p and "symlink" in p for p in report.problems)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_data_file_replaced_by_a_fifo_is_refused_at_once(db, outside, tmp_path):
    _, rel = first_file(db)
    (db / rel).unlink()
    os.mkfifo(db / rel)
    every_read_refuses(db)  # used to block on opening the FIFO
    report = verify(db, threads=1)
    assert any(rel in p and "FIFO" in p for p in report.problems)
    with pytest.raises(CorruptDatabaseError, match="FIFO"):
        kmerdb.merge(tmp_path / "m.kmerdb", [db], threads=1)


def test_data_file_replaced_by_a_directory_is_refused(db, outside):
    _, rel = first_file(db)
    (db / rel).unlink()
    (db / rel).mkdir()
    every_read_refuses(db)


# -- writers and symlinked folders ----------------------------------------------------------


@pytest.mark.parametrize("exists", [True, False])
def test_writers_refuse_a_symlinked_writer_lock(db, outside, exists):
    (db / "locks").mkdir(exist_ok=True)
    (db / "locks" / "writer").unlink(missing_ok=True)  # the build's own lock file, replaced by a symlink
    target = outside / "keep.txt" if exists else outside / "absent.txt"
    os.symlink(target, db / "locks" / "writer")
    with pytest.raises(CorruptDatabaseError, match="symlink"):
        kmerdb.vacuum(db)
    with kmerdb.open(db, mode="a") as handle:  # readers still read
        assert handle.genomes == ("A", "B")
        with pytest.raises(CorruptDatabaseError, match="symlink"), handle.transaction():
            handle.append_genome("C", [str(FIXTURES / "genome_c.fq")], threads=1)
    assert not (outside / "absent.txt").exists()


def test_writers_refuse_a_symlinked_locks_folder(db, outside):
    shutil.rmtree(db / "locks", ignore_errors=True)
    os.symlink(outside, db / "locks")
    with pytest.raises(CorruptDatabaseError, match="symlink"):
        kmerdb.vacuum(db)
    with kmerdb.open(db) as handle:  # a reader opens, without registering outside
        assert handle.genomes == ("A", "B")


def test_vacuum_refuses_a_symlinked_data_folder(db, outside, tmp_path):
    real = tmp_path / "real-data"
    shutil.move(db / "data", real)
    os.symlink(real, db / "data")
    (real / "foreign.txt").write_text("not the database's\n")
    with pytest.raises(CorruptDatabaseError, match="symlink"):
        kmerdb.vacuum(db)
    assert (real / "foreign.txt").exists()  # used to be deleted as unreferenced
    report = verify(db, threads=1)
    assert any("data/ is a symlink" in p for p in report.problems)


# -- crafted values -------------------------------------------------------------------------


def _rewrite_npy_header(path: Path, shape: tuple[int, ...], dtype: str = "<u8") -> None:
    """Replace an .npy file's header by one claiming ``shape``, keeping its data bytes."""
    with open(path, "rb") as fh:
        np.lib.format.read_magic(fh)
        np.lib.format.read_array_header_1_0(fh)
        data = fh.read()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    path.chmod(0o644)
    path.write_bytes(header.getvalue() + data)


@pytest.mark.parametrize("shape", [(1 << 31,), (1 << 40,), (-5,)], ids=["2^31", "8TiB", "negative"])
def test_oversized_npy_headers_are_refused_before_allocating(db, outside, shape):
    _, rel = first_file(db)
    _rewrite_npy_header(db / rel, shape)
    every_read_refuses(db)
    report = verify(db, threads=1)
    assert not report.ok


def test_object_npy_is_refused(db, outside):
    _, rel = first_file(db)
    _rewrite_npy_header(db / rel, (1,), "|O")
    every_read_refuses(db)


@pytest.mark.parametrize(
    "key, change",
    [
        (b"state", lambda r: r | {"generation": -1}),
        (b"state", lambda r: r | {"generation": "7"}),
        (b"config", lambda r: r | {"n_partitions": 1 << 40}),
        (b"config", lambda r: r | {"n_partitions": 0}),
        (b"genomes", lambda r: [r[0] | {"n_kmers": -3}] + r[1:]),
        (b"genomes", lambda r: [r[0] | {"id": 1 << 63}] + r[1:]),
        (b"genomes", lambda r: [r[0] | {"label": 5}] + r[1:]),
        (b"genomes", lambda r: b"\xdd\xff\xff\xff\xff" + _pack(r[0])),  # a list header claiming 2^32 - 1 records
        (b"partition/00000", lambda r: {"layers": [r["layers"][0] | {"n_kmers": -1}]}),
        (b"partition/00000", lambda r: {"layers": [r["layers"][0] | {"generation": 99}]}),
        (b"partition/00000", lambda r: {"layers": [r["layers"][0] | {"files": [1, 2]}]}),
    ],
    ids=[
        "negative-generation",
        "string-generation",
        "huge-n_partitions",
        "zero-n_partitions",
        "negative-count",
        "huge-id",
        "integer-label",
        "list-longer-than-record",
        "negative-layer-kmers",
        "layer-from-the-future",
        "files-not-a-map",
    ],
)
def test_crafted_catalog_values_are_refused(db, outside, key, change):
    edit_catalog(db, key, change)
    with pytest.raises(CorruptDatabaseError, match=key.decode()):
        kmerdb.open(db)
    report = verify(db, threads=1)  # used to pass a negative generation
    assert not report.ok and key.decode() in report.problems[0]
    with pytest.raises(KmerDBError):
        kmerdb.vacuum(db)


def test_many_genome_records_are_read_and_summarised_linearly(db, outside, capsys):
    from kmerdb.console import main

    def many(records):
        return records + [records[0] | {"id": 100 + i, "label": f"x{i}"} for i in range(3000)]

    edit_catalog(db, b"genomes", many)
    edit_catalog(db, b"state", lambda r: r | {"next_genome_id": 5000})
    with kmerdb.open(db) as handle:
        assert len(handle.genomes) == 3002
    assert main(["info", str(db), "--format", "table"]) == 0  # a table shows the first genomes
    out = capsys.readouterr().out
    assert "2,952 more genomes" in out and "x2999" not in out
    assert main(["info", str(db), "--format", "tsv"]) == 0  # data formats list them all
    assert "x2999" in capsys.readouterr().out
    report = verify(db, threads=1)  # columns counted per layer in one pass, not per genome
    assert any("'x0' has 0 columns" in p for p in report.problems)


def test_packed_headers_with_a_zero_width_cannot_size_an_allocation():
    from kmerdb.core import unitigs

    # a unitig header claiming 2^40 unitigs whose offsets take 0 bits: it passes a length
    # check, then sizes an allocation of 2^40 entries unless the width is refused first
    n_unitigs = 1 << 40
    n_bases = 2 + n_unitigs * 14
    start = unitigs.HEADER_WORDS
    seq_words = 4
    head = [unitigs.MAGIC, unitigs.VERSION, 15, 2, n_unitigs, n_bases, 0, start, start + 1, start + 1 + seq_words]
    arr = np.array(head + [0] * (1 + seq_words), dtype=np.uint64)
    with pytest.raises(CorruptDatabaseError, match="crafted"):
        UnitigSet(arr, source="crafted")
