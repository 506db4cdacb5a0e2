"""verify finds what is wrong; vacuum removes only what nobody can see; compact folds layers."""

from __future__ import annotations

import os
import shutil

import dbcheck
import lmdb
import msgpack
import numpy as np
import pytest
from conftest import GENOMES
from dbcheck import assert_same_answers

import kmerdb
from kmerdb.ops.maintenance import data_files

from .executors import EXECUTORS, executor_kwargs

K = 21
PARTS = 4


@pytest.fixture(scope="module")
def layered(tmp_path_factory):
    """A+B, then C appended and A removed: two layers per partition, columns of a removed genome."""
    root = tmp_path_factory.mktemp("maint")
    path = root / "layered.kmerdb"
    kmerdb.build(path, {"A": GENOMES["A"], "B": GENOMES["B"]}, k=K, partitions=PARTS, counts=True, threads=2)
    with kmerdb.open(path, "a") as db:
        with db.transaction():
            db.append_genome("C", GENOMES["C"])
        with db.transaction():
            db.remove_genome("A")
    ref = root / "bc.kmerdb"
    kmerdb.build(ref, {"B": GENOMES["B"], "C": GENOMES["C"]}, k=K, partitions=PARTS, counts=True, threads=2)
    return path, ref


def copy(src, tmp_path):
    dst = tmp_path / "db.kmerdb"
    shutil.copytree(src, dst)
    return dst


def _edit_partition(path, p, update):
    key = f"partition/{p:05d}".encode()
    env = lmdb.open(str(path / "catalog"), subdir=True)
    with env.begin(write=True) as txn:
        rec = msgpack.unpackb(txn.get(key), raw=False, strict_map_key=False)
        update(rec["layers"])
        txn.put(key, msgpack.packb(rec, use_bin_type=True))
        dbcheck.reseal(txn)  # checksums consistent: what verify finds behind them
    env.close()


def test_verify_passes_on_sound_databases(layered):
    path, ref = layered
    for db in (path, ref):
        report = kmerdb.verify(db, threads=2)
        assert report.ok, report.problems
        assert report.n_layers > 0 and report.n_kmers > 0 and report.n_files > 0
    assert kmerdb.verify(path).n_genomes == 2


def test_verify_detects_damaged_and_missing_files(layered, tmp_path):
    path = copy(layered[0], tmp_path)
    with kmerdb.open(path) as db:
        rec = db.snapshot.partitions[1][0]
        mphf = rec.files["dictionary"].path
        group = rec.groups[0].file.path
    with open(path / group, "r+b") as fh:  # one flipped bit in a column group
        fh.seek(-1, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 1]))
    os.unlink(path / mphf)
    report = kmerdb.verify(path)
    assert not report.ok
    text = "\n".join(report.problems)
    assert "checksum" in text and group in text
    assert "missing" in text and mphf in text


@pytest.mark.parametrize("where", EXECUTORS)
def test_verify_on_every_executor_equals_one_thread(layered, oracle_sets, tmp_path, monkeypatch, request, where):
    kw = executor_kwargs(where, monkeypatch, request)
    path = layered[0]
    clean = kmerdb.verify(path, **kw)
    assert clean.ok, clean.problems
    assert clean.to_dict() == kmerdb.verify(path, threads=1).to_dict()
    # A was removed but not compacted: the layers still hold every k-mer of A, B and C
    assert clean.n_kmers == len(set().union(*map(set, oracle_sets(K).values())))
    damaged = copy(path, tmp_path)
    with kmerdb.open(damaged) as db:
        group = db.snapshot.partitions[1][0].groups[0].file.path
        mphf = db.snapshot.partitions[3][1].files["dictionary"].path
    with open(damaged / group, "r+b") as fh:  # one flipped bit in a column group
        fh.seek(-1, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 1]))
    os.unlink(damaged / mphf)
    report = kmerdb.verify(damaged, **kw)
    assert not report.ok
    assert report.to_dict() == kmerdb.verify(damaged, threads=1).to_dict()
    text = "\n".join(report.problems)
    assert "partition 1 layer" in text and "checksum" in text and group in text
    assert "missing" in text and mphf in text


