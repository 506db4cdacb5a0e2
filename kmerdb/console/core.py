"""Console commands of the core: build, info, genomes, query, lookup, dump, history."""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from kmerdb import build as api_build
from kmerdb import open as api_open
from kmerdb.console.options import (
    add_colours,
    add_format,
    add_min_count,
    add_output,
    add_workers,
    output_format,
    usage_error,
    workers,
)
from kmerdb.console.progress import progress_callback
from kmerdb.console.render import Size, Table, cell, describe_evidence, emit_json, render, stdout_console, write_rows
from kmerdb.core.kmers import kmers_from_strings, kmers_to_strings
from kmerdb.ops.export import format_table, header_line, write_dump
from kmerdb.ops.inputs import STDIN, is_stream, parse_input_args, read_records
from kmerdb.query import engine as query_engine
from kmerdb.query.engine import QueryResult

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "build",
        help="build a new index from FASTA/FASTQ files",
        description="Build a new index at DB. Each INPUT is PATH (label = file name without "
        "FASTA/FASTQ and compression suffixes) or LABEL=PATH[,PATH...]; '-' is standard input "
        "(label 'stdin', or LABEL=-). FASTA or FASTQ, gzip or not, is told from the content. "
        "DB must not exist.",
    )
    p.add_argument("db", metavar="DB", help="database directory to create")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="PATH or LABEL=PATH[,PATH...]")
    p.add_argument("--manifest", metavar="TSV", help="file of 'label<TAB>path' lines (paths relative to it)")
    p.add_argument("--per-record", action="store_true", help="every record of every file is its own genome")
    p.add_argument("-k", "--k", type=int, default=31, help="k-mer length, 1..31 (default 31)")
    p.add_argument("-m", "--m", type=int, default=None, help="minimizer length (default about k/2, odd)")
    p.add_argument("--partitions", type=int, default=None, help="number of partitions (default 64)")
    p.add_argument("--counts", action="store_true", help="keep k-mer occurrence counts (else presence bits)")
    add_colours(p)
    add_min_count(p)
    add_workers(p)
    p.add_argument("--max-memory", metavar="SIZE", default=None, help="memory budget of the whole build, e.g. 512M")
    p.add_argument(
        "--evidence",
        choices=("exact", "approx"),
        default="exact",
        help="membership evidence: exact, or approx (B-bit fingerprints, false positives ~2^-B) (default exact)",
    )
    p.add_argument("--fp-bits", type=int, default=None, metavar="B", help="approx: fingerprint bits, 1..32 (default 8)")
    p.add_argument(
        "--z",
        type=int,
        default=None,
        metavar="Z",
        help="approx: in query sequences a k-mer counts only inside a run of at least Z+1 found k-mers (default 0)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--force",
        action="store_true",
        help="remove what a build of DB that did not finish (killed) left there, and build anew",
    )
    p.add_argument("--json", action="store_true", help="print the build summary as JSON")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "info",
        help="show configuration, genomes and sizes",
        description="Describe a database: its configuration, sizes (live: the files of the current "
        "generation; reclaimable: files on disk it no longer names, which vacuum removes once no open "
        "reader holds their generation), the structures and the genomes.",
    )
    p.add_argument("db", metavar="DB")
    add_format(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "query",
        help="which genomes hold the k-mers of sequences",
        description="For every sequence of SEQS (FASTA/FASTQ files, gzip or not, the format told from "
        "the content; '-' for standard input), count how many of its k-mer positions each genome "
        "holds. Reads stream: they are queried in batches of about "
        f"{query_engine.QUERY_BATCH_BASES:,} bases (a longer record is a batch of its own), so memory "
        "stays bounded whatever the input size, and TSV/CSV/JSON rows are written batch by batch "
        "(a table on a terminal is drawn at the end). Columns: sequence, n_kmers, the hits of every "
        "genome, best_ratio (hits / n_kmers of the genome with most hits). With --kmers, SEQS are "
        "k-mers (literal strings, or text files of one k-mer per line, '-' for standard input) and "
        "each is looked up on its own.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("seqs", metavar="SEQS", nargs="+")
    p.add_argument("--kmers", action="store_true", help="SEQS are k-mers, not sequences")
    p.add_argument(
        "--min-ratio",
        type=_ratio,
        default=None,
        metavar="R",
        help="omit sequences whose best_ratio is below R (0..1)",
    )
    p.add_argument(
        "--best-hit",
        action="store_true",
        help="columns sequence, n_kmers, best_hit (the genome with most hits; ties listed, comma-separated; "
        "empty without any hit), hits, best_ratio instead of one column per genome",
    )
    add_format(p)
    p.add_argument("-t", "--threads", type=int, default=1, help="ways to split sequence queries: this process and N-1 forked workers (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (drawn on a terminal once the input outgrows one batch)")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "lookup",
        help="presence or count of single k-mers in every genome",
        description="Look up each KMER (a literal k-mer, a text file of one k-mer per line, or '-' for "
        "such lines on standard input) in either orientation; prints 'kmer<TAB>label1...' rows of counts (counts index) or 0/1.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("kmers", metavar="KMER", nargs="+", help="k-mer, file of k-mers, or '-' (standard input)")
    add_format(p)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("genomes", help="list the genomes (columns)", description="List the genomes in column order.")
    p.add_argument("db", metavar="DB")
    add_format(p)
    p.set_defaults(func=cmd_genomes)

    p = sub.add_parser(
        "history",
        help="operations committed to the database",
        description="List committed operations, oldest first: command, arguments, kmerdb version, "
        "time and the generation each produced.",
    )
    p.add_argument("db", metavar="DB")
    add_format(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "dump",
        help="stream every k-mer with one column per genome",
        description="Write 'kmer<TAB>label1<TAB>label2...' and then one line per canonical k-mer with its "
        "count in each genome (0/1 presence when the index keeps no counts). Rows stream as they are "
        "read, so the output is tsv (or csv) even on a terminal.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("--format", choices=("tsv", "csv"), default="tsv", help="output format (default tsv)")
    add_output(p)
    p.set_defaults(func=cmd_dump)


def cmd_build(args) -> int:
    if not args.inputs and not args.manifest:
        usage_error("build", "no input: give INPUT files or --manifest")
    if args.min_count < 1:
        usage_error("build", f"--min-count {args.min_count}: must be at least 1")
    genomes = parse_input_args(args.inputs, manifest=args.manifest, per_record=args.per_record)
    with progress_callback(args.quiet) as progress:
        report = api_build(
            args.db,
            genomes,
            k=args.k,
            m=args.m,
            partitions=args.partitions,
            counts=args.counts,
            min_count=args.min_count,
            **workers(args),
            max_memory=args.max_memory,
            evidence=args.evidence,
            fp_bits=args.fp_bits,
            z=args.z,
            progress=progress,
            force=args.force,
            colours=args.colours,
        )
    summary = {"path": report.path, "genomes": report.n_genomes, "kmers": report.n_kmers, "seconds": report.seconds}
    if args.json:
        emit_json(summary)
    elif not args.quiet:
        print(
            f"built {report.path}: {report.n_genomes} genomes, {report.n_kmers} distinct k-mers "
            f"in {report.seconds:.1f} s",
            file=sys.stderr,
        )
    return 0


#: Genomes listed by ``kmerdb info`` (the rest are counted).
_INFO_GENOMES = 50


def cmd_info(args) -> int:
    with api_open(args.db) as db:
        info = db.info()
    fmt = output_format(args)
    cfg = info["config"]
    props: list[list[Any]] = [
        ["path", info["path"]],
        ["format version", info["format_version"]],
        ["generation", info["generation"]],
        ["k", cfg["k"]],
        ["m", cfg["m"]],
        ["partitions", cfg["n_partitions"]],
        ["evidence", describe_evidence(cfg["evidence"], cfg["fp_bits"], cfg["z"])],
        ["columns", "counts" if cfg["counts"] else "presence"],
        ["colours", cfg.get("colours", "auto")],
        ["genomes", info["n_genomes"]],
        ["distinct k-mers", info["n_kmers"]],
        ["layers", info["n_layers"]],
        ["size on disk", Size(info["bytes_on_disk"])],
        ["live", Size(info["live_bytes"])],
        ["reclaimable (vacuum)", Size(info["reclaimable_bytes"])],
        ["bits per k-mer", info["bits_per_kmer"]],
    ]
    if "unitigs" in info:
        u = info["unitigs"]
        props += [["unitigs", u["count"]], ["mean unitig k-mers", u["mean_kmers"]], ["mean unitig bases", u["mean_bases"]]]
    structures = [[role, Size(s["bytes"]), s["bits_per_kmer"]] for role, s in sorted(info["structures"].items())]
    # a table on a terminal shows the first genomes only (100,000 rows take minutes to lay
    # out); TSV, CSV and JSON list them all
    listed = info["genomes"] if fmt != "table" else info["genomes"][:_INFO_GENOMES]
    genomes = [[i, g["label"], g["n_kmers"], g["total"], g["min_count"]] for i, g in enumerate(listed)]
    render(
        fmt,
        [
            Table("kmerdb", ["property", "value"], props),
            Table("structures", ["structure", "size", "bits/k-mer"], structures),
            Table("genomes", ["#", "label", "distinct k-mers", "k-mer occurrences", "min count"], genomes),
        ],
        info,
    )
    if len(info["genomes"]) > len(listed):
        stdout_console().print(
            f"... and {len(info['genomes']) - len(listed):,} more genomes ('kmerdb genomes' or 'info --format tsv' list them all)"
        )
    return 0


def _read_kmers(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item == STDIN:
            out.extend(line.strip() for line in sys.stdin if line.strip())
        elif os.path.isfile(item):
            with open(item, encoding="ascii", errors="replace") as fh:
                out.extend(line.strip() for line in fh if line.strip())
        else:
            out.append(item)
    return out


def _print_lookup(db, items, fmt: str) -> None:
    kmers = _read_kmers(items)
    rows = db.lookup(kmers, counts=db.config.counts)
    if fmt == "json":
        canon = kmers_to_strings(kmers_from_strings(kmers, db.config.k), db.config.k)
        emit_json(
            {
                "labels": list(db.genomes),
                "results": [
                    {"kmer": q, "canonical": bytes(c).decode(), "genomes": dict(zip(db.genomes, r.astype(int).tolist()))}
                    for q, c, r in zip(kmers, canon, rows)
                ],
            }
        )
        return
    if fmt == "table":
        render(fmt, [Table("k-mers", ("kmer",) + db.genomes, [[q, *r.tolist()] for q, r in zip(kmers, rows)])])
        return
    # tsv and csv: one byte matrix, without a Python loop over k-mers
    sep = "," if fmt == "csv" else "\t"
    sys.stdout.flush()
    out = sys.stdout.buffer
    out.write(header_line(("kmer",) + db.genomes, sep))
    letters = np.frombuffer("".join(k_.upper() for k_ in kmers).encode(), dtype=np.uint8)
    out.write(format_table(letters.reshape(len(kmers), db.config.k), rows.astype(np.uint32), sep))
    out.flush()


def cmd_lookup(args) -> int:
    with api_open(args.db) as db:
        _print_lookup(db, args.kmers, output_format(args))
    return 0


def cmd_genomes(args) -> int:
    with api_open(args.db) as db:
        records = db.genome_records
    rows: list[dict[str, Any]] = [
        {
            "column": i,
            "label": g.label,
            "n_kmers": g.n_kmers,
            "total": g.total,
            "min_count": g.min_count,
            "sources": list(g.sources),
        }
        for i, g in enumerate(records)
    ]
    render(
        output_format(args),
        [
            Table(
                "genomes",
                ["#", "label", "distinct k-mers", "k-mer occurrences", "min count", "sources"],
                [
                    [r["column"], r["label"], r["n_kmers"], r["total"], r["min_count"], ", ".join(r["sources"])]
                    for r in rows
                ],
            )
        ],
        rows,
    )
    return 0


def cmd_history(args) -> int:
    with api_open(args.db) as db:
        records = db.history()
    rows = [
        {
            "seq": h.seq,
            "command": h.command,
            "args": h.args,
            "version": h.version,
            "time": datetime.datetime.fromtimestamp(h.time, datetime.UTC).isoformat(timespec="seconds"),
            "generation": h.generation,
        }
        for h in records
    ]
    render(
        output_format(args),
        [
            Table(
                "history",
                ["#", "time (UTC)", "command", "generation", "version", "arguments"],
                [[r["seq"], r["time"], r["command"], r["generation"], r["version"], _args_text(r["args"])] for r in rows],
            )
        ],
        rows,
    )
    return 0


def _args_text(args: dict) -> str:
    # whole, however long: a table wraps it on a terminal, tsv keeps it on one line
    return ", ".join(f"{k}={v}" for k, v in args.items())


def _ratio(text: str) -> float:
    """``--min-ratio``: a number from 0 to 1 (anything else is a usage error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


class _Reader:
    """The records of every SEQS input in turn, and how far into them the reading is.

    Progress is in bytes of the files (compressed bytes for gzip) against their sizes; with a
    stream among the inputs (``-``, a pipe) the size is unknown, so it is in bases read.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        streams = any(is_stream(p) for p in self.paths)
        self.phase = "query-stream" if streams else "query"
        self.total = None if streams else sum(os.path.getsize(p) for p in self.paths)
        self.done = 0  # bytes of the files finished, or bases
        self._at = 0  # bytes into the current file

    def _seen(self, position: int) -> None:
        self._at = position

    def records(self) -> Iterator[tuple[str, bytes]]:
        for path in self.paths:
            self._at = 0
            for name, seq in read_records(path, progress=self._seen if self.total is not None else None):
                if self.total is None:
                    self.done += len(seq)
                yield name, seq
            if self.total is not None:
                self.done += os.path.getsize(path)
                self._at = 0

    @property
    def position(self) -> int:
        return self.done + self._at


def _summaries(result: QueryResult, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per sequence: the best ratio, the most hits, and the genomes with that many (ties, joined)."""
    hits = result.hits
    most = hits.max(axis=1) if hits.shape[1] else np.zeros(hits.shape[0], dtype=np.int64)
    best = result.ratio.max(axis=1) if hits.shape[1] else np.zeros(hits.shape[0])
    tied = (hits == most[:, None]) & (most[:, None] > 0)
    names = np.asarray(labels, dtype=object)
    return best, most, [",".join(names[row]) for row in tied]


def _query_rows(
    result: QueryResult, labels: Sequence[str], best_hit: bool, min_ratio: float | None, text: bool
) -> list[list[Any]]:
    """The rows of one batch; with ``text`` as the strings TSV and CSV write.

    TSV and CSV cells are made here, a batch at a time (numbers to digits by numpy, ratios by
    the renderer's one float rule), not one by one through the renderer: formatting cell by
    cell took longer than the queries themselves.
    """
    best, most, winners = _summaries(result, labels)
    keep = np.flatnonzero(np.ones(best.size, dtype=bool) if min_ratio is None else best >= min_ratio)
    names = result.names or ()
    rows: list[list[Any]] = []
    if text:
        n_kmers = result.n_kmers[keep].astype(str).tolist()
        ratios = [cell(r, "tsv") for r in best[keep].tolist()]
        if best_hit:
            most_text = most[keep].astype(str).tolist()
            for j, i in enumerate(keep.tolist()):
                rows.append([names[i], n_kmers[j], winners[i], most_text[j], ratios[j]])
        else:
            hits = result.hits[keep].astype(str).tolist()
            for j, i in enumerate(keep.tolist()):
                rows.append([names[i], n_kmers[j], *hits[j], ratios[j]])
        return rows
    for i in keep.tolist():
        if best_hit:
            rows.append([names[i], int(result.n_kmers[i]), winners[i], int(most[i]), float(best[i])])
        else:
            rows.append([names[i], int(result.n_kmers[i]), *result.hits[i].tolist(), float(best[i])])
    return rows


def _write_text(fmt: str, columns: Sequence[str], batches: Iterator[list[list[str]]]) -> None:
    """A header, then the rows of every batch as they come (``tsv`` or ``csv``)."""
    out = sys.stdout
    write_rows(fmt, columns, [], out)
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    for rows in batches:
        if writer is not None:
            writer.writerows(rows)
        elif rows:
            # record names are one word (read_records cuts the header at white space): no tab inside
            out.write("\n".join("\t".join(row) for row in rows) + "\n")


def _query_documents(result: QueryResult, labels: Sequence[str], min_ratio: float | None) -> Iterator[dict]:
    best, _, winners = _summaries(result, labels)
    names = result.names or ()
    ratio = np.round(result.ratio, 6)
    for i in range(best.size):
        if min_ratio is not None and best[i] < min_ratio:
            continue
        yield {
            "name": names[i],
            "n_kmers": int(result.n_kmers[i]),
            "found_raw": int(result.found_raw[i]),
            "found": int(result.found[i]),
            "best_hit": winners[i].split(",") if winners[i] else [],
            "best_ratio": float(best[i]),
            "hits": dict(zip(labels, result.hits[i].tolist())),
            "ratio": dict(zip(labels, ratio[i].tolist())),
        }


def cmd_query(args) -> int:
    fmt = output_format(args)
    if args.kmers and (args.best_hit or args.min_ratio is not None):
        usage_error("query", "--best-hit and --min-ratio apply to sequences, not to --kmers")
    with api_open(args.db) as db:
        if args.kmers:
            _print_lookup(db, args.seqs, fmt)
            return 0
        labels = db.genomes
        reader = _Reader(args.seqs)
        batches = query_engine.query_batches(db.query, reader.records(), threads=args.threads)
        with contextlib.ExitStack() as stack:
            results = _with_progress(batches, reader, stack, args.quiet)
            if fmt == "json":
                _stream_json(results, labels, db.config.z, args.min_ratio)
                return 0
            columns = (
                ("sequence", "n_kmers", "best_hit", "hits", "best_ratio")
                if args.best_hit
                else ("sequence", "n_kmers") + tuple(labels) + ("best_ratio",)
            )
            if fmt == "table":  # a table is laid out once all rows are in
                rows = [row for r in results for row in _query_rows(r, labels, args.best_hit, args.min_ratio, False)]
                render(fmt, [Table("query", columns, rows)])
            else:
                _write_text(fmt, columns, (_query_rows(r, labels, args.best_hit, args.min_ratio, True) for r in results))
                sys.stdout.flush()
    return 0


def _with_progress(batches: Iterator[QueryResult], reader: _Reader, stack: contextlib.ExitStack, quiet: bool) -> Iterator[QueryResult]:
    """The batches, flushing stdout after each; a bar on stderr from the second batch on
    (an input of one batch is over before a bar would tell anything)."""
    progress = None
    for n, result in enumerate(batches):
        if n == 1 and not quiet:
            progress = stack.enter_context(progress_callback(quiet))
        if progress is not None:
            progress(reader.phase, reader.position, reader.total)
        yield result
        sys.stdout.flush()
    if progress is not None:
        progress(reader.phase, reader.total if reader.total is not None else reader.position, reader.total)


def _stream_json(results: Iterator[QueryResult], labels: Sequence[str], z: int, min_ratio: float | None) -> None:
    """The query document, written result by result: ``{"labels", "z", "results": [...]}``."""
    out = sys.stdout
    out.write('{\n  "labels": ' + json.dumps(list(labels)) + ',\n  "z": ' + json.dumps(z) + ',\n  "results": [')
    first = True
    for result in results:
        for doc in _query_documents(result, labels, min_ratio):
            out.write(("\n    " if first else ",\n    ") + json.dumps(doc))
            first = False
        out.flush()
    out.write("\n  ]\n}\n" if not first else "]\n}\n")
    out.flush()


def cmd_dump(args) -> int:
    with api_open(args.db) as db:
        sys.stdout.flush()
        write_dump(db, sys.stdout.buffer, sep="," if args.format == "csv" else "\t")
        sys.stdout.buffer.flush()
    return 0
