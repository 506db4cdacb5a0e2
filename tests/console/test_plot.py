"""Console: plot spectrum|distance|tree writes valid images; usage errors; no matplotlib."""

from __future__ import annotations

import builtins
import json
import re
import xml.etree.ElementTree as ET

import pytest
from conftest import GENOMES
from conftest import run_console as run
from PIL import Image

from kmerdb.analysis.plots import DPI
from kmerdb.console import main


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("plot") / "fx.kmerdb"
    inputs = [f"{label}={','.join(paths)}" for label, paths in GENOMES.items()]
    assert main(["build", str(path), *inputs, "--k", "21", "--counts", "--partitions", "4", "--quiet"]) == 0
    return path


def valid(path, fmt, size_inches):
    data = path.read_bytes()
    if fmt == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as im:
            im.load()
            assert im.size == tuple(round(s * DPI) for s in size_inches)
    elif fmt == "svg":
        assert ET.fromstring(data).tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    else:
        assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")


@pytest.mark.parametrize("kind", ["spectrum", "distance", "tree"])
@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_plot_writes_a_valid_image_of_each_kind(db, tmp_path, capsys, kind, fmt):
    out = tmp_path / f"{kind}.{fmt}"
    code, stdout, err = run(capsys, "plot", kind, db, "-o", out, "--threads", "1", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["path"] == str(out) and report["kind"] == kind and report["format"] == fmt
    assert sorted(report["labels"]) == ["A", "B", "C"]
    valid(out, fmt, report["size_inches"])


def test_plot_says_what_it_wrote_unless_quiet(db, tmp_path, capsys):
    code, out, err = run(capsys, "plot", "tree", db, "--output", tmp_path / "t.png", "--method", "upgma")
    assert code == 0 and out == ""
    assert err.strip() == f"wrote {tmp_path / 't.png'}: tree of 3 genome(s), mash, upgma"
    code, out, err = run(capsys, "plot", "tree", db, "-o", tmp_path / "q.png", "--quiet")
    assert code == 0 and out == "" and err == "" and (tmp_path / "q.png").exists()


def leaves(newick: str) -> list[str]:
    return re.findall(r"[(,]([^():,;']+):", newick)


@pytest.mark.parametrize("method", ["upgma", "nj"])
def test_heatmap_order_is_the_leaf_order_of_kmerdb_tree(db, tmp_path, capsys, method):
    code, newick, _ = run(capsys, "tree", db, "--metric", "jaccard", "--method", method, "--quiet")
    assert code == 0
    code, out, _ = run(capsys, "plot", "distance", db, "-o", tmp_path / "d.png", "--method", method, "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["metric"], report["method"]) == ("jaccard", method)
    assert report["labels"] == leaves(newick)


def test_spectrum_of_one_genome_and_max_count(db, tmp_path, capsys):
    code, out, _ = run(capsys, "plot", "spectrum", db, "-o", tmp_path / "s.svg", "--genome", "C", "--max-count", "2", "--json")
    assert code == 0 and json.loads(out)["labels"] == ["C"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plot", "tree", "{db}", "-o", "{tmp}/t.jpg"], "-o {tmp}/t.jpg: the file name must end in .png, .svg or .pdf"),
        (["plot", "tree", "{db}", "-o", "{tmp}/t"], "-o {tmp}/t: the file name must end in .png, .svg or .pdf"),
        (["plot", "tree", "{db}"], "the following arguments are required: -o/--output"),
        (["plot", "pie", "{db}", "-o", "{tmp}/t.png"], "argument KIND: invalid choice: 'pie'"),
        (["plot", "spectrum", "{db}", "-o", "{tmp}/t.png", "--metric", "mash"], "--metric and --method apply to"),
        (["plot", "tree", "{db}", "-o", "{tmp}/t.png", "--genome", "A"], "--genome and --max-count apply to"),
        (["plot", "distance", "{db}", "-o", "{tmp}/t.png", "--metric", "containment"], "invalid choice: 'containment'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(db, tmp_path, capsys, argv, message):
    argv = [a.format(db=db, tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.count("\n") == 1 and err.startswith("kmerdb: error: ") and message.format(tmp=tmp_path) in err
    assert not list(tmp_path.iterdir())


def test_failures_exit_1_with_one_line(db, tmp_path, capsys):
    code, _, err = run(capsys, "plot", "spectrum", db, "-o", tmp_path / "s.png", "--genome", "Z")
    assert code == 1 and err == "kmerdb: error: no genome labelled 'Z'\n"
    code, _, err = run(capsys, "plot", "spectrum", db, "-o", tmp_path / "s.png", "--max-count", "0")
    assert code == 1 and err.startswith("kmerdb: error: max_count=0") and err.count("\n") == 1
    code, _, err = run(capsys, "plot", "tree", tmp_path / "nowhere", "-o", tmp_path / "t.png")
    assert code == 1 and err.count("\n") == 1 and "nowhere" in err
    assert not list(tmp_path.iterdir())


def test_without_matplotlib_one_line_and_exit_1(db, tmp_path, capsys, monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    for kind in ("spectrum", "distance", "tree"):
        code, out, err = run(capsys, "plot", kind, db, "-o", tmp_path / "x.png", "--quiet")
        assert (code, out) == (1, "")
        assert err == "kmerdb: error: plotting needs matplotlib: pip install 'kmerdb[plot]'\n"
    assert not list(tmp_path.iterdir())
