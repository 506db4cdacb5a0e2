"""Plots: the Newick read back, the heatmap in the tree's order, valid image files, no matplotlib."""

from __future__ import annotations

import builtins
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

import kmerdb
from kmerdb.analysis import phylo, plots
from kmerdb.analysis.analytics import DistanceMatrix

LABELS = ("g0", "g1", "g2", "g3", "g4", "g5")


def newick_leaves(newick: str) -> list[str]:
    """Leaf labels in order, by a regex (plain labels only): independent of plots.parse_newick."""
    return re.findall(r"[(,]([^():,;']+):", newick)


def matrix(n: int = 6, seed: int = 3) -> DistanceMatrix:
    rng = np.random.default_rng(seed)
    pts = rng.random((n, 3))
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    return DistanceMatrix("mash", LABELS[:n], d)


def check_png(path, size_inches):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.load()
        assert im.size == tuple(round(s * plots.DPI) for s in size_inches)


def check_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")


def check_pdf(path):
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")


# -- Newick -------------------------------------------------------------------------------
def test_parse_newick_reads_lengths_quotes_and_nesting():
    root = plots.parse_newick("((A:1,'it''s a b':2):0.5,C:3);")
    assert root is not None and root.name is None and len(root.children) == 2
    inner, c = root.children
    assert inner.length == 0.5 and [x.name for x in inner.children] == ["A", "it's a b"]
    assert c == plots.Clade("C", 3.0)
    assert plots.leaf_order("((A:1,'it''s a b':2):0.5,C:3);") == ["A", "it's a b", "C"]
    assert plots.leaf_order(";") == [] and plots.leaf_order("A;") == ["A"]


def test_layout_puts_leaves_at_their_depth():
    lay = plots._layout(plots.parse_newick("((A:1,B:2):0.5,C:3);"))
    assert lay.labels == ["A", "B", "C"]
    assert lay.leaf_x.tolist() == [1.5, 2.5, 3.0] and lay.depth == 3.0
    # two inner nodes: one vertical bar and one branch per child each
    assert len(lay.segments) == 2 * 3


@pytest.mark.parametrize("bad", ["(A:1,B:2", "(A:1,B:2));", "(A:x,B:1);", "('A:1,B:1);"])
def test_parse_newick_rejects_malformed_text(bad):
    with pytest.raises(kmerdb.InvalidParameterError) as info:
        plots.parse_newick(bad)
    assert info.value.argument == "newick"


def test_a_deep_tree_does_not_recurse():
    n = 5000  # well past Python's recursion limit
    newick = "t0:1"
    for i in range(1, n):
        newick = f"({newick},t{i}:1):1"
    newick = newick[: newick.rindex(":")] + ";"  # a caterpillar, n - 1 levels deep
    assert plots.leaf_order(newick) == [f"t{i}" for i in range(n)]
    lay = plots._layout(plots.parse_newick(newick))
    assert lay.depth == n - 1 and len(lay.segments) == 3 * (n - 1)


@pytest.mark.parametrize("method", phylo.METHODS)
def test_leaf_order_matches_the_newick(method):
    result = matrix()
    newick = result.tree(method)
    assert plots.leaf_order(newick) == newick_leaves(newick)


# -- figures ------------------------------------------------------------------------------
def axes(fig, label):
    (ax,) = [a for a in fig.axes if a.get_label() == label]
    return ax


def ticks(labels):
    return [t.get_text() for t in labels]


@pytest.mark.parametrize("method", phylo.METHODS)
def test_heatmap_rows_and_columns_follow_the_tree(method):
    result = matrix()
    fig = plots.distance_figure(result, method)
    order = newick_leaves(result.tree(method))
    assert sorted(order) == sorted(LABELS) and order != list(LABELS)  # a real reordering is tested
    ax = axes(fig, "heatmap")
    assert ticks(ax.get_yticklabels()) == order
    assert ticks(ax.get_xticklabels()) == order
    idx = [LABELS.index(x) for x in order]
    (image,) = ax.get_images()
    assert np.array_equal(np.asarray(image.get_array()), result.matrix[np.ix_(idx, idx)])
    assert axes(fig, "dendrogram").collections  # the tree is drawn beside it


@pytest.mark.parametrize("method", phylo.METHODS)
def test_tree_figure_labels_leaves_in_tree_order(method):
    result = matrix()
    fig = plots.tree_figure(result, method)
    assert ticks(axes(fig, "tree").get_yticklabels()) == newick_leaves(result.tree(method))


def test_figures_need_a_symmetric_metric_and_a_known_method():
    m = matrix()
    with pytest.raises(kmerdb.InvalidParameterError):
        plots.distance_figure(DistanceMatrix("containment", m.labels, m.matrix))
    with pytest.raises(kmerdb.InvalidParameterError) as info:
        plots.tree_figure(m, "ward")
    assert info.value.argument == "method"
    with pytest.raises(kmerdb.InvalidParameterError):
        plots.tree_figure(DistanceMatrix("mash", (), np.zeros((0, 0))))


