"""Console: distance, tree, setop, spectrum."""

from __future__ import annotations

import json
import math
from collections import Counter

import oracle
import pytest
from conftest import GENOMES, ROOT
from conftest import run_console as run

import kmerdb
from kmerdb.console import main, make_parser

COMMANDS = ("distance", "tree", "setop", "spectrum")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "fx.kmerdb"
    inputs = [f"{label}={','.join(paths)}" for label, paths in GENOMES.items()]
    assert main(["build", str(path), *inputs, "--k", "21", "--counts", "--partitions", "4", "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def sets():
    return oracle.genome_sets(GENOMES, 21)


def jaccard(sets, a, b):
    sa, sb = set(sets[a]), set(sets[b])
    return len(sa & sb) / len(sa | sb)


def test_distance_tsv_phylip_json(db, sets, capsys):
    code, out, _ = run(capsys, "distance", db, "--threads", "2")
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["jaccard", "A", "B", "C"]
    for row in lines[1:]:
        for b, v in zip("ABC", row[1:]):
            assert float(v) == pytest.approx(jaccard(sets, row[0], b), rel=1e-15)
    code, out, _ = run(capsys, "distance", db, "--metric", "jaccard-distance", "--format", "phylip")
    lines = out.splitlines()
    assert lines[0] == "3" and len(lines) == 4
    first = lines[1].split()
    assert first[0] == "A" and float(first[1]) == 0 and float(first[2]) == pytest.approx(1 - jaccard(sets, "A", "B"))
    code, out, _ = run(capsys, "distance", db, "--metric", "mash", "--format", "json")
    doc = json.loads(out)
    assert doc["metric"] == "mash" and doc["labels"] == ["A", "B", "C"]
    j = jaccard(sets, "B", "C")
    assert doc["matrix"][1][2] == pytest.approx(-math.log(2 * j / (1 + j)) / 21, rel=1e-12)
    with kmerdb.open(db) as handle:
        for metric in ("containment", "bray-curtis"):
            code, out, _ = run(capsys, "distance", db, "--metric", metric, "--format", "json")
            assert json.loads(out)["matrix"] == handle.distance(metric).matrix.tolist()


def test_distance_sparse(db, sets, capsys):
    code, out, _ = run(capsys, "distance", db, "--nearest", "1")
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["a", "b", "jaccard"]
    best = {}
    for a in "ABC":
        best[a] = max((b for b in "ABC" if b != a), key=lambda b: jaccard(sets, a, b))
    assert {(a, b) for a, b, _ in lines[1:]} == {(a, best[a]) for a in "ABC"}
    code, out, _ = run(capsys, "distance", db, "--metric", "jaccard-distance", "--max-distance", "0.5", "--format", "json")
    pairs = [json.loads(line) for line in out.splitlines()]
    expect = {(a, b) for a, b in (("A", "B"), ("A", "C"), ("B", "C")) if 1 - jaccard(sets, a, b) <= 0.5}
    assert {(p["a"], p["b"]) for p in pairs} == expect
    assert all(p["jaccard-distance"] == pytest.approx(1 - jaccard(sets, p["a"], p["b"])) for p in pairs)


def test_tree_newick(db, capsys):
    for method in ("nj", "upgma"):
        code, out, _ = run(capsys, "tree", db, "--method", method, "--metric", "jaccard")
        assert code == 0
        text = out.strip()
        assert text.endswith(";") and text.count("(") == text.count(")")
        for label in "ABC":
            assert text.count(label) == 1


def test_setop_writes_a_database(db, sets, tmp_path, capsys):
    out_db = tmp_path / "core.kmerdb"
    code, out, err = run(capsys, "setop", "at-least", out_db, db, "--q", "2", "--genomes", "A", "B", "C", "--json")
    assert code == 0
    doc = json.loads(out)
    held = Counter(x for s in sets.values() for x in s)
    assert doc["kmers"] == sum(1 for n in held.values() if n >= 2) and doc["label"] == "at-least-2"
    code, out, _ = run(capsys, "info", out_db, "--json")
    assert json.loads(out)["genomes"][0]["label"] == "at-least-2"
    code, out, err = run(capsys, "setop", "difference", tmp_path / "a.kmerdb", db, "--genomes", "A", "B", "--label", "A-only", "--quiet")
    assert code == 0 and out == "" and err == ""
    with kmerdb.open(tmp_path / "a.kmerdb") as res:
        assert res.genomes == ("A-only",) and res.n_kmers == len(set(sets["A"]) - set(sets["B"]))


def test_spectrum(db, sets, capsys):
    code, out, _ = run(capsys, "spectrum", db)
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["count", "A", "B", "C"]
    table = {int(row[0]): [int(v) for v in row[1:]] for row in lines[1:]}
    for i, label in enumerate("ABC"):
        hist = Counter(sets[label].values())
        assert {c: v[i] for c, v in table.items() if v[i]} == dict(hist)
    code, out, _ = run(capsys, "spectrum", db, "--genome", "C", "--json")
    doc = json.loads(out)
    assert doc["labels"] == ["C"] and doc["spectra"]["C"] == [list(p) for p in sorted(Counter(sets["C"].values()).items())]
    code, out, _ = run(capsys, "spectrum", db, "--genome", "C", "--plot", "--max-count", "3")
    assert code == 0 and "k-mer spectrum of C" in out and ">3" in out and "█" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["distance", "{db}", "--metric", "bray-curtis"], "counts"),
        (["spectrum", "{db}", "--genome", "Z"], "no genome labelled 'Z'"),
        (["setop", "union", "{tmp}/u", "{db}", "--genomes", "A", "Z"], "no genome labelled 'Z'"),
        (["setop", "union", "{db}", "{db}"], "already exists"),
        (["distance", "{tmp}/nothing"], "nothing"),
    ],
)
def test_errors_are_one_line_and_exit_1(tmp_path, capsys, argv, needle):
    presence = tmp_path / "p.kmerdb"
    kmerdb.build(presence, {"A": GENOMES["A"]}, k=21, partitions=2, threads=1)
    argv = [a.format(db=presence, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("kmerdb: error:")


@pytest.mark.parametrize(
    "argv",
    [
        ["distance", "DB", "--metric", "euclid"],
        ["distance", "DB", "--format", "phylip", "--nearest", "2"],
        ["setop", "xor", "OUT", "DB"],
        ["setop", "at-least", "OUT", "DB"],
        ["setop", "union", "OUT", "DB", "--q", "2"],
        ["tree", "DB", "--metric", "containment"],
        ["tree", "DB", "--method", "ml"],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--help" in err


def test_commands_have_help_and_are_documented():
    doc = (ROOT / "docs" / "compare.md").read_text()
    sub = next(a for a in make_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name in COMMANDS:
        assert helps.get(name), f"{name} has no help"
        assert sub.choices[name].description
        assert f"kmerdb {name}" in doc, f"{name} is not documented in docs/compare.md"
        for action in sub.choices[name]._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in doc, f"{name} {opt} is not documented"


def test_tree_json(db, capsys):
    code, out, _ = run(capsys, "tree", db, "--metric", "jaccard", "--method", "upgma", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["metric"] == "jaccard" and doc["method"] == "upgma"
    assert doc["newick"].endswith(";") and all(label in doc["newick"] for label in doc["labels"])
    assert sorted(doc["labels"]) == sorted(GENOMES)
