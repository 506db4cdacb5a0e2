"""Faults: dead workers, a dead writer whose workers live on, a full disk (injected, and a real
small tmpfs filled up), truncated files.

Worker and writer kills run the console in a subprocess.  A worker dies at a named crash
point inside a task (:mod:`kmerdb.store.crashpoint`); the console is started under a
small wrapper that leads the process group, so a crash point reached by a worker kills
only that worker (one reached by the main process would kill the group, and the test
would see it).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GENOMES, ROOT
from dbcheck import dump, named_files

import kmerdb
from kmerdb.ops.maintenance import data_files

K = 21
PARTS = 4
_WRAP = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    ab = root / "ab.kmerdb"
    kmerdb.build(ab, {"A": GENOMES["A"], "B": GENOMES["B"]}, k=K, partitions=PARTS, counts=True, threads=2)
    removed = root / "removed.kmerdb"
    shutil.copytree(ab, removed)
    with kmerdb.open(removed, "a") as db, db.transaction():
        db.remove_genome("B")
    return {"ab": ab, "removed": removed}


def _console(args: list, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _WRAP, sys.executable, "-m", "kmerdb", *map(str, args)],
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
        start_new_session=True,
        capture_output=True,
        timeout=timeout,
    )


def _state(path) -> tuple[int, list[str]]:
    with kmerdb.open(path) as db:
        return db.generation, list(db.genomes)


# operation -> (base, arguments, crash point reached inside a task)
WORKER_KILLS = {
    "build": (None, ["build", "{db}", f"A={GENOMES['A'][0]}", f"C={GENOMES['C'][0]}", "--k", K, "--partitions", PARTS], "save.tmp:2"),
    "append": ("ab", ["append", "{db}", f"C={GENOMES['C'][0]}"], "save.tmp:2"),
    "compact": ("removed", ["compact", "{db}"], "compact.rows"),
    "verify": ("ab", ["verify", "{db}"], "verify.partition"),
}


@pytest.mark.parametrize("op", list(WORKER_KILLS))
def test_a_killed_worker_fails_the_operation_and_releases_the_lock(bases, tmp_path, op):
    base, args, point = WORKER_KILLS[op]
    path = tmp_path / "db.kmerdb"
    if base:
        shutil.copytree(bases[base], path)
        before = _state(path)
    args = [str(a).format(db=path) for a in args] + ["--threads", "2", "--quiet"]
    proc = _console(args, {"KMERDB_CRASH_AT": point})
    err = proc.stderr.decode()
    assert proc.returncode == 1, (proc.returncode, err)  # the writer itself was not killed
    assert err.count("\n") == 1 and "worker process died" in err, err
    if base is None:
        assert not path.exists()  # a failed build leaves nothing
        return
    assert _state(path) == before  # nothing committed
    assert set(data_files(str(path))) <= named_files(path)  # nothing left behind
    # the lock is free: the next writer succeeds at once
    with kmerdb.open(path, "a") as db, db.transaction():
        db.append_genome("C2", GENOMES["C"])
    assert kmerdb.verify(path).ok


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
@pytest.mark.parametrize("trial", range(3))
def test_killing_only_the_writer_leaves_no_worker_and_no_orphan(bases, tmp_path, trial):
    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases["ab"], path)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent / "slowreplace"), str(ROOT)]),
        KMERDB_SLOW_MARKS=str(marks),
    )
    env.pop("KMERDB_SLOW_MAIN", None)
    writer = subprocess.Popen(
        [sys.executable, "-m", "kmerdb", "append", str(path), f"C={GENOMES['C'][0]}", "--threads", "2", "--quiet"],
        env=env,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    try:
        while not any(marks.iterdir()):  # a worker is about to rename a data file into place
            assert writer.poll() is None, writer.stderr.read().decode() if writer.stderr else ""
            time.sleep(0.01)
        writer.kill()  # the main process only
        writer.wait()
        workers = [int(p.stem) for p in marks.iterdir()]
        # the next writer starts at once, and commits
        with kmerdb.open(path, "a") as db, db.transaction():
            db.append_genome("D", GENOMES["B"])
        assert not any(_alive(pid) for pid in workers)  # the dead writer's workers died with it
    finally:
        if writer.poll() is None:
            writer.kill()
    assert _state(path) == (2, ["A", "B", "D"])
    assert set(data_files(str(path))) <= named_files(path)  # no orphan file
    assert kmerdb.verify(path).ok


def _run(args: list) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kmerdb", *map(str, args)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        timeout=120,
    )


def _one_clean_line(proc: subprocess.CompletedProcess, *words: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode == 1, (proc.returncode, err)  # not a signal (-7 SIGBUS, -11 SIGSEGV)
    assert err.count("\n") == 1 and err.startswith("kmerdb: error: "), err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("role", ["dictionary", "unitigs", "counts"])
def test_a_truncated_data_file_is_a_corrupt_database_error(bases, tmp_path, role):
    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases["ab"], path)
    victim = sorted(rel for rel in named_files(path) if rel.endswith(f".{role}.npy"))[0]
    full = path / victim
    os.truncate(full, full.stat().st_size // 2)
    for args in (["info", path], ["query", path, GENOMES["A"][0]], ["lookup", path, "ACGT" * 5 + "A"], ["dump", path]):
        _one_clean_line(_run(args), victim.rsplit("/", 1)[1], "truncated")
    with pytest.raises(kmerdb.CorruptDatabaseError, match="truncated"), kmerdb.open(path) as db:
        db.query("ACGT" * 10)


@pytest.mark.parametrize("size", [100, 5000, 8192, 12000])
def test_a_truncated_catalog_is_refused_before_it_is_mapped(bases, tmp_path, size):
    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases["ab"], path)
    mdb = path / "catalog" / "data.mdb"
    assert mdb.stat().st_size > size
    os.truncate(mdb, size)
    for args in (["info", path], ["verify", path], ["dump", path], ["append", path, f"C={GENOMES['C'][0]}"]):
        _one_clean_line(_run(args), "data.mdb")
    # a host program survives it too
    probe = "import kmerdb, sys\ntry:\n    kmerdb.open(sys.argv[1])\nexcept kmerdb.CorruptDatabaseError:\n    sys.exit(3)"
    proc = subprocess.run([sys.executable, "-c", probe, str(path)], env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 3


def test_a_killed_builds_directory_is_named_and_removed_with_force(tmp_path):
    path = tmp_path / "db.kmerdb"
    args = ["build", path, f"A={GENOMES['A'][0]}", "--k", K, "--partitions", PARTS, "--threads", "2", "--quiet"]
    proc = _console(args, {"KMERDB_CRASH_AT": "save.tmp:2"})
    assert proc.returncode == 1 and not path.exists()  # a failed build removes its directory
    # a build killed outright (the whole process group) leaves its directory behind
    proc = subprocess.run(
        [sys.executable, "-m", "kmerdb", *map(str, args)],
        env=dict(os.environ, PYTHONPATH=str(ROOT), KMERDB_CRASH_AT="save.done:2"),
        start_new_session=True,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9 and path.is_dir()
    again = _run(args)
    _one_clean_line(again, str(path), "did not finish", "remove it or use --force")
    assert path.is_dir()  # refused: left untouched
    with pytest.raises(kmerdb.DatabaseExistsError):
        kmerdb.build(path, {"A": GENOMES["A"]}, k=K, partitions=PARTS, threads=1)
    assert _run([*args, "--force"]).returncode == 0
    assert kmerdb.verify(path).ok and _state(path) == (1, ["A"])
    # --force never removes a finished database
    _one_clean_line(_run([*args, "--force"]), "already exists")


def test_force_leaves_a_build_that_is_still_running_alone(tmp_path):
    from kmerdb.config import Config
    from kmerdb.store.scaffold import new_database

    path = tmp_path / "db.kmerdb"
    building = new_database(str(path), Config.create(k=K, partitions=PARTS))  # a build in progress
    with pytest.raises(RuntimeError, match="without its commit"), building:
        forced = _run(["build", path, f"A={GENOMES['A'][0]}", "--k", K, "--partitions", PARTS, "--force", "--quiet"])
        _one_clean_line(forced, str(path), "locked by PID")
        assert (path / "catalog").is_dir()
    assert not path.exists()


def _fail_with_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _OsWithoutSpace:
    """``os`` for one module, whose ``pwrite`` finds the disk full."""

    pwrite = staticmethod(_fail_with_enospc)

    def __getattr__(self, name):
        return getattr(os, name)


@pytest.mark.parametrize("where", ["data", "spill", "catalog"])
def test_a_full_disk_is_a_disk_full_error_and_nothing_is_damaged(bases, tmp_path, monkeypatch, where):
    import numpy as np

    from kmerdb.ops import spill
    from kmerdb.store import catalog as catalog_module

    path = tmp_path / "db.kmerdb"
    shutil.copytree(bases["ab"], path)
    before = _state(path)
    if where == "data":
        monkeypatch.setattr(np.lib.format, "write_array", _fail_with_enospc)
    elif where == "spill":
        monkeypatch.setattr(spill, "os", _OsWithoutSpace())
    else:
        monkeypatch.setattr(catalog_module.CatalogWriter, "put_snapshot", _fail_with_enospc)
    with pytest.raises(kmerdb.DiskFullError) as info, kmerdb.open(path, "a") as db, db.transaction():
        db.append_genome("C", GENOMES["C"], threads=1)
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert str(path) in info.value.path and "no space left" in str(info.value)
    monkeypatch.undo()
    assert _state(path) == before
    assert set(data_files(str(path))) <= named_files(path)
    assert kmerdb.verify(path).ok
    # and a new database on a full disk: nothing is left of it
    new = tmp_path / "new.kmerdb"
    monkeypatch.setattr(catalog_module.lmdb, "open", _fail_with_enospc)
    with pytest.raises(kmerdb.DiskFullError, match="catalog"):
        kmerdb.build(new, {"A": GENOMES["A"]}, k=K, partitions=PARTS, threads=1)
    assert not new.exists()


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs mounted at a folder of its own; skipped where mounting is not permitted."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("needs Linux mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until only ``leave`` bytes are free."""
    st = os.statvfs(folder)
    with open(folder / "filler", "wb") as fh:
        fh.write(bytes(max(0, st.f_bavail * st.f_frsize - leave)))
    assert os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize <= leave


