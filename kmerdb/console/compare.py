"""Console commands that compare genomes: distance, tree, setop, spectrum."""

from __future__ import annotations

import json
import math
import sys

from rich.table import Table as RichTable
from rich.text import Text

from kmerdb import open as api_open
from kmerdb import setop as api_setop
from kmerdb.analysis.analytics import METRICS, TREE_METRICS, distance, iter_distances
from kmerdb.analysis.phylo import METHODS
from kmerdb.console.options import FORMATS, add_format, add_output, add_workers, output_format, usage_error, workers
from kmerdb.console.progress import progress_callback
from kmerdb.console.render import Table, emit_json, render, stdout_console, write_rows
from kmerdb.errors import InvalidParameterError
from kmerdb.ops.setops import OPS

__all__ = ["register"]


def _workers_and_memory(p) -> None:
    add_workers(p)
    p.add_argument("--max-memory", metavar="SIZE", default=None, help="bound the rows workers read at once, e.g. 512M")


def register(sub) -> None:
    p = sub.add_parser(
        "distance",
        help="pairwise genome distances or similarities from the index",
        description="Compare every pair of genomes by their k-mers: jaccard (|A&B|/|A|B|), jaccard-distance "
        "(1 - J), containment (row genome's k-mers found in the column genome / row genome's k-mers), "
        "mash (-1/k ln(2J/(1+J)), 1 when J = 0) or bray-curtis (index built with counts). Dense output is "
        "a labelled matrix; with --max-distance and/or --nearest, pairs are streamed as "
        "'a<TAB>b<TAB>value' lines (JSON Lines with --format json), for collections too large for a matrix. "
        "--format phylip writes distances (1 - value for jaccard and containment) with 0 on the diagonal.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("--metric", choices=tuple(METRICS), default="jaccard", help="default jaccard")
    add_format(p, FORMATS + ("phylip",))
    p.add_argument(
        "--max-distance",
        type=float,
        default=None,
        metavar="D",
        help="sparse: only pairs at distance <= D (1 - value for jaccard and containment)",
    )
    p.add_argument("--nearest", type=int, default=None, metavar="N", help="sparse: the N closest genomes of each genome")
    _workers_and_memory(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_distance)

    p = sub.add_parser(
        "tree",
        help="a Newick tree of the genomes",
        description="Build a tree of the genomes from a distance (neighbour joining, unrooted; or UPGMA, "
        "rooted) and print it as Newick. --metric jaccard uses 1 - J.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("--metric", choices=TREE_METRICS, default="mash", help="default mash")
    p.add_argument("--method", choices=METHODS, default="nj", help="nj (default) or upgma")
    _workers_and_memory(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help='print {"metric", "method", "labels", "newick"} as JSON')
    add_output(p)
    p.set_defaults(func=cmd_tree)

    p = sub.add_parser(
        "setop",
        help="write a set operation over genomes as a new database",
        description="Write the k-mers of a set operation over genomes of DB as a new database OUT with one "
        "genome column (labelled OP, or --label). union: in any selected genome; intersection: in all; "
        "difference: in the first selected genome and no other; at-least / exactly / at-most: in >= / == / "
        "<= Q selected genomes (at least one). With counts: sum (union, quorum), minimum (intersection), "
        "count in the first genome (difference).",
    )
    p.add_argument("op", metavar="OP", choices=OPS, help=", ".join(OPS))
    p.add_argument("out", metavar="OUT", help="database directory to create")
    p.add_argument("db", metavar="DB")
    p.add_argument("--genomes", nargs="+", metavar="LABEL", default=None, help="genomes to use, in order (default all)")
    p.add_argument("--q", type=int, default=None, metavar="N", help="quorum of at-least, exactly, at-most")
    p.add_argument("--label", default=None, help="label of the output's genome column")
    _workers_and_memory(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--force",
        action="store_true",
        help="remove the remains of a set operation into OUT that never finished (a finished database is kept)",
    )
    p.set_defaults(func=cmd_setop)

    p = sub.add_parser(
        "spectrum",
        help="k-mer count histograms",
        description="Print the k-mer count histogram (count, then the number of distinct k-mers with that "
        "count in each genome). From the count columns on an index built with counts, else the spectra "
        "recorded when the genomes were counted. --plot draws it in the terminal (log scale).",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("--genome", metavar="LABEL", default=None, help="only this genome")
    p.add_argument("--plot", action="store_true", help="draw the histogram in the terminal")
    p.add_argument("--max-count", type=int, default=None, metavar="C", help="plot: lump counts above C into one bar")
    add_format(p)
    add_workers(p)
    p.set_defaults(func=cmd_spectrum)


def cmd_distance(args) -> int:
    fmt = output_format(args)
    sparse = args.max_distance is not None or args.nearest is not None
    if sparse and fmt == "phylip":
        usage_error("distance", "a sparse output (--max-distance, --nearest) is table, tsv, csv or json, not phylip")
    with api_open(args.db) as db, progress_callback(args.quiet) as progress:
        if sparse:
            pairs = iter_distances(
                db,
                args.metric,
                max_distance=args.max_distance,
                nearest=args.nearest,
                **workers(args),
                max_memory=args.max_memory,
                progress=progress,
            )
            columns = ["a", "b", args.metric]
            if fmt == "json":  # JSON Lines: one pair per line, as they come
                for a, b, v in pairs:
                    sys.stdout.write(json.dumps({"a": a, "b": b, args.metric: v if math.isfinite(v) else None}) + "\n")
            elif fmt == "table":
                render(fmt, [Table(f"{args.metric} of genome pairs", columns, [list(p) for p in pairs])])
            else:
                write_rows(fmt, columns, pairs)
            sys.stdout.flush()
            return 0
        result = distance(db, args.metric, **workers(args), max_memory=args.max_memory, progress=progress)
    if fmt == "phylip":
        sys.stdout.write(result.to_phylip())
        sys.stdout.flush()
        return 0
    rows = [[label, *row] for label, row in zip(result.labels, result.matrix.tolist())]
    render(fmt, [Table(args.metric, (args.metric,) + tuple(result.labels), rows)], result.to_dict())
    return 0


def cmd_tree(args) -> int:
    with api_open(args.db) as db, progress_callback(args.quiet) as progress:
        result = distance(db, args.metric, **workers(args), max_memory=args.max_memory, progress=progress)
    newick = result.tree(args.method)
    if args.json:
        emit_json({"metric": args.metric, "method": args.method, "labels": list(result.labels), "newick": newick})
        return 0
    sys.stdout.write(newick + "\n")
    sys.stdout.flush()
    return 0


def cmd_setop(args) -> int:
    quorum = args.op in ("at-least", "exactly", "at-most")
    if quorum and args.q is None:
        usage_error("setop", f"{args.op} needs --q N")
    if not quorum and args.q is not None:
        usage_error("setop", f"{args.op} takes no --q")
    with progress_callback(args.quiet) as progress:
        report = api_setop(
            args.db,
            args.op,
            args.out,
            genomes=args.genomes,
            q=args.q,
            label=args.label,
            **workers(args),
            max_memory=args.max_memory,
            progress=progress,
            force=args.force,
        )
    summary = {
        "path": report.path,
        "op": report.op,
        "label": report.label,
        "genomes": list(report.genomes),
        "kmers": report.n_kmers,
        "seconds": report.seconds,
    }
    if args.json:
        emit_json(summary)
    elif not args.quiet:
        print(
            f"wrote {report.path}: {report.op} of {len(report.genomes)} genome(s), {report.n_kmers} distinct k-mers "
            f"as genome {report.label!r} in {report.seconds:.1f} s",
            file=sys.stderr,
        )
    return 0


def cmd_spectrum(args) -> int:
    with api_open(args.db) as db:
        spectra = db.spectrum(args.genome, **workers(args))
    labels = list(spectra)
    fmt = output_format(args)
    if args.plot and fmt != "json":
        for label in labels:
            _plot(label, spectra[label], args.max_count)
        return 0
    counts = sorted({c for pairs in spectra.values() for c, _ in pairs})
    table = {label: dict(pairs) for label, pairs in spectra.items()}
    rows = [[c, *(table[label].get(c, 0) for label in labels)] for c in counts]
    document = {"labels": labels, "spectra": {k: [list(p) for p in v] for k, v in spectra.items()}}
    render(fmt, [Table("k-mer spectrum (distinct k-mers per count)", ["count", *labels], rows)], document)
    return 0


def _plot(label: str, pairs: list[tuple[int, int]], max_count: int | None) -> None:
    """One horizontal bar per count, length on a log scale, in a rich table."""
    if max_count is None:
        max_count = 50
    if max_count < 1:
        raise InvalidParameterError("max_count", max_count, "must be >= 1")
    rows = [(str(c), n) for c, n in pairs if c <= max_count]
    over = sum(n for c, n in pairs if c > max_count)
    if over:
        rows.append((f">{max_count}", over))
    table = RichTable(title=f"k-mer spectrum of {label} (bar: log10 of distinct k-mers)", title_justify="left")
    table.add_column("count", justify="right")
    table.add_column("distinct k-mers", justify="right")
    table.add_column("", justify="left", no_wrap=True)
    if not rows:
        render("table", [Table(f"k-mer spectrum of {label}", ["count", "distinct k-mers"], [])])
        return
    top = max(math.log10(n + 1) for _, n in rows)
    width = 50
    for c, n in rows:
        bar = round(width * math.log10(n + 1) / top) if top > 0 else 0
        table.add_row(c, f"{n:,}", Text("█" * bar, style="cyan"))
    stdout_console().print(table)
