"""A database the user cannot write (another user's, ``chmod -R a-w``, a read-only mount)
opens and answers queries.

The tests run as root, who can write anything, so the reader is a child process that
drops to the ``nobody`` user after its imports (the interpreter's own files may not be
readable by ``nobody``) and then opens the database as any other user would.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

import kmerdb

NOBODY = 65534
GENOMES = {
    "A": os.path.join(os.path.dirname(__file__), "..", "fixtures", "genome_a.fa"),
    "B": os.path.join(os.path.dirname(__file__), "..", "fixtures", "genome_b.fa.gz"),
}

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to run a reader as another user"
)

# The reader: imports first, then setgid/setuid to nobody, then the public API only.
CHILD = r"""
import json, logging, mmap, sys
import numpy
import kmerdb
from kmerdb.core.kmers import encode, sequence_anchors
# the compiled kernels import numba and parts of the stdlib at their first call: here, before
# this process becomes a user who may not read this interpreter's stdlib
sequence_anchors(encode(b"ACGT" * 10), 21, 11)
from kmerdb.errors import KmerDBError, ReadOnlyError
from kmerdb.store.lock import ReaderRegistration
import os
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("kmerdb").addHandler(Keep())
logging.getLogger("kmerdb").setLevel(logging.INFO)
os.setgroups([])
os.setgid(%(uid)d)
os.setuid(%(uid)d)
path, seqs, kmers = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
out = {"writable": os.access(path, os.W_OK)}
with kmerdb.open(path) as db:
    out["registered"] = db._registration is not None and db._registration.registered
    out["genomes"] = list(db.genomes)
    out["hits"] = db.query(seqs).hits.tolist()
    out["lookup"] = db.lookup(kmers).tolist()
    out["n_kmers"] = db.n_kmers
    out["refreshed"] = db.refresh()
    out["history"] = len(db.history())
try:
    kmerdb.open(path, mode="a")
    out["append"] = "opened"
except ReadOnlyError as exc:
    out["append"] = "ReadOnlyError"
except KmerDBError as exc:
    out["append"] = type(exc).__name__
out["log"] = records
print(json.dumps(out))
"""


@pytest.fixture
def readonly_db():
    """A database under a folder ``nobody`` can traverse, made read-only for everyone."""
    top = tempfile.mkdtemp(prefix="kmerdb-ro-")  # pytest's tmp_path is root-only (0700)
    os.chmod(top, 0o755)
    path = os.path.join(top, "db")
    kmerdb.build(path, GENOMES, k=21, partitions=4, threads=1)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            os.chmod(p, os.stat(p).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(path, 0o555)
    yield path
    for root, dirs, _ in os.walk(top):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(path, 0o755)
    shutil.rmtree(top)


def _listing(path):
    return sorted(os.path.relpath(os.path.join(r, f), path) for r, _, fs in os.walk(path) for f in fs)


def test_another_users_readonly_database_opens_and_answers(readonly_db):
    # before: "cannot open the catalog: Permission denied" (LMDB's lock file not writable)
    import oracle

    seqs = [oracle.read_sequences(GENOMES["A"])[0][1][:500], "ACGT" * 40]
    with kmerdb.open(readonly_db) as db:
        kmers = [s for s in (seqs[0][:21], seqs[0][100:121], "A" * 21)]
        expected_hits = db.query(seqs).hits.tolist()
        expected_lookup = db.lookup(kmers).tolist()
        genomes = list(db.genomes)
    before = _listing(readonly_db)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD % {"uid": NOBODY}, readonly_db, json.dumps(seqs), json.dumps(kmers)],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("this sandbox does not let root become another user")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["writable"] is False  # the child really is another user
    assert got["genomes"] == genomes
    assert got["hits"] == expected_hits and got["hits"][0][0] > 0
    assert got["lookup"] == expected_lookup
    assert got["refreshed"] is False and got["history"] >= 1
    assert got["registered"] is False
    assert any("registration" in line for line in got["log"]), got["log"]  # said once, on the logger
    assert got["append"] == "ReadOnlyError"  # writing is refused, clearly
    assert _listing(readonly_db) == before  # nothing was written into it


def test_console_reads_a_readonly_database(readonly_db):
    code = (
        "import importlib, os, pkgutil, sys, json, logging, mmap, numpy, kmerdb, kmerdb.console\n"
        # every console module now: the interpreter's library may be unreadable once nobody
        "for m in pkgutil.iter_modules(kmerdb.console.__path__, 'kmerdb.console.'):\n"
        "    importlib.import_module(m.name)\n"
        f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        "sys.exit(kmerdb.console.main(['info', '--json', sys.argv[1]]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, readonly_db], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("this sandbox does not let root become another user")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_genomes"] == 2
