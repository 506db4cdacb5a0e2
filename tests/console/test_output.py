"""Console: one output convention (--format table|tsv|csv|json, --json), short options, export
defaults, usage errors, PHYLIP distances, merge warnings, live and reclaimable bytes."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import sys

import pytest
from conftest import FIXTURES, GENOMES
from conftest import run_console as run

import kmerdb
from kmerdb.console import main
from kmerdb.console.render import Size, Table, cell, render

K = 21


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("output") / "fx.kmerdb"
    kmerdb.build(path, GENOMES, k=K, partitions=4, counts=True, threads=1)
    return path


@pytest.fixture(scope="module")
def presence_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("output") / "p.kmerdb"
    kmerdb.build(path, {"P": GENOMES["B"]}, k=K, partitions=4, counts=False, threads=1)
    return path


# ----------------------------------------------------------------------------------------
# the renderer
# ----------------------------------------------------------------------------------------
def test_cells_format_numbers_one_way():
    assert cell(1234567, "table") == "1,234,567" and cell(1234567, "tsv") == "1234567"
    assert cell(Size(2048), "table") == "2.0 KiB" and cell(Size(2048), "csv") == "2048"
    v = 0.5034374030807403
    assert float(cell(v, "tsv")) == v and cell(v, "table") == "0.5034"
    assert cell(3.0, "tsv") == "3" and cell(12345.6, "table") == "12,346"
    assert cell(None, "tsv") == "" and cell("x", "table") == "x"


def test_tsv_cells_never_shift_columns():
    out = io.StringIO()
    render("tsv", [Table("t", ["a", "b"], [["x\ty", 1]])], out=out)
    assert out.getvalue() == "a\tb\nx y\t1\n"
    out = io.StringIO()
    render("csv", [Table("t", ["a", "b"], [["x,y", 1]])], out=out)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["a", "b"], ["x,y", "1"]]


# ----------------------------------------------------------------------------------------
# --format on every command that prints data
# ----------------------------------------------------------------------------------------
DATA_COMMANDS = [
    ["genomes", "{db}"],
    ["info", "{db}"],
    ["history", "{db}"],
    ["stats", "{db}"],
    ["verify", "{db}", "--quiet"],
    ["spectrum", "{db}"],
    ["distance", "{db}", "--quiet"],
    ["lookup", "{db}", "AAAAAATGTAGCCCGAGATTC"],
    ["query", "{db}", "{fx}/reads.fa"],
]


@pytest.mark.parametrize("argv", DATA_COMMANDS, ids=lambda a: a[0])
def test_every_data_command_speaks_every_format(db, capsys, argv):
    argv = [a.format(db=db, fx=FIXTURES) for a in argv]
    # not a terminal: tsv with a header, no box drawing
    code, default, _ = run(capsys, *argv)
    assert code == 0 and default and not any(ch in default for ch in "┃│━─")
    code, tsv, _ = run(capsys, *argv, "--format", "tsv")
    assert tsv == default and "\t" in tsv.splitlines()[0]
    code, out, _ = run(capsys, *argv, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == tsv.splitlines()[0].split("\t")
    code, out, _ = run(capsys, *argv, "--format", "table")
    assert code == 0 and "┃" in out
    code, as_json, _ = run(capsys, *argv, "--json")
    code, fmt_json, _ = run(capsys, *argv, "--format", "json")
    assert json.loads(as_json) == json.loads(fmt_json)


def test_a_terminal_gets_a_table(db, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = run(capsys, "genomes", db)
    assert code == 0 and "┃" in out and "genomes" in out


def test_numbers_are_the_same_in_tsv_and_json(db, capsys):
    code, out, _ = run(capsys, "genomes", db)
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["#", "label", "distinct k-mers", "k-mer occurrences", "min count", "sources"]
    code, doc, _ = run(capsys, "genomes", db, "--json")
    assert [[int(r[2]), int(r[3])] for r in rows[1:]] == [[g["n_kmers"], g["total"]] for g in json.loads(doc)]
    code, out, _ = run(capsys, "genomes", db, "--format", "table")
    n = json.loads(doc)[0]["n_kmers"]
    assert code == 0 and f"{n:,}" in out


def test_nothing_is_cut_when_redirected(tmp_path, capsys):
    path = tmp_path / "long.kmerdb"
    label = "L" + "x" * 150
    kmerdb.build(path, {label: GENOMES["A"]}, k=15, partitions=2, threads=1)
    for fmt in ("tsv", "table"):
        code, out, _ = run(capsys, "history", path, "--format", fmt)
        assert code == 0 and label in out  # the arguments cell holds the whole label on one line
        code, out, _ = run(capsys, "genomes", path, "--format", fmt)
        assert label in out and str(GENOMES["A"][0]) in out


def test_dump_csv(db, capsys):
    code, tsv, _ = run(capsys, "dump", db)
    code, out, _ = run(capsys, "dump", db, "--format", "csv")
    assert code == 0 and out.replace(",", "\t") == tsv


def test_distance_sparse_csv_and_table(db, capsys):
    code, out, _ = run(capsys, "distance", db, "--nearest", "1", "--format", "csv", "--quiet")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["a", "b", "jaccard"] and len(rows) == 4
    code, out, _ = run(capsys, "distance", db, "--nearest", "1", "--format", "table", "--quiet")
    assert code == 0 and "┃" in out


# ----------------------------------------------------------------------------------------
# PHYLIP holds distances
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["jaccard", "containment", "mash"])
def test_phylip_holds_distances_with_a_zero_diagonal(db, capsys, metric):
    code, out, _ = run(capsys, "distance", db, "--metric", metric, "--format", "phylip", "--quiet")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "3"
    with kmerdb.open(db) as h:
        dist = h.distance(metric).as_distance()
    for i, line in enumerate(lines[1:]):
        values = [float(v) for v in line.split()[1:]]
        assert values[i] == 0
        for j, v in enumerate(values):
            if i != j:
                assert v == pytest.approx(dist[i, j], rel=1e-12)


# ----------------------------------------------------------------------------------------
# short options, export, usage errors
# ----------------------------------------------------------------------------------------
def test_short_options(tmp_path, capsys):
    out = tmp_path / "short.kmerdb"
    code, _, _ = run(capsys, "build", out, f"A={GENOMES['A'][0]}", "-k", "15", "-m", "7", "-t", "1", "--quiet")
    assert code == 0
    code, doc, _ = run(capsys, "info", out, "--json")
    cfg = json.loads(doc)["config"]
    assert (cfg["k"], cfg["m"]) == (15, 7)
    code, out_text, _ = run(capsys, "query", out, FIXTURES / "reads.fa", "-t", "1")
    assert code == 0 and out_text.startswith("sequence\tn_kmers\tA")


def test_export_defaults_to_unitigs_and_gzips_by_name(db, capsys, tmp_path):
    code, plain, _ = run(capsys, "export", db)
    assert code == 0 and plain.startswith(">0 LN:i:")
    code, same, _ = run(capsys, "export", db, "--unitigs")
    assert same == plain
    code, _, _ = run(capsys, "export", db, "-o", tmp_path / "u.fa.gz")
    assert code == 0
    raw = (tmp_path / "u.fa.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw).decode() == plain
    code, _, _ = run(capsys, "export", db, "-o", tmp_path / "u.fa")
    assert (tmp_path / "u.fa").read_text() == plain


def test_bare_kmerdb_prints_usage_and_exits_2(capsys):
    code = main([])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("usage: kmerdb") and "build" in err


@pytest.mark.parametrize("command", ["build", "append"])
def test_no_input_is_a_usage_error(tmp_path, capsys, db, command):
    target = tmp_path / "x" if command == "build" else db
    with pytest.raises(SystemExit) as info:
        main([command, str(target)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no input" in err and f"kmerdb {command} --help" in err
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------------------
# merge says when counts are dropped
# ----------------------------------------------------------------------------------------
def test_merge_in_presence_mode_says_counts_are_dropped(db, tmp_path, capsys):
    code, out, err = run(capsys, "merge", tmp_path / "m", db, "--quiet", "--json")
    assert code == 0 and "warning" in err and "counts" in err and str(db) in err
    assert json.loads(out)["counts_dropped"] == [str(db)]
    code, _, err = run(capsys, "merge", tmp_path / "c", db, "--mode", "count", "--quiet")
    assert code == 0 and err == ""


def test_merge_into_presence_index_says_counts_are_dropped(db, presence_db, tmp_path, capsys):
    target = tmp_path / "p.kmerdb"
    shutil.copytree(presence_db, target)
    single = tmp_path / "a.kmerdb"
    kmerdb.build(single, {"A2": GENOMES["A"]}, k=K, partitions=4, counts=True, threads=1)
    code, _, err = run(capsys, "merge", "--into", target, single, "--quiet")
    assert code == 0 and err.count("\n") == 1 and "warning" in err and "counts" in err


# ----------------------------------------------------------------------------------------
# info: live and reclaimable bytes
# ----------------------------------------------------------------------------------------
def test_info_shows_live_and_reclaimable_bytes(db, tmp_path, capsys):
    path = tmp_path / "db.kmerdb"
    shutil.copytree(db, path)

    def info() -> dict:
        code, out, _ = run(capsys, "info", path, "--json")
        assert code == 0
        return json.loads(out)

    fresh = info()
    with kmerdb.open(path) as h:
        assert fresh["live_bytes"] == sum(ref.nbytes for ref in h.snapshot.all_files())
    assert fresh["reclaimable_bytes"] == 0
    assert run(capsys, "remove", path, "A")[0] == 0
    assert run(capsys, "compact", path, "--quiet")[0] == 0
    compacted = info()
    assert compacted["reclaimable_bytes"] > 0 and compacted["live_bytes"] < fresh["live_bytes"]
    code, out, _ = run(capsys, "info", path)
    assert code == 0
    props = dict(line.split("\t") for line in out.split("\n\n")[0].splitlines()[1:])
    assert int(props["live"]) == compacted["live_bytes"]
    assert int(props["reclaimable (vacuum)"]) == compacted["reclaimable_bytes"]
    assert run(capsys, "vacuum", path)[0] == 0
    assert info()["reclaimable_bytes"] == 0


# ----------------------------------------------------------------------------------------
# -o FILE on every command that prints data
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["genomes", "{db}"],
        ["query", "{db}", str(FIXTURES / "reads.fa")],
        ["dump", "{db}"],
        ["distance", "{db}", "--metric", "jaccard"],
    ],
)
def test_output_option_writes_what_stdout_would_get(db, capsys, tmp_path, argv):
    argv = [a.format(db=db) for a in argv]
    code, want, _ = run(capsys, *argv, "--format", "tsv")
    assert code == 0 and want
    plain, packed = tmp_path / "out.tsv", tmp_path / "out.tsv.gz"
    code, out, _ = run(capsys, *argv, "-o", plain)
    assert code == 0 and out == "" and plain.read_text() == want  # a file gets tsv, like a pipe
    code, out, _ = run(capsys, *argv, "--output", packed, "--format", "tsv")
    assert code == 0 and gzip.decompress(packed.read_bytes()).decode() == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv", "out.tsv.gz"]  # no temporary left


def test_output_option_leaves_nothing_when_the_command_fails(tmp_path, capsys):
    target = tmp_path / "out.tsv"
    code, _, err = run(capsys, "genomes", tmp_path / "missing.kmerdb", "-o", target)
    assert code == 1 and "missing.kmerdb" in err
    assert list(tmp_path.iterdir()) == []
