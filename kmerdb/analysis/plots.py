"""Pictures of the analytics: a k-mer spectrum, a clustered distance heatmap, a tree.

Everything drawn here comes from public results: :meth:`kmerdb.Database.spectrum`, a
:class:`~kmerdb.DistanceMatrix` and its Newick tree (:meth:`~kmerdb.DistanceMatrix.tree`).
The heatmap and the tree plot draw the very tree ``tree(method)`` returns, parsed back from
its Newick, so the heatmap's order is the tree's leaf order and the pictures agree with
``kmerdb tree``.

matplotlib is an optional extra (``pip install 'kmerdb[plot]'``), imported only when a figure
is made; without it, :class:`~kmerdb.errors.MissingDependencyError`.  Figures are
``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot: no display is needed and
no global state (pyplot's current figure, the chosen backend) is touched, so a program that
embeds kmerdb keeps its own matplotlib set-up.  The file format follows the extension of the
output path: ``.png``, ``.svg`` or ``.pdf``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kmerdb.analysis.analytics import METRICS, TREE_METRICS, DistanceMatrix, distance
from kmerdb.analysis.phylo import METHODS
from kmerdb.errors import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "KINDS",
    "FORMATS",
    "DPI",
    "Clade",
    "PlotReport",
    "parse_newick",
    "leaf_order",
    "plot_format",
    "spectrum_figure",
    "distance_figure",
    "tree_figure",
    "save_figure",
    "plot",
]

#: What :func:`plot` draws.
KINDS = ("spectrum", "distance", "tree")

#: Output formats, chosen by the file name's extension.
FORMATS = ("png", "svg", "pdf")

#: Resolution of raster output (PNG), in dots per inch.
DPI = 150

#: Metric and method used when none is given: the defaults of ``kmerdb distance`` for the
#: heatmap (with average linkage, as clustered heatmaps usually are) and of ``kmerdb tree``.
DEFAULTS = {"distance": ("jaccard", "upgma"), "tree": ("mash", "nj")}

# figure sizes in inches grow with the number of genomes, within these bounds
_MIN_SIDE, _MAX_SIDE = 4.0, 40.0
_ROW_INCHES = 0.22


# --------------------------------------------------------------------------------------
# trees: the Newick that kmerdb.analysis.phylo writes, read back for drawing
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clade:
    """A node of a tree: a leaf (``name``) or an inner node (``children``).

    Attributes
    ----------
    name : str or None
        The leaf's label (unquoted); ``None`` for an inner node.
    length : float
        Length of the branch above the node (0 for the root).
    children : tuple of Clade
        Sub-trees, in Newick order; empty for a leaf.
    """

    name: str | None
    length: float
    children: tuple[Clade, ...] = ()


def _read_label(text: str, i: int) -> tuple[str, int]:
    """A Newick label starting at ``text[i]``: single-quoted (``''`` for a quote) or plain."""
    if text[i] == "'":
        out = []
        i += 1
        while True:
            j = text.find("'", i)
            if j < 0:
                raise InvalidParameterError("newick", text, "unterminated quoted label")
            out.append(text[i:j])
            if text.startswith("''", j):
                out.append("'")
                i = j + 2
                continue
            return "".join(out), j + 1
    j = i
    while j < len(text) and text[j] not in "():;,":
        j += 1
    return text[i:j].strip(), j


def _read_length(text: str, i: int) -> tuple[float, int]:
    if i >= len(text) or text[i] != ":":
        return 0.0, i
    j = i + 1
    while j < len(text) and text[j] not in "(),;":
        j += 1
    try:
        return float(text[i + 1 : j]), j
    except ValueError:
        raise InvalidParameterError("newick", text[i + 1 : j], "a branch length must be a number") from None


def parse_newick(text: str) -> Clade | None:
    """The tree of a Newick string, as :class:`Clade` nodes (``None`` for the empty tree ``;``).

    Reads what :mod:`kmerdb.analysis.phylo` writes: quoted or plain leaf labels, branch
    lengths, unnamed inner nodes.  Iterative, so a deep (caterpillar) tree of thousands of
    genomes does not hit Python's recursion limit.
    """
    text = text.strip()
    if not text.endswith(";"):
        raise InvalidParameterError("newick", text[-20:], "a Newick tree ends with ';'")
    stack: list[list[Clade]] = [[]]
    i = 0
    end = len(text) - 1
    while i < end:
        c = text[i]
        if c.isspace() or c == ",":
            i += 1
        elif c == "(":
            stack.append([])
            i += 1
        elif c == ")":
            if len(stack) < 2:
                raise InvalidParameterError("newick", text, f"unbalanced ')' at character {i}")
            children = tuple(stack.pop())
            _, i = _read_label(text, i + 1)  # inner-node names are not drawn
            length, i = _read_length(text, i)
            stack[-1].append(Clade(None, length, children))
        else:
            name, i = _read_label(text, i)
            length, i = _read_length(text, i)
            stack[-1].append(Clade(name, length))
    if len(stack) != 1 or len(stack[0]) > 1:
        raise InvalidParameterError("newick", text, "unbalanced parentheses")
    return stack[0][0] if stack[0] else None


def _preorder(root: Clade) -> list[tuple[Clade, Clade | None]]:
    """(node, parent) pairs, parents before children, children left to right."""
    out: list[tuple[Clade, Clade | None]] = []
    todo: list[tuple[Clade, Clade | None]] = [(root, None)]
    while todo:
        node, parent = todo.pop()
        out.append((node, parent))
        todo.extend((child, node) for child in reversed(node.children))
    return out


def leaf_order(newick: str) -> list[str]:
    """The leaf labels of a Newick tree, left to right: the order plots draw genomes in."""
    root = parse_newick(newick)
    if root is None:
        return []
    return [node.name or "" for node, _ in _preorder(root) if not node.children]


@dataclass(frozen=True)
class _Layout:
    """Where a tree is drawn: leaves at y = 0, 1, ... in leaf order; x = depth from the root."""

    labels: list[str]
    leaf_x: np.ndarray
    segments: list[tuple[tuple[float, float], tuple[float, float]]]
    depth: float


def _layout(root: Clade | None) -> _Layout:
    if root is None:
        return _Layout([], np.zeros(0), [], 0.0)
    order = _preorder(root)
    # Clades are frozen dataclasses compared by value; identical sub-trees cannot occur
    # (labels are unique) but identity is what is meant, so key by id()
    x: dict[int, float] = {}
    for node, parent in order:
        x[id(node)] = 0.0 if parent is None else x[id(parent)] + max(0.0, node.length)
    y: dict[int, float] = {}
    labels: list[str] = []
    leaf_x: list[float] = []
    for node, _ in order:
        if not node.children:
            y[id(node)] = float(len(labels))
            labels.append(node.name or "")
            leaf_x.append(x[id(node)])
    segments = []
    for node, _ in reversed(order):  # children before parents
        if not node.children:
            continue
        ys = [y[id(c)] for c in node.children]
        y[id(node)] = (min(ys) + max(ys)) / 2.0
        xn = x[id(node)]
        segments.append(((xn, min(ys)), (xn, max(ys))))  # the node's vertical bar
        segments.extend(((xn, y[id(c)]), (x[id(c)], y[id(c)])) for c in node.children)
    return _Layout(labels, np.array(leaf_x), segments, max(leaf_x))


# --------------------------------------------------------------------------------------
# matplotlib, lazily
# --------------------------------------------------------------------------------------
def _new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas (no display, no pyplot); MissingDependencyError without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError("plotting", "matplotlib", "plot") from exc
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _line_collection(segments, **kwargs) -> Any:
    from matplotlib.collections import LineCollection

    return LineCollection(segments, **kwargs)


def _ticker() -> Any:
    import matplotlib.ticker

    return matplotlib.ticker


def _side(n: int) -> float:
    return float(np.clip(1.5 + _ROW_INCHES * n, _MIN_SIDE, _MAX_SIDE))


def _fontsize(n: int, height: float) -> float:
    """Tick labels shrink when genomes are many, so that each keeps its own row."""
    per_row = 72.0 * height / max(n, 1)
    return float(np.clip(0.7 * per_row, 2.0, 8.0))


# --------------------------------------------------------------------------------------
# the three figures
# --------------------------------------------------------------------------------------
def spectrum_figure(
    spectra: Mapping[str, Sequence[tuple[int, int]]], max_count: int | None = None, title: str | None = None
) -> Figure:
    """A k-mer spectrum: distinct k-mers per count, one line per genome, both axes log scale.

    Parameters
    ----------
    spectra : mapping of str to sequence of (int, int)
        Label -> ``(count, distinct k-mers)`` pairs, as :meth:`kmerdb.Database.spectrum`
        returns them.
    max_count : int, optional
        Draw counts up to this one only.
    title : str, optional
        The figure's title (default ``"k-mer spectrum"``).

    Returns
    -------
    matplotlib.figure.Figure
        8 x 5 inches; the legend names the genomes (up to 20 of them).

    Raises
    ------
    InvalidParameterError
        ``max_count`` below 1, or no genome has a spectrum (a presence index whose genomes
        were merged in without one).
    """
    if max_count is not None and max_count < 1:
        raise InvalidParameterError("max_count", max_count, "must be >= 1")
    drawn = {}
    for label, pairs in spectra.items():
        arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        if max_count is not None:
            arr = arr[arr[:, 0] <= max_count]
        if arr.size:
            drawn[label] = arr
    if not drawn:
        raise InvalidParameterError(
            "spectra", sorted(spectra), "no k-mer spectrum to draw (none recorded, or every count above max_count)"
        )
    fig = _new_figure(8.0, 5.0)
    ax = fig.add_subplot()
    for label, arr in drawn.items():
        ax.plot(arr[:, 0], arr[:, 1], marker=".", markersize=3, linewidth=1, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    # counts read better as 2, 5, 20 than as 2x10^0: plain numbers, minor ticks labelled
    # while the axis spans few decades
    ax.xaxis.set_major_formatter(_ticker().LogFormatter())
    ax.xaxis.set_minor_formatter(_ticker().LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlabel("k-mer count (occurrences in the genome)")
    ax.set_ylabel("distinct k-mers")
    ax.set_title(title or "k-mer spectrum")
    ax.grid(True, which="major", linewidth=0.4, alpha=0.5)
    if len(drawn) <= 20:
        ax.legend(fontsize=8, frameon=False)
    return fig


def _tree_of(result: DistanceMatrix, method: str) -> str:
    if method not in METHODS:
        raise InvalidParameterError("method", method, f"expected one of {', '.join(METHODS)}")
    if not result.labels:
        raise InvalidParameterError("result", "no genomes", "nothing to draw")
    return result.tree(method)


def _metric_label(result: DistanceMatrix) -> str:
    return f"{result.metric} ({'similarity' if METRICS[result.metric][0] else 'distance'})"


def distance_figure(result: DistanceMatrix, method: str = "upgma") -> Figure:
    """A clustered heatmap of a distance matrix, with the dendrogram of its tree on the left.

    Rows and columns are in the leaf order of ``result.tree(method)``; the dendrogram is
    that tree, branch lengths to scale.  Similar pairs are bright whether the metric is a
    similarity (``jaccard``) or a distance.

    Parameters
    ----------
    result : DistanceMatrix
        A symmetric metric (one a tree can be built from: ``jaccard``, ``jaccard-distance``,
        ``mash``, ``bray-curtis``).
    method : {"upgma", "nj"}
        How the rows are clustered: UPGMA (average linkage, the default) or neighbour joining.

    Returns
    -------
    matplotlib.figure.Figure
        Its heatmap axes are labelled ``"heatmap"`` (``ax.get_label()``).
    """
    return _heatmap(result, method, _layout(parse_newick(_tree_of(result, method))))


def _heatmap(result: DistanceMatrix, method: str, lay: _Layout) -> Figure:
    n = len(lay.labels)
    where = {label: i for i, label in enumerate(result.labels)}
    idx = np.array([where[label] for label in lay.labels])
    values = result.matrix[np.ix_(idx, idx)]
    side = _side(n)
    fig = _new_figure(side + 3.5, side + 1.0)
    grid = fig.add_gridspec(1, 3, width_ratios=[1.0, 4.0, 0.15])
    ax_tree = fig.add_subplot(grid[0])
    ax_map = fig.add_subplot(grid[1], sharey=ax_tree)
    ax_bar = fig.add_subplot(grid[2])
    ax_map.set_label("heatmap")
    ax_tree.set_label("dendrogram")

    ax_tree.add_collection(_line_collection(lay.segments, colors="black", linewidths=0.8))
    ax_tree.set_xlim(0.0, lay.depth * 1.02 or 1.0)
    ax_tree.set_ylim(n - 0.5, -0.5)  # first leaf on top, as the heatmap's first row
    ax_tree.axis("off")

    cmap = "viridis" if result.is_similarity else "viridis_r"
    image = ax_map.imshow(values, cmap=cmap, aspect="auto", interpolation="nearest", extent=(-0.5, n - 0.5, n - 0.5, -0.5))
    size = _fontsize(n, side)
    ax_map.set_xticks(range(n), lay.labels, rotation=90, fontsize=size)
    ax_map.set_yticks(range(n), lay.labels, fontsize=size)
    ax_map.yaxis.tick_right()
    ax_map.tick_params(axis="y", left=False, labelleft=False, right=True, labelright=True)
    fig.colorbar(image, cax=ax_bar, label=_metric_label(result))
    fig.suptitle(f"{result.metric}, {method.upper()} order")
    return fig


def tree_figure(result: DistanceMatrix, method: str = "nj") -> Figure:
    """The tree of ``result.tree(method)`` as a dendrogram, branch lengths to scale.

    Neighbour joining gives an unrooted tree; it is drawn from its last join (the
    trifurcation Newick writes), as tree viewers do with an unrooted Newick.  Leaf labels
    stand on the right, one row each, joined to their leaves by dotted lines.

    Parameters
    ----------
    result : DistanceMatrix
        A symmetric metric (``jaccard`` is used as ``1 - J``).
    method : {"nj", "upgma"}
        Neighbour joining (default) or UPGMA.

    Returns
    -------
    matplotlib.figure.Figure
        Its axes are labelled ``"tree"``; the y tick labels are the leaves, top to bottom.
    """
    return _tree(result, method, _layout(parse_newick(_tree_of(result, method))))


def _tree(result: DistanceMatrix, method: str, lay: _Layout) -> Figure:
    n = len(lay.labels)
    height = _side(n)
    fig = _new_figure(8.0, height)
    ax = fig.add_subplot()
    ax.set_label("tree")
    ax.add_collection(_line_collection(lay.segments, colors="black", linewidths=1.0))
    right = lay.depth * 1.05 or 1.0
    guides = [((x, y), (right, y)) for y, x in enumerate(lay.leaf_x.tolist()) if x < right]
    ax.add_collection(_line_collection(guides, colors="0.7", linewidths=0.5, linestyles="dotted"))
    ax.set_xlim(0.0, right)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(range(n), lay.labels, fontsize=_fontsize(n, height))
    ax.yaxis.tick_right()
    ax.tick_params(axis="y", length=0)
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    distance_name = "1 - jaccard" if result.metric == "jaccard" else result.metric
    ax.set_xlabel(f"branch length ({distance_name} distance)")
    ax.set_title(f"{'neighbour joining' if method == 'nj' else 'UPGMA'} tree, {distance_name} distance")
    return fig


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def plot_format(path: str | os.PathLike) -> str:
    """The format of an output path from its extension (``png``, ``svg``, ``pdf``; any case).

    Raises
    ------
    InvalidParameterError
        Any other extension (``argument`` is ``"path"``).
    """
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidParameterError("path", str(path), "the file name must end in .png, .svg or .pdf")
    return fmt


def save_figure(fig: Figure, path: str | os.PathLike) -> str:
    """Write a figure to ``path`` in the format its extension names; returns the format.

    The file is written under a temporary name beside it and renamed into place, so a
    failure never leaves half an image where the old file (if any) was.
    """
    fmt = plot_format(path)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=DPI)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return fmt


@dataclass(frozen=True)
class PlotReport:
    """What :func:`plot` wrote.

    Attributes
    ----------
    path : str
        The file.
    kind : str
        ``spectrum``, ``distance`` or ``tree``.
    format : str
        ``png``, ``svg`` or ``pdf``.
    labels : tuple of str
        The genomes drawn, in drawing order: legend order for a spectrum, rows top to bottom
        (the tree's leaf order) for a heatmap or a tree.
    metric, method : str or None
        The distance and tree method of a heatmap or tree.
    size : tuple of float
        Width and height in inches (PNG: times :data:`DPI` pixels).
    """

    path: str
    kind: str
    format: str
    labels: tuple[str, ...]
    metric: str | None
    method: str | None
    size: tuple[float, float]


def plot(
    db,
    kind: str,
    path: str | os.PathLike,
    *,
    genome: str | None = None,
    metric: str | None = None,
    method: str | None = None,
    max_count: int | None = None,
    threads: int | None = None,
    scheduler: str | None = None,
    max_memory: int | str | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> PlotReport:
    """Compute what ``kind`` shows from an open database and draw it to ``path``.

    Parameters
    ----------
    db : Database
        An open handle.
    kind : {"spectrum", "distance", "tree"}
        ``spectrum``: :func:`spectrum_figure` of ``db.spectrum(genome)``; ``distance``:
        :func:`distance_figure` (default ``metric="jaccard"``, ``method="upgma"``);
        ``tree``: :func:`tree_figure` (default ``metric="mash"``, ``method="nj"``).
    path : str or PathLike
        The output file; ``.png``, ``.svg`` or ``.pdf`` chooses the format.
    genome : str, optional
        ``spectrum`` only: this genome alone.
    metric, method : str, optional
        ``distance`` and ``tree`` only: one of ``TREE_METRICS`` and of ``nj``, ``upgma``.
    max_count : int, optional
        ``spectrum`` only: draw counts up to this one.
    threads, scheduler, max_memory, progress
        As for :meth:`kmerdb.Database.distance` and :meth:`~kmerdb.Database.spectrum`.

    Raises
    ------
    InvalidParameterError
        Unknown kind or format, or an option that the kind does not take.
    MissingDependencyError
        matplotlib is not installed (checked before anything is computed).
    """
    if kind not in KINDS:
        raise InvalidParameterError("kind", kind, f"expected one of {', '.join(KINDS)}")
    plot_format(path)
    if kind == "spectrum":
        for name, value in (("metric", metric), ("method", method)):
            if value is not None:
                raise InvalidParameterError(name, value, "a spectrum plot takes no metric or method")
    else:
        extra: tuple[tuple[str, object], ...] = (("genome", genome), ("max_count", max_count))
        for option, given in extra:
            if given is not None:
                raise InvalidParameterError(option, given, f"only a spectrum plot takes {option}")
        metric = metric or DEFAULTS[kind][0]
        method = method or DEFAULTS[kind][1]
        if metric not in TREE_METRICS:
            raise InvalidParameterError("metric", metric, f"a {kind} plot needs a symmetric metric: {', '.join(TREE_METRICS)}")
        if method not in METHODS:
            raise InvalidParameterError("method", method, f"expected one of {', '.join(METHODS)}")
    _new_figure(1.0, 1.0)  # fail on a missing matplotlib before a long computation, not after
    if kind == "spectrum":
        spectra = db.spectrum(genome, threads=threads, scheduler=scheduler)
        fig = spectrum_figure(spectra, max_count=max_count, title=f"k-mer spectrum of {genome}" if genome else None)
        labels = tuple(
            label for label, pairs in spectra.items() if any(max_count is None or c <= max_count for c, _ in pairs)
        )
    else:
        assert metric is not None and method is not None
        result = distance(db, metric, threads=threads, max_memory=max_memory, progress=progress, scheduler=scheduler)
        lay = _layout(parse_newick(_tree_of(result, method)))  # one tree for the figure and the report
        fig = _heatmap(result, method, lay) if kind == "distance" else _tree(result, method, lay)
        labels = tuple(lay.labels)
    fmt = save_figure(fig, path)
    width, height = (float(v) for v in fig.get_size_inches())
    return PlotReport(str(path), kind, fmt, labels, metric, method, (width, height))
