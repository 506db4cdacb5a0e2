"""The LMDB catalog: records round trip, one transaction per write, format checks."""

import pytest

from kmerdb.config import Config
from kmerdb.errors import CorruptDatabaseError, DatabaseNotFoundError, KmerDBError
from kmerdb.store.catalog import Catalog, ColumnGroup, GenomeRecord, LayerRecord
from kmerdb.store.storage import FileRef


def test_records_round_trip(tmp_path):
    cfg = Config.create(k=21, partitions=2, counts=True)
    cat = Catalog.create(str(tmp_path), cfg)
    g = GenomeRecord(0, "A", ("a.fa",), 10, 12, ((1, 8), (2, 2)))
    ref = FileRef("data/p00000/L0000000.mphf.npy", 100, "ab")
    layer = LayerRecord(0, 10, {"mphf": ref, "evidence": ref}, (ColumnGroup((0,), "counts", ref),), 1)
    with cat.write() as w:
        w.put_genomes([g])
        w.put_partition(0, [layer])
        w.put_state("ready", 1, 1, 2)
        w.add_history("build", {"k": 21}, 1)
        w.add_history("build", {"k": 21}, 2)
    snap = cat.read()
    assert snap.config == cfg and snap.state == "ready" and snap.generation == 1
    assert snap.genomes == (g,) and snap.partitions == ((layer,), ())
    assert [h.seq for h in cat.history()] == [1, 2]
    cat.close()


def test_aborted_write_changes_nothing(tmp_path):
    cat = Catalog.create(str(tmp_path), Config.create(k=15, partitions=1))
    with pytest.raises(RuntimeError), cat.write() as w:
        w.put_state("ready", 5, 0, 0)
        raise RuntimeError("boom")
    assert cat.read().state == "building"
    cat.close()


def test_open_missing(tmp_path):
    with pytest.raises(DatabaseNotFoundError):
        Catalog.open(str(tmp_path / "nothing"))


def test_missing_record_is_corruption_naming_it(tmp_path):
    cat = Catalog.create(str(tmp_path), Config.create(k=15, partitions=1))
    with cat.write() as w:
        w.txn.delete(b"state")
    for read in (cat.read, cat.generation):
        with pytest.raises(CorruptDatabaseError, match="'state'"):
            read()
    with pytest.raises(CorruptDatabaseError, match="'state'"), cat.write() as w:
        w.current_generation()
    cat.close()


def test_closed_catalog_refuses_reads(tmp_path):
    cat = Catalog.create(str(tmp_path), Config.create(k=15, partitions=1))
    cat.close()
    cat.close()  # closing twice is harmless
    with pytest.raises(KmerDBError, match="closed"):
        cat.read()
