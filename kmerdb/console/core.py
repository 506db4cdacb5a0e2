"""Console commands of the core: build, info, genomes, query, lookup, dump, history."""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from kmerdb import build as api_build
from kmerdb import open as api_open
from kmerdb.console.options import add_format, add_workers, output_format, usage_error, workers
from kmerdb.console.progress import progress_callback
from kmerdb.console.render import Size, Table, describe_evidence, emit_json, render, stdout_console
from kmerdb.core.kmers import kmers_from_strings, kmers_to_strings
from kmerdb.errors import InputError
from kmerdb.ops.export import format_table, header_line, write_dump
from kmerdb.ops.inputs import parse_input_args, read_records

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "build",
        help="build a new index from FASTA/FASTQ files",
        description="Build a new index at DB. Each INPUT is PATH (label = file name without "
        "FASTA/FASTQ and compression suffixes) or LABEL=PATH[,PATH...]. DB must not exist.",
    )
    p.add_argument("db", metavar="DB", help="database directory to create")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="PATH or LABEL=PATH[,PATH...]")
    p.add_argument("--manifest", metavar="TSV", help="file of 'label<TAB>path' lines (paths relative to it)")
    p.add_argument("--per-record", action="store_true", help="every record of every file is its own genome")
    p.add_argument("-k", "--k", type=int, default=31, help="k-mer length, 1..31 (default 31)")
    p.add_argument("-m", "--m", type=int, default=None, help="minimizer length (default about k/2.5, odd)")
    p.add_argument("--partitions", type=int, default=None, help="number of partitions (default 64)")
    p.add_argument("--counts", action="store_true", help="keep k-mer occurrence counts (else presence bits)")
    p.add_argument(
        "--min-count",
        type=int,
        default=1,
        metavar="N",
        help="index a k-mer for a genome only if it occurs at least N times in its inputs (KMC -ci); 2 or 3 drops most read errors; the spectrum still shows the counts cut off (default 1)",
    )
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
        description="For every sequence of SEQS (FASTA/FASTQ files, '-' for FASTA on stdin), count how "
        "many of its k-mer positions each genome holds. With --kmers, SEQS are k-mers (literal strings, "
        "or text files of one k-mer per line) and each is looked up on its own.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("seqs", metavar="SEQS", nargs="+")
    p.add_argument("--kmers", action="store_true", help="SEQS are k-mers, not sequences")
    add_format(p)
    p.add_argument("-t", "--threads", type=int, default=1, help="ways to split sequence queries: this process and N-1 forked workers (default 1)")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "lookup",
        help="presence or count of single k-mers in every genome",
        description="Look up each KMER (a literal k-mer, or a text file of one k-mer per line) in "
        "either orientation; prints 'kmer<TAB>label1...' rows of counts (counts index) or 0/1.",
    )
    p.add_argument("db", metavar="DB")
    p.add_argument("kmers", metavar="KMER", nargs="+")
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


def _read_sequences(paths):
    names, seqs = [], []
    for path in paths:
        if path == "-":
            names_seqs = _parse_stdin_fasta()
        else:
            names_seqs = read_records(path)
        for name, seq in names_seqs:
            names.append(name)
            seqs.append(seq)
    return names, seqs


def _parse_stdin_fasta():
    data = sys.stdin.buffer.read()
    with tempfile.NamedTemporaryFile(suffix=".fa") as tmp:
        tmp.write(data)
        tmp.flush()
        if not data.strip():
            raise InputError("<stdin>", "empty input")
        yield from read_records(tmp.name)


def _read_kmers(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if os.path.isfile(item):
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
        {"column": i, "label": g.label, "n_kmers": g.n_kmers, "total": g.total, "sources": list(g.sources)}
        for i, g in enumerate(records)
    ]
    render(
        output_format(args),
        [
            Table(
                "genomes",
                ["#", "label", "distinct k-mers", "k-mer occurrences", "sources"],
                [[r["column"], r["label"], r["n_kmers"], r["total"], ", ".join(r["sources"])] for r in rows],
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


def cmd_query(args) -> int:
    fmt = output_format(args)
    with api_open(args.db) as db:
        if args.kmers:
            _print_lookup(db, args.seqs, fmt)
            return 0
        names, seqs = _read_sequences(args.seqs)
        result = db.query(seqs, names=names, threads=args.threads)
    if fmt == "json":
        emit_json(
            {
                "labels": list(result.labels),
                "z": result.z,
                "results": [
                    {
                        "name": n,
                        "n_kmers": int(result.n_kmers[i]),
                        "found_raw": int(result.found_raw[i]),
                        "found": int(result.found[i]),
                        "hits": dict(zip(result.labels, result.hits[i].tolist())),
                        "ratio": dict(zip(result.labels, np.round(result.ratio[i], 6).tolist())),
                    }
                    for i, n in enumerate(names)
                ],
            }
        )
        return 0
    rows = ([n, int(result.n_kmers[i]), *result.hits[i].tolist()] for i, n in enumerate(names))
    render(fmt, [Table("query", ("sequence", "n_kmers") + tuple(result.labels), list(rows))])
    return 0


def cmd_dump(args) -> int:
    with api_open(args.db) as db:
        sys.stdout.flush()
        write_dump(db, sys.stdout.buffer, sep="," if args.format == "csv" else "\t")
        sys.stdout.buffer.flush()
    return 0