def test_verify_detects_a_broken_column_invariant(layered, tmp_path):
    path = copy(layered[0], tmp_path)
    _edit_partition(path, 2, lambda layers: layers[0]["groups"].pop())  # the group of C
    report = kmerdb.verify(path)
    assert any("'C' has 0 columns" in p for p in report.problems)


def test_verify_detects_a_dictionary_of_other_keys(layered, tmp_path):
    path = copy(layered[0], tmp_path)
    with kmerdb.open(path) as db:
        a, b = db.snapshot.partitions[0][0], db.snapshot.partitions[0][1]
        assert a.n_kmers != b.n_kmers

    def swap(layers):  # layer 0 gets the dictionary of a layer of another size
        layers[0]["files"]["dictionary"], layers[1]["files"]["dictionary"] = layers[1]["files"]["dictionary"], layers[0]["files"]["dictionary"]

    _edit_partition(path, 0, swap)
    report = kmerdb.verify(path)
    assert not report.ok and any("partition 0" in p for p in report.problems)


def test_verify_of_an_unfinished_build(tmp_path):
    from kmerdb.config import Config
    from kmerdb.store.catalog import Catalog

    (tmp_path / "b.kmerdb").mkdir()
    Catalog.create(str(tmp_path / "b.kmerdb"), Config(k=K, m=9, n_partitions=PARTS)).close()
    report = kmerdb.verify(tmp_path / "b.kmerdb")
    assert not report.ok and "building" in report.problems[0]


def test_compact_folds_layers_and_drops_kmers_of_removed_genomes(layered, tmp_path):
    path = copy(layered[0], tmp_path)
    ref = layered[1]
    with kmerdb.open(path, "a") as db:
        assert max(len(layers) for layers in db.snapshot.partitions) == 2
        n_before = db.n_kmers
        with db.transaction():
            db.compact(threads=2)
        for layers in db.snapshot.partitions:
            assert len(layers) == 1 and len(layers[0].groups) == 1
            assert layers[0].groups[0].genome_ids == tuple(g.id for g in db.genome_records)
        assert db.n_kmers < n_before
    assert_same_answers(path, ref)
    with kmerdb.open(path) as a, kmerdb.open(ref) as b:
        assert a.n_kmers == b.n_kmers
    assert kmerdb.verify(path).ok


def test_vacuum_removes_only_unreachable_files(layered, tmp_path):
    path = copy(layered[0], tmp_path)
    first = kmerdb.vacuum(path)  # generations 1 and 2 are superseded and nobody reads them
    assert first.generations_dropped == (1, 2) and first.files_removed == 0  # remove and append wrote on top
    stray = path / "data" / "p00000" / "L9999999.mphf.npy"
    stray.write_bytes(b"left by a killed writer")
    reader = kmerdb.open(path)
    expected = reader.lookup(np.concatenate(list(reader.iter_kmers())), counts=True)
    with kmerdb.open(path, "a") as db, db.transaction():
        db.compact()
    size_before = sum(os.path.getsize(path / f) for f in data_files(str(path)))
    report = kmerdb.vacuum(path)
    assert report.files_removed == 1 and report.generations_kept == (3,)  # the stray file only
    assert not stray.exists()
    assert np.array_equal(reader.lookup(np.concatenate(list(reader.iter_kmers())), counts=True), expected)
    reader.close()
    report = kmerdb.vacuum(path)
    assert report.files_removed > 0 and report.generations_dropped == (3,)
    size_after = sum(os.path.getsize(path / f) for f in data_files(str(path)))
    assert size_after < size_before
    with kmerdb.open(path) as db:
        assert set(data_files(str(path))) == {ref.path for ref in db.snapshot.all_files()}
    assert kmerdb.verify(path).ok