def test_spectrum_figure_draws_one_line_per_genome():
    spectra = {"A": [(1, 100), (2, 10)], "B": [(1, 50), (3, 5), (9, 1)], "C": []}
    fig = plots.spectrum_figure(spectra)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"A", "B"}  # a genome without a spectrum has no line
    assert lines["B"].get_xdata().tolist() == [1, 3, 9] and lines["B"].get_ydata().tolist() == [50, 5, 1]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    capped = plots.spectrum_figure(spectra, max_count=3)
    assert [line.get_xdata().tolist() for line in capped.axes[0].get_lines()] == [[1, 2], [1, 3]]
    with pytest.raises(kmerdb.InvalidParameterError) as info:
        plots.spectrum_figure(spectra, max_count=0)
    assert info.value.argument == "max_count"
    with pytest.raises(kmerdb.InvalidParameterError):
        plots.spectrum_figure({"C": []})


# -- files --------------------------------------------------------------------------------
def test_files_are_valid_images_in_the_format_of_their_extension(tmp_path):
    fig = plots.tree_figure(matrix())
    size = tuple(fig.get_size_inches())
    assert plots.save_figure(fig, tmp_path / "t.png") == "png"
    check_png(tmp_path / "t.png", size)
    assert plots.save_figure(fig, tmp_path / "t.SVG") == "svg"
    check_svg(tmp_path / "t.SVG")
    assert plots.save_figure(fig, tmp_path / "t.pdf") == "pdf"
    check_pdf(tmp_path / "t.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.SVG", "t.pdf", "t.png"]  # no temp files left


@pytest.mark.parametrize("name", ["t.jpg", "t", "t.png.gz"])
def test_other_extensions_are_refused(tmp_path, name):
    with pytest.raises(kmerdb.InvalidParameterError) as info:
        plots.save_figure(plots.tree_figure(matrix()), tmp_path / name)
    assert info.value.argument == "path"
    assert not list(tmp_path.iterdir())


# -- plot() on a database -------------------------------------------------------------------
@pytest.fixture(scope="module")
def db_path(built):
    return built(k=21, counts=True, partitions=4)


def test_plot_draws_each_kind_from_the_database(db_path, tmp_path):
    with kmerdb.open(db_path) as db:
        report = plots.plot(db, "distance", tmp_path / "d.png", threads=1)
        result = db.distance("jaccard", threads=1)
        assert report.metric == "jaccard" and report.method == "upgma" and report.format == "png"
        assert list(report.labels) == newick_leaves(result.tree("upgma"))
        check_png(tmp_path / "d.png", report.size)

        report = plots.plot(db, "tree", tmp_path / "t.svg", metric="jaccard-distance", method="upgma", threads=1)
        assert list(report.labels) == newick_leaves(db.distance("jaccard-distance", threads=1).tree("upgma"))
        check_svg(tmp_path / "t.svg")

        report = plots.plot(db, "spectrum", tmp_path / "s.pdf", genome="C", threads=1)
        assert report.labels == ("C",) and report.size == (8.0, 5.0)
        check_pdf(tmp_path / "s.pdf")


@pytest.mark.parametrize(
    "kind, kwargs, argument",
    [
        ("heat", {}, "kind"),
        ("spectrum", {"metric": "mash"}, "metric"),
        ("spectrum", {"method": "nj"}, "method"),
        ("tree", {"genome": "A"}, "genome"),
        ("distance", {"max_count": 3}, "max_count"),
        ("distance", {"metric": "containment"}, "metric"),
        ("tree", {"method": "ward"}, "method"),
    ],
)
def test_plot_rejects_options_the_kind_does_not_take(db_path, tmp_path, kind, kwargs, argument):
    with kmerdb.open(db_path) as db, pytest.raises(kmerdb.InvalidParameterError) as info:
        plots.plot(db, kind, tmp_path / "x.png", **kwargs)
    assert info.value.argument == argument


def without_matplotlib(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


def test_without_matplotlib_a_missing_dependency_error_before_any_work(db_path, tmp_path, monkeypatch):
    without_matplotlib(monkeypatch)
    with kmerdb.open(db_path) as db:
        monkeypatch.setattr(db, "spectrum", lambda *a, **k: pytest.fail("computed before checking matplotlib"))
        with pytest.raises(kmerdb.MissingDependencyError) as info:
            plots.plot(db, "spectrum", tmp_path / "s.png")
    exc = info.value
    assert isinstance(exc, kmerdb.KmerDBError) and isinstance(exc, ImportError)
    assert str(exc) == "plotting needs matplotlib: pip install 'kmerdb[plot]'"
    assert (exc.package, exc.extra) == ("matplotlib", "plot")
    assert not list(tmp_path.iterdir())


def test_matplotlib_is_imported_only_to_draw_and_never_through_pyplot(tmp_path):
    code = (
        "import sys, kmerdb, kmerdb.analysis.plots as p\n"
        "from kmerdb.console import make_parser\n"
        "make_parser()\n"
        "assert 'matplotlib' not in sys.modules, 'imported eagerly'\n"
        "from kmerdb.analysis.analytics import DistanceMatrix\n"
        "import numpy as np\n"
        f"p.save_figure(p.tree_figure(DistanceMatrix('mash', ('a', 'b', 'c'), 1 - np.eye(3))), {str(tmp_path / 'x.png')!r})\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
