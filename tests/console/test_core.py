"""Console: build, info, query, dump; errors are one line and a non-zero exit."""

import json
import subprocess
import sys

import oracle
import pytest
from conftest import FIXTURES, GENOMES
from conftest import run_console as run

from kmerdb.console import main


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("console") / "fx.kmerdb"
    inputs = [f"{label}={','.join(paths)}" for label, paths in GENOMES.items()]
    code = main(["build", str(path), *inputs, "--k", "21", "--counts", "--partitions", "4", "--quiet"])
    assert code == 0
    return path


def test_dump_equals_oracle(db, capsys):
    code, out, _ = run(capsys, "dump", db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "kmer\tA\tB\tC"
    sets = oracle.genome_sets(GENOMES, 21)
    universe = set().union(*[set(s) for s in sets.values()])
    rows = {}
    for line in lines[1:]:
        kmer, *vals = line.split("\t")
        rows[kmer] = [int(v) for v in vals]
    assert set(rows) == universe and len(rows) == len(lines) - 1
    for kmer, vals in rows.items():
        assert vals == [sets[g].get(kmer, 0) for g in "ABC"]


def test_query_tsv_and_json(db, capsys):
    code, out, _ = run(capsys, "query", db, FIXTURES / "reads.fa")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "sequence\tn_kmers\tA\tB\tC\tbest_ratio"
    sets = oracle.genome_sets(GENOMES, 21)
    recs = oracle.read_sequences(FIXTURES / "reads.fa")
    assert len(lines) == len(recs) + 1
    for line, (name, seq) in zip(lines[1:], recs):
        hits, n = oracle.query_hits(seq, sets, 21)
        *fields, best = line.split("\t")
        assert fields == [name, str(n)] + [str(hits[g]) for g in "ABC"]
        assert float(best) == (max(hits.values()) / n if n else 0.0)
    code, out, _ = run(capsys, "query", db, FIXTURES / "reads.fa", "--format", "json")
    doc = json.loads(out)
    assert doc["labels"] == ["A", "B", "C"] and len(doc["results"]) == len(recs)


def test_query_kmers(db, capsys):
    sets = oracle.genome_sets(GENOMES, 21)
    some = sorted(sets["A"])[:3]
    code, out, _ = run(capsys, "query", db, "--kmers", *some)
    assert code == 0
    lines = out.splitlines()[1:]
    assert [line.split("\t")[0] for line in lines] == some
    assert [int(v) for v in lines[0].split("\t")[1:]] == [sets[g].get(some[0], 0) for g in "ABC"]


def test_info_text_and_json(db, capsys):
    code, out, _ = run(capsys, "info", db)
    assert code == 0 and "distinct k-mers" in out and "genomes" in out
    code, out, _ = run(capsys, "info", db, "--json")
    info = json.loads(out)
    assert info["n_genomes"] == 3 and [g["label"] for g in info["genomes"]] == ["A", "B", "C"]


def test_build_labels_from_file_names_and_manifest(tmp_path, capsys):
    code, _, _ = run(capsys, "build", tmp_path / "a", FIXTURES / "genome_a.fa", FIXTURES / "genome_b.fa.gz",
                     "--k", "15", "--partitions", "2", "--quiet")
    assert code == 0
    code, out, _ = run(capsys, "info", tmp_path / "a", "--json")
    assert [g["label"] for g in json.loads(out)["genomes"]] == ["genome_a", "genome_b"]
    code, _, _ = run(capsys, "build", tmp_path / "m", "--manifest", FIXTURES / "manifest.tsv", "--k", "15", "--quiet")
    assert code == 0
    code, _, _ = run(capsys, "build", tmp_path / "r", FIXTURES / "collection.fa", "--per-record", "--k", "15", "--quiet")
    code, out, _ = run(capsys, "info", tmp_path / "r", "--json")
    assert [g["label"] for g in json.loads(out)["genomes"]] == [n for n, _ in oracle.read_sequences(FIXTURES / "collection.fa")]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["build", "{tmp}/x", "{fx}/bad/empty.fa"], "empty.fa: empty file"),
        (["build", "{tmp}/x", "{fx}/bad/binary.fa"], "binary.fa: binary file"),
        (["build", "{tmp}/x", "{fx}/bad/truncated.fq"], "truncated.fq, line 12"),
        (["build", "{tmp}/x", "{fx}/nope.fa"], "nope.fa: no such file"),
        (["build", "{tmp}/x", "{fx}/genome_a.fa", "--k", "40"], "k=40"),
        (["build", "{tmp}/x", "{fx}/genome_a.fa", "--max-memory", "1M"], "max_memory"),
        (["info", "{tmp}/missing"], "no such database"),
        (["query", "{tmp}/missing", "{fx}/reads.fa"], "no such database"),
    ],
)
def test_errors_are_one_line_and_exit_1(tmp_path, capsys, argv, needle):
    argv = [a.format(tmp=tmp_path, fx=FIXTURES) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("kmerdb: error:") and needle in err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_build_into_existing_is_refused(db, capsys):
    code, _, err = run(capsys, "build", db, FIXTURES / "genome_a.fa", "--quiet")
    assert code == 1 and "already exists" in err
    code, out, _ = run(capsys, "info", db, "--json")
    assert json.loads(out)["n_genomes"] == 3


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["build"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_entry_points(db):
    for cmd in ([sys.executable, "-m", "kmerdb"], ["kmerdb"]):
        exe = cmd if cmd[0] != "kmerdb" else [str(__import__("pathlib").Path(sys.executable).parent / "kmerdb")]
        proc = subprocess.run(exe + ["--version"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.startswith("kmerdb ")
        proc = subprocess.run(exe + ["info", str(db), "--json"], capture_output=True, text=True)
        assert proc.returncode == 0 and json.loads(proc.stdout)["n_genomes"] == 3
    proc = subprocess.run([sys.executable, "-m", "kmerdb", "info", "/nonexistent/db"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_genomes_lookup_history(db, capsys):
    code, out, _ = run(capsys, "genomes", db, "--json")
    rows = json.loads(out)
    sets = oracle.genome_sets(GENOMES, 21)
    assert [r["label"] for r in rows] == ["A", "B", "C"]
    assert [r["n_kmers"] for r in rows] == [len(sets[g]) for g in "ABC"]
    assert [r["min_count"] for r in rows] == [1, 1, 1]
    code, out, _ = run(capsys, "genomes", db)
    assert code == 0 and "distinct k-mers" in out
    some = sorted(sets["B"])[:2]
    code, out, _ = run(capsys, "lookup", db, *some, "--json")
    doc = json.loads(out)
    assert [r["genomes"] for r in doc["results"]] == [{g: sets[g].get(x, 0) for g in "ABC"} for x in some]
    code, out, _ = run(capsys, "history", db, "--json")
    hist = json.loads(out)
    assert hist[0]["command"] == "build" and hist[0]["generation"] == 1 and hist[0]["args"]["k"] == 21
    code, out, _ = run(capsys, "lookup", db, "ACGT")
    assert code == 1


@pytest.mark.parametrize(
    "colours,counts,kinds", [("classes", True, {"unitig-class-counts"}), ("dense", False, {"presence"})]
)
def test_build_colours(tmp_path, capsys, colours, counts, kinds):
    import kmerdb

    path = tmp_path / "db"
    inputs = [f"{label}={','.join(paths)}" for label, paths in GENOMES.items()]
    argv = ["build", path, *inputs, "--k", "15", "--partitions", "2", "--colours", colours, "--quiet"]
    code, _, _ = run(capsys, *argv, *(["--counts"] if counts else []))
    assert code == 0
    code, out, _ = run(capsys, "info", path, "--format", "tsv")
    assert code == 0 and f"colours\t{colours}\n" in out
    sets = oracle.genome_sets(GENOMES, 15)
    universe = sorted(set().union(*[set(s) for s in sets.values()]))
    with kmerdb.open(path) as db:
        assert db.config.colours == colours
        assert {g.kind for layers in db.snapshot.partitions for rec in layers for g in rec.groups} == kinds
        got = db.lookup(universe, counts=counts)
    want = [[sets[g].get(x, 0) for g in "ABC"] for x in universe]
    assert got.astype(int).tolist() == (want if counts else [[int(v > 0) for v in row] for row in want])
    with pytest.raises(SystemExit) as info:
        main(["build", str(tmp_path / "x"), *inputs, "--colours", "sparse"])
    assert info.value.code == 2
