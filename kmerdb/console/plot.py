"""Console command that draws pictures: plot spectrum|distance|tree."""

from __future__ import annotations

import sys

from kmerdb import open as api_open
from kmerdb.analysis.analytics import TREE_METRICS
from kmerdb.analysis.phylo import METHODS
from kmerdb.analysis.plots import FORMATS, KINDS, plot
from kmerdb.console.options import add_workers, workers
from kmerdb.console.progress import progress_callback
from kmerdb.console.render import emit_json

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a k-mer spectrum, a clustered distance heatmap or a tree to an image file",
        description="Draw a picture to -o FILE; its extension chooses the format (.png, .svg, .pdf). "
        "spectrum: distinct k-mers per k-mer count, one line per genome (or --genome), log-log. "
        "distance: a heatmap of --metric (default jaccard) with rows and columns in the leaf order of the "
        "--method tree (default upgma) drawn beside it. tree: the --method tree (default nj) of --metric "
        "(default mash) as a dendrogram, as 'kmerdb tree' computes it. Needs matplotlib: "
        "pip install 'kmerdb[plot]'.",
    )
    p.add_argument("kind", metavar="KIND", choices=KINDS, help=" | ".join(KINDS))
    p.add_argument("db", metavar="DB")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="image to write: .png, .svg or .pdf")
    p.add_argument("--genome", metavar="LABEL", default=None, help="spectrum: only this genome")
    p.add_argument("--max-count", type=int, default=None, metavar="C", help="spectrum: draw counts up to C only")
    p.add_argument("--metric", choices=TREE_METRICS, default=None, help="distance (default jaccard), tree (default mash)")
    p.add_argument("--method", choices=METHODS, default=None, help="distance (default upgma), tree (default nj)")
    add_workers(p)
    p.add_argument("--max-memory", metavar="SIZE", default=None, help="distance, tree: bound the rows workers read at once, e.g. 512M")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary line")
    p.add_argument("--json", action="store_true", help="print what was drawn as JSON")
    p.set_defaults(func=cmd_plot)


def _usage(message: str) -> None:
    """A usage error: one line on stderr, exit status 2 (as the parser does)."""
    sys.stderr.write(f"kmerdb: error: {message} (see 'kmerdb plot --help')\n")
    raise SystemExit(2)


def cmd_plot(args) -> int:
    suffix = args.output.rsplit(".", 1)[-1].lower() if "." in args.output else ""
    if suffix not in FORMATS:
        _usage(f"-o {args.output}: the file name must end in .png, .svg or .pdf")
    if args.kind == "spectrum" and (args.metric or args.method):
        _usage("--metric and --method apply to the distance and tree plots")
    if args.kind != "spectrum" and (args.genome is not None or args.max_count is not None):
        _usage("--genome and --max-count apply to the spectrum plot")
    with api_open(args.db) as db, progress_callback(args.quiet) as progress:
        report = plot(
            db,
            args.kind,
            args.output,
            genome=args.genome,
            metric=args.metric,
            method=args.method,
            max_count=args.max_count,
            **workers(args),
            max_memory=args.max_memory,
            progress=progress,
        )
    if args.json:
        emit_json(
            {
                "path": report.path,
                "kind": report.kind,
                "format": report.format,
                "labels": list(report.labels),
                "metric": report.metric,
                "method": report.method,
                "size_inches": list(report.size),
            }
        )
    elif not args.quiet:
        what = f"{report.kind} of {len(report.labels)} genome(s)"
        if report.metric:
            what += f", {report.metric}, {report.method}"
        print(f"wrote {report.path}: {what}", file=sys.stderr)
    return 0
