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
        assert set(info["structures"]) >= {"mphf", "evidence", "columns"}
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
