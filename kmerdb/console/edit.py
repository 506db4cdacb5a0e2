"""Console commands that change databases or look after them: merge, append, remove,
verify, vacuum, compact."""

from __future__ import annotations

import sys
from typing import Any

from kmerdb import merge as api_merge
from kmerdb import open as api_open
from kmerdb import vacuum as api_vacuum
from kmerdb import verify as api_verify
from kmerdb.console.options import add_format, add_min_count, add_workers, output_format, usage_error, workers
from kmerdb.console.progress import progress_callback
from kmerdb.console.render import Size, Table, emit_json, human_bytes, render
from kmerdb.errors import InvalidParameterError
from kmerdb.ops.inputs import parse_input_args

__all__ = ["register"]

_WAIT_HELP = "wait for another writer to finish instead of failing (optionally at most SECONDS)"


def _wait_arg(p) -> None:
    p.add_argument("--wait", nargs="?", const=True, default=False, type=float, metavar="SECONDS", help=_WAIT_HELP)


def register(sub) -> None:
    p = sub.add_parser(
        "merge",
        help="merge indexes into a new one, or into an existing one (--into)",
        description="Merge the genomes of SRC databases into a new database OUT (the first argument), "
        "whose columns are the genomes of every SRC in order; OUT starts as hard links to the first "
        "SRC's files and appears only once complete. With --into DB, every argument is a SRC and their "
        "genomes are added to DB in one transaction. Sources must have equal k, m, partition count and "
        "evidence.",
    )
    p.add_argument("paths", metavar="OUT SRC", nargs="+", help="OUT then SRC... (or only SRC... with --into)")
    p.add_argument("--into", metavar="DB", help="add the sources' genomes to the existing database DB")
    p.add_argument(
        "--mode",
        choices=("presence", "count"),
        default=None,
        help="presence bits only (default), or counts (every source must keep counts); with --into, DB decides",
    )
    p.add_argument("--rename-duplicates", action="store_true", help="rename repeated labels to LABEL.1, LABEL.2, ...")
    p.add_argument("--force", action="store_true", help="replace an existing database OUT once the merge succeeded")
    add_workers(p)
    _wait_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser(
        "append",
        help="add genomes from FASTA/FASTQ files to a database",
        description="Add genomes to DB in one transaction. Each INPUT is PATH (label = file name without "
        "FASTA/FASTQ and compression suffixes) or LABEL=PATH[,PATH...]; columns hold counts or presence "
        "as DB keeps them.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="PATH or LABEL=PATH[,PATH...]")
    p.add_argument("--manifest", metavar="TSV", help="file of 'label<TAB>path' lines (paths relative to it)")
    p.add_argument("--per-record", action="store_true", help="every record of every file is its own genome")
    p.add_argument("--rename-duplicates", action="store_true", help="rename labels DB has already to LABEL.1, ...")
    add_min_count(p)
    add_workers(p)
    _wait_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=cmd_append)

    p = sub.add_parser(
        "remove",
        help="remove genomes from a database",
        description="Remove the genomes LABEL... from DB in one transaction. Their columns leave the index "
        "at once; k-mers no genome holds any more are dropped by the next compact, and the bytes come back "
        "with compact and vacuum.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("labels", metavar="LABEL", nargs="+")
    _wait_arg(p)
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser(
        "verify",
        help="check a database: checksums, column invariant, dictionaries or MPHFs, evidence",
        description="Check every data file's size and checksum against the catalog, that every layer holds "
        "exactly one column per genome, that each layer's dictionary (or MPHF and evidence) finds every one "
        "of its k-mers in its own slot, and that the partitions and layers agree with the k-mers. Exit 0 if "
        "all is well, 1 if not.",
    )
    p.add_argument("db", metavar="DB")
    add_workers(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_format(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "vacuum",
        help="remove files no generation reaches and no open reader holds",
        description="Remove the data files that neither the current generation nor a generation still read "
        "by an open handle names (left by earlier generations, removals, compactions or killed writers).",
    )
    p.add_argument("db", metavar="DB")
    _wait_arg(p)
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=cmd_vacuum)

    p = sub.add_parser(
        "compact",
        help="rewrite each partition into one layer with one column group",
        description="Rewrite every partition of DB that has several layers or column groups (or columns of "
        "removed genomes) into one layer with one column group, in one transaction; k-mers no genome holds "
        "are dropped. Old files stay for open readers until a vacuum.",
    )
    p.add_argument("db", metavar="DB")
    add_workers(p)
    _wait_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=cmd_compact)


def _wait(args):
    return True if args.wait is True else (args.wait or False)


def _summary(db) -> dict:
    return {
        "path": db.path,
        "generation": db.generation,
        "genomes": list(db.genomes),
        "kmers": sum(rec.n_kmers for layers in db.snapshot.partitions for rec in layers),
        "layers": sum(len(layers) for layers in db.snapshot.partitions),
    }