# bytes left free on a 2 MiB tmpfs: an append of C to the index of A and B (or a build of C)
# then runs out at the lock files, in the spill folder or the catalog, in the layer files;
# it needs some 200 KiB, so each stays well short of it
FREE = [0, 16 << 10, 64 << 10]


@pytest.mark.parametrize("free", FREE)
def test_an_append_on_a_really_full_file_system_keeps_the_previous_state(bases, small_fs, free):
    path = small_fs / "db.kmerdb"
    shutil.copytree(bases["ab"], path)
    before = _state(path)
    answers_before = dump(path)
    _fill(small_fs, free)
    with pytest.raises(kmerdb.DiskFullError) as info, kmerdb.open(path, "a") as db, db.transaction():
        db.append_genome("C", GENOMES["C"], threads=1)
    assert info.value.errno == errno.ENOSPC and str(path) in info.value.path
    assert _state(path) == before
    assert not (path / "spill").exists()
    assert set(data_files(str(path))) <= named_files(path)  # nothing half-written is left
    assert kmerdb.verify(path).ok
    after = dump(path)
    assert after[0] == answers_before[0] and after[3] == answers_before[3]
    assert (after[1] == answers_before[1]).all() and (after[2] == answers_before[2]).all()
    # the same append succeeds once there is room again
    (small_fs / "filler").unlink()
    with kmerdb.open(path, "a") as db, db.transaction():
        db.append_genome("C", GENOMES["C"], threads=1)
    assert _state(path) == (before[0] + 1, [*before[1], "C"])


@pytest.mark.parametrize("free", FREE)
def test_a_build_on_a_really_full_file_system_leaves_nothing(small_fs, free):
    _fill(small_fs, free)
    new = small_fs / "new.kmerdb"
    with pytest.raises(kmerdb.DiskFullError) as info:
        kmerdb.build(new, {"C": GENOMES["C"]}, k=K, partitions=PARTS, threads=1)
    assert info.value.errno == errno.ENOSPC and str(new) in info.value.path
    assert sorted(os.listdir(small_fs)) == ["filler"]
