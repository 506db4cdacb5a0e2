"""Console commands about how k-mers are stored: export (unitigs), reindex, stats."""

from __future__ import annotations

import sys

from kmerdb import open as api_open
from kmerdb import reindex as api_reindex
from kmerdb.console.options import add_format, add_workers, output_format, workers
from kmerdb.console.progress import progress_callback
from kmerdb.console.render import Size, Table, describe_evidence, emit_json, render
from kmerdb.ops.export import open_output

__all__ = ["register"]

_WAIT_HELP = "wait for another writer to finish instead of failing (optionally at most SECONDS)"


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write the unitigs of every layer as FASTA",
        description="Write the k-mers of DB as FASTA, one record per line: the maximal unitigs of every "
        "layer (the header says '>ID LN:i:LENGTH KN:i:KMERS partition=P layer=L'). With --genome LABEL, "
        "only the k-mers of that genome, compacted layer by layer. -o FILE.gz writes gzip.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("--unitigs", action="store_true", help="unitig FASTA: the default and only format (accepted as is)")
    p.add_argument("--genome", metavar="LABEL", default=None, help="only the k-mers of this genome")
    p.add_argument(
        "-o", "--output", metavar="FILE", default=None, help="write to FILE instead of stdout (gzip if it ends in .gz)"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "reindex",
        help="rebuild the evidence of every layer: exact <-> approx",
        description="Rebuild the membership evidence of every layer of DB from its unitigs, in one "
        "transaction: exact (a minimizer dictionary that finds each k-mer's place in the unitigs; no false "
        "positives) or approx (an MPHF and B-bit fingerprints; a lookup of an absent k-mer is a false "
        "positive with probability about 2^-B, and in query sequences a k-mer counts only inside a run of "
        "at least Z+1 found k-mers). Unitigs stay; column groups are rewritten in the new slot order when "
        "it changes; changing only Z writes no file.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("--evidence", choices=("exact", "approx"), required=True, help="the evidence to have")
    p.add_argument(
        "--fp-bits", type=int, default=None, metavar="B", help="approx: fingerprint bits, 1..32 (default: current, or 8)"
    )
    p.add_argument(
        "--z", type=int, default=None, metavar="Z", help="approx: consecutive-hit rule, >= 0 (default: current, or 0)"
    )
    add_workers(p)
    p.add_argument("--wait", nargs="?", const=True, default=False, type=float, metavar="SECONDS", help=_WAIT_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser(
        "stats",
        help="bits per k-mer of each structure, and the unitigs",
        description="Show the size of each structure of DB in bits per distinct k-mer (dictionary, MPHF, "
        "evidence, unitigs, columns; 'index' is all but the columns), and the number, mean length, longest "
        "and N50 of the unitigs.",
    )
    p.add_argument("db", metavar="DB")
    add_format(p)
    p.set_defaults(func=cmd_stats)


def cmd_export(args) -> int:
    with api_open(args.db) as db:
        if args.output:
            with open_output(args.output) as fh:
                db.export_unitigs(fh, genome=args.genome)
        else:
            db.export_unitigs(sys.stdout.buffer, genome=args.genome)
            sys.stdout.buffer.flush()
    return 0


def cmd_reindex(args) -> int:
    with progress_callback(args.quiet) as progress:
        report = api_reindex(
            args.db,
            args.evidence,
            fp_bits=args.fp_bits,
            z=args.z,
            **workers(args),
            wait=True if args.wait is True else (args.wait or False),
            progress=progress,
        )
    summary = {
        "path": report.path,
        "evidence": report.evidence,
        "fp_bits": report.fp_bits,
        "z": report.z,
        "layers_rewritten": report.layers_rewritten,
        "generation": report.generation,
        "seconds": report.seconds,
    }
    if args.json:
        emit_json(summary)
    elif not args.quiet:
        kind = describe_evidence(report.evidence, report.fp_bits, report.z)
        print(
            f"reindexed {report.path}: evidence {kind}, {report.layers_rewritten} layer(s) rewritten, "
            f"generation {report.generation}, {report.seconds:.1f} s",
            file=sys.stderr,
        )
    return 0


def cmd_stats(args) -> int:
    with api_open(args.db) as db:
        stats = db.stats()
    ev = stats["evidence"]
    rows: list[list] = []
    for role in ("dictionary", "mphf", "evidence", "unitigs", "columns"):
        s = stats["structures"].get(role)
        if s is not None and (s["bytes"] or role in ("unitigs", "columns")):
            rows.append([role, Size(s["bytes"]), s["bits_per_kmer"]])
    for kind, s in sorted(stats.get("column_kinds", {}).items()):
        rows.append([f"  columns: {kind} ({s['groups']} groups)", Size(s["bytes"]), s["bits_per_kmer"]])
    classes = stats.get("classes", {})
    if classes.get("groups"):
        rows.append(["  class ids", Size(classes["id_bytes"]), classes["id_bits_per_kmer"]])
        rows.append(["  class tables", Size(classes["table_bytes"]), classes["table_bits_per_kmer"]])
        if classes["count_bytes"]:
            rows.append(["  class counts", Size(classes["count_bytes"]), classes["count_bits_per_kmer"]])
    idx = stats["index"]
    rows.append(["index (dictionary or mphf + evidence, unitigs)", Size(idx["bytes"]), idx["bits_per_kmer"]])
    u = stats["unitigs"]
    if ev["kind"] == "exact":
        kind = "exact"
    else:
        fpr = ev["false_positive_rate"]
        kind = f"approx: b={ev['fp_bits']} (false positives ~{fpr:.2g} per lookup), z={ev['z']}"
    props = [
        ["evidence", kind],
        ["distinct k-mers", stats["n_kmers"]],
        ["layers", stats["n_layers"]],
        ["unitigs", u["count"]],
        ["mean unitig k-mers", u["mean_kmers"]],
        ["mean unitig bases", u["mean_bases"]],
        ["longest unitig bases", u.get("longest_bases", 0)],
        ["N50 bases", u.get("n50_bases", 0)],
    ]
    if classes.get("groups"):
        props.append(["colour classes (summed over layers)", classes["count"]])
        props.append(["  written as differences", classes["differences"]])
    render(
        output_format(args),
        [
            Table(f"structures of {stats['n_kmers']:,} distinct k-mers", ["structure", "size", "bits/k-mer"], rows),
            Table("unitigs and evidence", ["property", "value"], props),
        ],
        stats,
    )
    return 0