def _say(args, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def cmd_merge(args) -> int:
    if args.into is not None:
        if args.force:
            raise InvalidParameterError("--force", True, "applies to a new OUT, not to --into")
        with api_open(args.into, mode="a") as db:
            if args.mode is not None and (args.mode == "count") != db.config.counts:
                raise InvalidParameterError(
                    "--mode", args.mode, f"{args.into} keeps {'counts' if db.config.counts else 'presence'}"
                )
            with progress_callback(args.quiet) as progress, db.transaction(wait=_wait(args)):
                db.merge(args.paths, rename_duplicates=args.rename_duplicates, **workers(args), progress=progress)
            summary = _summary(db)
        if args.json:
            emit_json(summary)
        else:
            _say(args, f"merged into {summary['path']}: {len(summary['genomes'])} genomes, generation {summary['generation']}")
        return 0
    if len(args.paths) < 2:
        raise InvalidParameterError("SRC", [], "give OUT and at least one SRC (or --into DB SRC...)")
    out, sources = args.paths[0], args.paths[1:]
    with progress_callback(args.quiet) as progress:
        report = api_merge(
            out,
            sources,
            mode=args.mode or "presence",
            rename_duplicates=args.rename_duplicates,
            force=args.force,
            **workers(args),
            progress=progress,
        )
    summary = {
        "path": report.path,
        "genomes": list(report.labels),
        "kmers": report.n_kmers,
        "files_linked": report.linked,
        "files_copied": report.copied,
        "seconds": report.seconds,
        "counts_dropped": list(report.counts_dropped),
    }
    if args.json:
        emit_json(summary)
    else:
        _say(
            args,
            f"merged {len(sources)} indexes into {report.path}: {report.n_genomes} genomes, "
            f"{report.n_kmers} distinct k-mers in {report.seconds:.1f} s",
        )
    return 0


def cmd_append(args) -> int:
    if not args.inputs and not args.manifest:
        usage_error("append", "no input: give INPUT files or --manifest")
    if args.min_count < 1:
        usage_error("append", f"--min-count {args.min_count}: must be at least 1")
    genomes = parse_input_args(args.inputs, manifest=args.manifest, per_record=args.per_record)
    with api_open(args.db, mode="a") as db:
        with progress_callback(args.quiet) as progress, db.transaction(wait=_wait(args)):
            db.append_genomes(
                genomes,
                rename_duplicates=args.rename_duplicates,
                min_count=args.min_count,
                **workers(args),
                progress=progress,
            )
        summary = _summary(db)
    if args.json:
        emit_json(summary)
    else:
        _say(args, f"appended {len(genomes)} genome(s) to {summary['path']}: generation {summary['generation']}")
    return 0


def cmd_remove(args) -> int:
    with api_open(args.db, mode="a") as db:
        with db.transaction(wait=_wait(args)):
            db.remove_genome(args.labels)
        summary = _summary(db)
    if args.json:
        emit_json(summary)
    else:
        _say(args, f"removed {', '.join(args.labels)} from {summary['path']}: generation {summary['generation']}")
    return 0


def cmd_verify(args) -> int:
    with progress_callback(args.quiet) as progress:
        report = api_verify(args.db, **workers(args), progress=progress)
    rows: list[list[Any]] = [
        ["generation", report.generation],
        ["genomes", report.n_genomes],
        ["partitions", report.n_partitions],
        ["layers", report.n_layers],
        ["files checked", report.n_files],
        ["bytes checked", Size(report.bytes_checked)],
        ["k-mers checked", report.n_kmers],
        ["unreferenced files", report.unreferenced_files],
        ["result", "ok" if report.ok else f"{len(report.problems)} problem(s)"],
    ]
    tables = [Table(f"verify {report.path}", ["check", "value"], rows)]
    if report.problems:
        tables.append(Table("problems", ["problem"], [[p] for p in report.problems]))
    render(output_format(args), tables, report.to_dict())
    return 0 if report.ok else 1


def cmd_vacuum(args) -> int:
    report = api_vacuum(args.db, wait=_wait(args))
    summary = {
        "path": report.path,
        "files_removed": report.files_removed,
        "bytes_removed": report.bytes_removed,
        "generations_dropped": list(report.generations_dropped),
        "generations_kept": list(report.generations_kept),
        "live_readers": report.live_readers,
    }
    if args.json:
        emit_json(summary)
    else:
        kept = f"; kept generation(s) {', '.join(map(str, report.generations_kept))} for open readers" if report.generations_kept else ""
        print(
            f"vacuumed {report.path}: removed {report.files_removed} file(s), {human_bytes(report.bytes_removed)}{kept}",
            file=sys.stderr,
        )
    return 0


def cmd_compact(args) -> int:
    with api_open(args.db, mode="a") as db:
        before = sum(len(layers) for layers in db.snapshot.partitions)
        with progress_callback(args.quiet) as progress, db.transaction(wait=_wait(args)):
            db.compact(**workers(args), progress=progress)
        summary = _summary(db)
    summary["layers_before"] = before
    if args.json:
        emit_json(summary)
    else:
        _say(
            args,
            f"compacted {summary['path']}: {before} -> {summary['layers']} layers, {summary['kmers']:,} k-mers, "
            f"generation {summary['generation']}",
        )
    return 0
