"""Damaged data files: open, lookups and dump answer exactly as before, or fail cleanly.

For a small database (two partitions; genome C appended to A and B, so that layers hold
column groups of equal size) every data file of every role is damaged in several ways, one
at a time in a fresh copy: a byte flipped in the .npy header, in the middle, at the end;
the file truncated; the contents of two files of the same size swapped.  Each case must
either give the undamaged database's answers (lookups of every oracle k-mer and absent
ones, counts, the dump) or raise :class:`~kmerdb.errors.CorruptDatabaseError`: never
another exception.  Damage behind a valid header is found by the checksum a layer's files
are checked against when they are mapped (docs/transactions.md, "What open guarantees, what
only verify does"), so no case answers wrong, and ``verify`` reports every one of them.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from conftest import GENOMES
from dbcheck import answers, dump, universe

import kmerdb
from kmerdb.errors import CorruptDatabaseError
from kmerdb.ops.maintenance import verify
from kmerdb.store.catalog import Catalog

K = 15

def _files(path: Path) -> list[tuple[str, str]]:
    """(role, relative path) of every data file of the current snapshot."""
    catalog = Catalog.open(str(path))
    try:
        snap = catalog.read()
    finally:
        catalog.close()
    out = []
    for layers in snap.partitions:
        for rec in layers:
            out += [(role, ref.path) for role, ref in rec.files.items()]
            out += [(g.kind, g.file.path) for g in rec.groups]
    return out


def _header_len(full: str) -> int:
    with open(full, "rb") as fh:
        head = fh.read(10)
    return 10 + int.from_bytes(head[8:10], "little")


def _flip(full: str, offset: int) -> None:
    with open(full, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x5A]))


def _damage(root: Path, relpath: str, kind: str) -> None:
    full = str(root / relpath)
    os.chmod(full, 0o644)  # data files are written read-only
    size = os.path.getsize(full)
    header = _header_len(full)
    if kind == "header-flip":
        _flip(full, header // 2)  # inside the dict of dtype, order and shape
    elif kind == "middle-flip":
        _flip(full, header + (size - header) // 2 if size > header else header - 2)
    elif kind == "end-flip":
        _flip(full, size - 1)
    elif kind == "truncate-half":
        os.truncate(full, size // 2)
    elif kind == "truncate-last":
        os.truncate(full, size - 1)
    else:
        raise AssertionError(kind)


def _swap(root: Path, a: str, b: str) -> None:
    fa, fb = root / a, root / b
    os.chmod(fa, 0o644)
    os.chmod(fb, 0o644)
    da, db_ = fa.read_bytes(), fb.read_bytes()
    fa.write_bytes(db_)
    fb.write_bytes(da)


def _everything(path: Path, codes: np.ndarray) -> tuple:
    labels, presence, counts = answers(path, codes)
    return labels, presence, counts, dump(path)


def _same(a: tuple, b: tuple) -> bool:
    def eq(x, y) -> bool:
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            return isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and np.array_equal(x, y)
        if isinstance(x, tuple) and isinstance(y, tuple):
            return len(x) == len(y) and all(eq(i, j) for i, j in zip(x, y, strict=True))
        return x == y

    return eq(a, b)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, oracle_sets):
    path = tmp_path_factory.mktemp("corruption") / "db.kmerdb"
    kmerdb.build(path, {"A": GENOMES["A"], "B": GENOMES["B"]}, k=K, partitions=2, threads=1)
    with kmerdb.open(path, mode="a") as db, db.transaction():
        db.append_genome("C", GENOMES["C"], threads=1)
    _, codes = universe(oracle_sets(K), K)
    return path, codes, _everything(path, codes)


def _cases(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """(role, kind, files) of every case."""
    files = _files(path)
    cases = [
        (role, kind, (rel,))
        for role, rel in files
        for kind in ("header-flip", "middle-flip", "end-flip", "truncate-half", "truncate-last")
    ]
    by_size: dict[int, list[tuple[str, str]]] = {}
    for role, rel in files:
        by_size.setdefault(os.path.getsize(path / rel), []).append((role, rel))
    for same in by_size.values():
        for (ra, a), (rb, b) in pairwise(same):
            cases.append((ra if ra == rb else f"{ra}+{rb}", "swap", (a, b)))
    return cases


def test_damaged_files_answer_right_or_fail_cleanly(pristine, tmp_path):
    path, codes, want = pristine
    outcomes: Counter = Counter()
    wrong: list[str] = []
    crashed: list[str] = []
    unseen: list[str] = []
    cases = _cases(path)
    assert any(kind == "swap" for _, kind, _ in cases), "no two files of the same size to swap"
    for i, (role, kind, files) in enumerate(cases):
        copy = tmp_path / f"case{i}"
        shutil.copytree(path, copy, ignore=shutil.ignore_patterns("locks"))
        if kind == "swap":
            _swap(copy, *files)
        else:
            _damage(copy, files[0], kind)
        name = f"{role} {kind} {' '.join(files)}"
        try:
            got = _everything(copy, codes)
        except CorruptDatabaseError:
            outcomes["fails cleanly"] += 1
        except Exception as exc:  # any other exception is what the test refuses
            crashed.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        else:
            if _same(got, want):
                outcomes["answers right"] += 1
            else:
                outcomes["answers wrong"] += 1
                wrong.append(name)
        if verify(copy, threads=1).ok:
            unseen.append(name)
        shutil.rmtree(copy)
    print(f"\n{len(cases)} corruption cases: {dict(outcomes)}")
    assert not wrong, f"answers wrong: {wrong}"
    assert not crashed, crashed
    assert not unseen, f"verify missed: {unseen}"
    assert outcomes["fails cleanly"] > 0


def test_damaged_header_or_size_fails_cleanly_at_open(pristine, tmp_path):
    """Every header flip and truncation is seen by open itself (sizes and headers)."""
    path = pristine[0]
    for i, (_, rel) in enumerate(_files(path)):
        for kind in ("truncate-half", "truncate-last"):
            copy = tmp_path / f"{kind}{i}"
            shutil.copytree(path, copy, ignore=shutil.ignore_patterns("locks"))
            _damage(copy, rel, kind)
            with pytest.raises(CorruptDatabaseError, match=os.path.basename(rel)):
                kmerdb.open(copy).close()
            shutil.rmtree(copy)
