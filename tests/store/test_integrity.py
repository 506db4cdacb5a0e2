"""The catalog's checksums and the cheap checks of open.

A record edited outside kmerdb (the partition count, the genome ids of a column group, a
label) is refused at open with :class:`~kmerdb.errors.CorruptDatabaseError` naming the
record, and is a problem in ``verify``; a catalog written before checksums existed still
opens and answers, and its first write checksums every record.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lmdb
import msgpack
import numpy as np
import pytest
from dbcheck import assert_same_answers

import kmerdb
from kmerdb.errors import CorruptDatabaseError
from kmerdb.ops.maintenance import verify
from kmerdb.store.catalog import CHECKSUMS_KEY, _digest


def _unpack(raw: bytes):
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _edit(path: Path, key: bytes, change) -> None:
    """Replace record ``key`` by ``change(record)`` behind kmerdb's back (checksums untouched)."""
    env = lmdb.open(str(path / "catalog"), subdir=True, map_size=1 << 32)
    try:
        with env.begin(write=True) as txn:
            rec = _unpack(txn.get(key))
            new = change(rec)
            txn.put(key, _pack(rec if new is None else new))
    finally:
        env.close()


def _records(path: Path) -> dict[bytes, bytes]:
    env = lmdb.open(str(path / "catalog"), subdir=True, readonly=True, lock=False)
    try:
        with env.begin() as txn, txn.cursor() as cur:
            return {bytes(k): bytes(v) for k, v in cur}
    finally:
        env.close()


def _drop_checksums(path: Path) -> None:
    """Make the catalog look like one written before checksums existed."""
    env = lmdb.open(str(path / "catalog"), subdir=True, map_size=1 << 32)
    try:
        with env.begin(write=True) as txn:
            assert txn.delete(CHECKSUMS_KEY)
    finally:
        env.close()


@pytest.fixture
def db(built, tmp_path) -> Path:
    """A copy of a built 4-partition database of three genomes."""
    path = tmp_path / "db.kmerdb"
    shutil.copytree(built(k=15, partitions=4), path, ignore=shutil.ignore_patterns("locks"))
    return path


def _fails_at_open_and_in_verify(path: Path, record: str) -> None:
    with pytest.raises(CorruptDatabaseError, match=f"'{record}' does not match its checksum"):
        kmerdb.open(path)
    report = verify(path, threads=1)
    assert not report.ok
    assert any(record in p and "checksum" in p for p in report.problems), report.problems


def test_every_record_has_a_checksum_written_with_it(db):
    records = _records(db)
    sums = _unpack(records.pop(CHECKSUMS_KEY))
    assert set(sums) == set(records)  # every record, history included
    assert all(sums[k] == _digest(v) for k, v in records.items())


def test_fewer_partitions_in_the_config_is_refused(db):
    _edit(db, b"config", lambda c: c.update(n_partitions=2))
    _fails_at_open_and_in_verify(db, "config")


def test_genome_ids_swapped_in_a_group_is_refused(db):
    def swap(rec):
        group = rec["layers"][0]["groups"][0]
        assert len(group["genome_ids"]) >= 2
        group["genome_ids"][0], group["genome_ids"][1] = group["genome_ids"][1], group["genome_ids"][0]

    _edit(db, b"partition/00001", swap)
    _fails_at_open_and_in_verify(db, "partition/00001")


def test_renamed_label_is_refused(db):
    def rename(genomes):
        genomes[0]["label"] = "renamed"

    _edit(db, b"genomes", rename)
    _fails_at_open_and_in_verify(db, "genomes")


def test_edited_history_is_a_problem_in_verify(db):
    key = next(k for k in _records(db) if k.startswith(b"history/"))
    _edit(db, key, lambda h: h.update(command="forged"))
    kmerdb.open(db).close()  # open reads no history
    report = verify(db, threads=1)
    assert any(key.decode() in p and "checksum" in p for p in report.problems), report.problems


def test_deleted_or_added_record_is_refused(db, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(db, other)
    env = lmdb.open(str(db / "catalog"), subdir=True, map_size=1 << 32)
    with env.begin(write=True) as txn:
        txn.delete(b"partition/00002")
    env.close()
    with pytest.raises(CorruptDatabaseError, match="'partition/00002' is missing"):
        kmerdb.open(db)
    env = lmdb.open(str(other / "catalog"), subdir=True, map_size=1 << 32)
    with env.begin(write=True) as txn:
        txn.put(b"history/9999999999", _pack({"seq": 1, "command": "x", "version": "0", "time": 0, "generation": 0}))
    env.close()
    assert any("has no checksum" in p for p in verify(other, threads=1).problems)


def test_damaged_checksums_record_is_refused(db):
    env = lmdb.open(str(db / "catalog"), subdir=True, map_size=1 << 32)
    with env.begin(write=True) as txn:
        txn.put(CHECKSUMS_KEY, b"\x93\x01\x02")
    env.close()
    with pytest.raises(CorruptDatabaseError, match="'checksums' unreadable"):
        kmerdb.open(db)


def test_catalog_without_checksums_opens_and_is_sealed_by_its_first_write(db, built):
    _drop_checksums(db)
    assert_same_answers(db, built(k=15, partitions=4))
    assert verify(db, threads=1).ok
    with kmerdb.open(db, mode="a") as handle, handle.transaction():
        handle.remove_genome("B")
    records = _records(db)
    sums = _unpack(records.pop(CHECKSUMS_KEY))
    assert set(sums) == set(records)
    assert all(sums[k] == _digest(v) for k, v in records.items())
    _edit(db, b"genomes", lambda g: g[0].update(label="renamed"))
    with pytest.raises(CorruptDatabaseError, match="'genomes'"):
        kmerdb.open(db)


def test_fewer_partitions_without_checksums_is_still_refused(db):
    """An old catalog has no checksums, but a partition record past the config's count is seen."""
    _drop_checksums(db)
    _edit(db, b"config", lambda c: c.update(n_partitions=2))
    with pytest.raises(CorruptDatabaseError, match="partition/00002"):
        kmerdb.open(db)
    assert not verify(db, threads=1).ok


def test_data_file_of_another_size_than_recorded_is_refused_at_open(db):
    """A file replaced by another one whose header agrees with itself: its size differs from the catalog's."""
    data = db / "data" / "p00000"
    groups = sorted(p for p in os.listdir(data) if "-0." in p)
    target = data / groups[0]
    os.chmod(target, 0o644)
    rows = np.load(target)
    np.save(target, np.concatenate([rows, rows[:1]]))  # a valid .npy, one row longer
    with pytest.raises(CorruptDatabaseError, match="catalog records"):
        kmerdb.open(db)


def test_config_of_another_k_than_the_layers_is_refused(db):
    """An old catalog (no checksums) whose k was edited: the unitigs' headers disagree."""
    _drop_checksums(db)
    _edit(db, b"config", lambda c: c.update(k=17))
    with pytest.raises(CorruptDatabaseError, match="k=15, the configuration says k=17"):
        kmerdb.open(db)
    assert any("k=17" in p for p in verify(db, threads=1).problems)


def test_config_of_another_evidence_than_the_layers_is_refused(db):
    _drop_checksums(db)
    _edit(db, b"config", lambda c: c.update(evidence="approx", fp_bits=8))
    with pytest.raises(CorruptDatabaseError, match="exact evidence"):
        kmerdb.open(db)
    assert any("exact evidence" in p for p in verify(db, threads=1).problems)
