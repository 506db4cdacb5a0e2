"""Crash safety of ``kmerdb reindex``: a writer killed at any point leaves the previous
generation (or the new one, once the commit is through), and the next writer succeeds and
leaves none of the dead one's files.  See tests/ops/test_crash.py for the method."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import GENOMES, ROOT

import kmerdb
from kmerdb.console import main
from kmerdb.ops.maintenance import data_files
from kmerdb.store.catalog import Catalog

K = 21


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    path = tmp_path_factory.mktemp("reindex-crash") / "x.kmerdb"
    kmerdb.build(path, GENOMES, k=K, partitions=4, counts=True, threads=1)
    with kmerdb.open(path) as db:
        keys = np.concatenate(list(db.iter_kmers()))
        rows = db.lookup(keys, counts=True)
    return path, keys, rows


# (point, committed?)
POINTS = [
    ("txn.locked", False),
    ("reindex.layer", False),  # worker: a layer's new evidence written
    ("save.tmp:2", False),  # worker
    ("save.done", False),  # worker
    ("txn.commit", False),
    ("txn.fsynced", False),
    ("txn.lmdb", False),
    ("txn.committed", True),
    ("txn.cleaned", True),
]


def named_files(path) -> set[str]:
    """Every file the current generation or a recorded older one names."""
    catalog = Catalog.open(str(path))
    try:
        named = catalog.read().file_paths()
        for files in catalog.generations().values():
            named.update(files)
    finally:
        catalog.close()
    return named


@pytest.mark.parametrize("point,committed", POINTS)
def test_kill_reindex(exact, tmp_path, point, committed):
    base, keys, rows = exact
    path = tmp_path / "db.kmerdb"
    shutil.copytree(base, path)
    args = ["reindex", str(path), "--evidence", "approx", "--fp-bits", "9", "--threads", "2", "--quiet"]
    env = dict(os.environ, KMERDB_CRASH_AT=point, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "kmerdb", *args], env=env, start_new_session=True, capture_output=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, f"{point} was not reached: {proc.stderr.decode()[-2000:]}"
    with kmerdb.open(path) as db:
        assert (db.generation, db.config.evidence) == ((2, "approx") if committed else (1, "exact"))
        assert np.array_equal(db.lookup(keys, counts=True), rows)
    assert kmerdb.verify(path, threads=1).ok
    if committed:
        assert main(["vacuum", str(path)]) == 0  # the next writer clears what the dead one left
        assert set(data_files(str(path))) <= named_files(path)
        return
    assert main(args) == 0  # the next writer clears what the dead one left and succeeds
    with kmerdb.open(path) as db:
        assert (db.generation, db.config.evidence, db.config.fp_bits) == (2, "approx", 9)
        assert np.array_equal(db.lookup(keys, counts=True), rows)
    assert set(data_files(str(path))) <= named_files(path)
