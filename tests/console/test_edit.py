"""Console: merge, append, remove, verify, vacuum, compact."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import GENOMES, ROOT
from conftest import run_console as run
from dbcheck import assert_matches_oracle, assert_same_answers, universe

import kmerdb
from kmerdb.console import make_parser

COMMANDS = ("merge", "append", "remove", "verify", "vacuum", "compact")
K = 21


@pytest.fixture(scope="module")
def singles(tmp_path_factory):
    root = tmp_path_factory.mktemp("edit")
    made = {}
    for label, paths in GENOMES.items():
        made[label] = root / f"{label}.kmerdb"
        kmerdb.build(made[label], {label: paths}, k=K, partitions=4, counts=True, threads=1)
    made["ABC"] = root / "ABC.kmerdb"
    kmerdb.build(made["ABC"], GENOMES, k=K, partitions=4, counts=True, threads=2)
    return made


@pytest.fixture(scope="module")
def oracle_k(oracle_sets):
    sets = oracle_sets(K)
    kmers, codes = universe(sets, K, extra=20)
    return sets, kmers, codes


def test_merge_then_verify(singles, tmp_path, capsys):
    out = tmp_path / "m.kmerdb"
    code, _, err = run(capsys, "merge", out, singles["A"], singles["B"], singles["C"], "--mode", "count", "--quiet")
    assert code == 0 and err == ""
    assert_same_answers(out, singles["ABC"])
    code, stdout, _ = run(capsys, "merge", out, singles["A"], "--force", "--json")
    assert code == 0 and json.loads(stdout)["genomes"] == ["A"] and json.loads(stdout)["files_linked"] > 0
    code, stdout, _ = run(capsys, "verify", out, "--json", "--quiet")
    assert code == 0 and json.loads(stdout)["ok"] is True
    code, stdout, _ = run(capsys, "verify", out)
    assert code == 0 and "ok" in stdout


def test_append_remove_compact_vacuum(singles, oracle_k, tmp_path, capsys):
    sets, kmers, codes = oracle_k
    db = tmp_path / "db.kmerdb"
    shutil.copytree(singles["A"], db)
    code, _, err = run(capsys, "append", db, f"B={GENOMES['B'][0]}", f"C={GENOMES['C'][0]}", "--quiet")
    assert code == 0
    assert_same_answers(db, singles["ABC"])
    code, stdout, _ = run(capsys, "merge", "--into", db, singles["B"], "--rename-duplicates", "--json")
    assert code == 0 and json.loads(stdout)["genomes"] == ["A", "B", "C", "B.1"]
    code, stdout, _ = run(capsys, "remove", db, "B", "B.1", "--json")
    assert code == 0 and json.loads(stdout)["genomes"] == ["A", "C"] and json.loads(stdout)["generation"] == 4
    code, stdout, _ = run(capsys, "compact", db, "--json", "--quiet")
    summary = json.loads(stdout)
    assert code == 0 and summary["layers"] <= 4 < summary["layers_before"]
    code, stdout, _ = run(capsys, "vacuum", db, "--json")
    assert code == 0 and json.loads(stdout)["files_removed"] > 0
    code, _, err = run(capsys, "vacuum", db)
    assert code == 0 and "removed 0 file(s)" in err
    assert_matches_oracle(db, sets, ["A", "C"], kmers, codes)
    code, _, _ = run(capsys, "verify", db, "--quiet")
    assert code == 0


def test_verify_exit_1_on_damage(singles, tmp_path, capsys):
    db = tmp_path / "db.kmerdb"
    shutil.copytree(singles["A"], db)
    with kmerdb.open(db) as h:
        victim = db / h.snapshot.partitions[0][0].files["dictionary"].path
    with open(victim, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff\xff\xff\xff")
    code, stdout, _ = run(capsys, "verify", db)
    assert code == 1 and "\nproblem\n" in stdout and "checksum" in stdout
    code, stdout, _ = run(capsys, "verify", db, "--json")
    assert code == 1 and json.loads(stdout)["ok"] is False


def test_second_writer_is_refused_or_waits(singles, tmp_path, capsys):
    db = tmp_path / "db.kmerdb"
    shutil.copytree(singles["ABC"], db)
    holder = kmerdb.open(db, "a")
    with holder.transaction():
        code, _, err = run(capsys, "remove", db, "A")
        assert code == 1 and f"locked by PID {os.getpid()}" in err and len(err.strip().splitlines()) == 1
        code, _, err = run(capsys, "remove", db, "A", "--wait", "0.2")
        assert code == 1 and "locked" in err
    holder.close()
    code, _, _ = run(capsys, "remove", db, "A", "--wait")
    assert code == 0


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["merge", "{tmp}/o", "{A}", "{A}"], "duplicate genome label 'A'"),
        (["merge", "{tmp}/o", "{A}", "{P}", "--mode", "count"], "presence only"),
        (["merge", "{tmp}/o", "{A}", "{K19}"], "k=19"),
        (["merge", "{A}", "{B}"], "already exists"),
        (["merge", "{tmp}/o", "{tmp}/nothing"], "nothing"),
        (["merge", "{tmp}/o"], "at least one SRC"),
        (["merge", "--into", "{tmp}/db", "{B}", "--mode", "presence"], "keeps counts"),
        (["append", "{tmp}/db", "A={A_fa}"], "duplicate genome label 'A'"),
        (["append", "{tmp}/db", "X={tmp}/missing.fa"], "no such file"),
        (["remove", "{tmp}/db", "Z"], "no genome labelled 'Z'"),
        (["compact", "{tmp}/nothing"], "nothing"),
        (["vacuum", "{tmp}/nothing"], "nothing"),
    ],
)
def test_errors_are_one_line_and_exit_1(singles, tmp_path, capsys, argv, needle):
    presence = tmp_path / "p.kmerdb"
    kmerdb.build(presence, {"P": GENOMES["B"]}, k=K, partitions=4, threads=1)
    k19 = tmp_path / "k19.kmerdb"
    kmerdb.build(k19, {"Q": GENOMES["B"]}, k=19, partitions=4, threads=1)
    shutil.copytree(singles["A"], tmp_path / "db")
    names = dict(A=singles["A"], B=singles["B"], P=presence, K19=k19, tmp=tmp_path, A_fa=GENOMES["A"][0])
    code, out, err = run(capsys, *[a.format(**names) for a in argv])
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("kmerdb: error:")
    assert not (tmp_path / "o").exists()


def test_commands_have_help_and_are_documented():
    doc = (ROOT / "docs" / "commands-edit.md").read_text()
    sub = next(a for a in make_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name in COMMANDS:
        assert helps.get(name), f"{name} has no help"
        assert sub.choices[name].description
        assert f"kmerdb {name}" in doc, f"{name} is not documented in docs/commands-edit.md"
        for action in sub.choices[name]._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in doc, f"{name} {opt} is not documented"
