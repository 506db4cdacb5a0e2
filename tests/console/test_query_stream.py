"""Console: streaming queries (batches, stdin, gzip, the format from the content), the
best_ratio column, --min-ratio, --best-hit, progress, and '-' for lookup and build."""

import contextlib
import csv
import gzip
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import oracle
import pytest
from conftest import FIXTURES, GENOMES
from conftest import run_console as run

import kmerdb
from kmerdb.console import core as console_core
from kmerdb.console import main
from kmerdb.database import Database
from kmerdb.query import engine as query_engine

READ_LENGTH = 150
BATCH = 5_000  # bases per batch in these tests: the reads below make about 12 batches


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "fx.kmerdb"
    inputs = [f"{label}={','.join(paths)}" for label, paths in GENOMES.items()]
    assert main(["build", str(path), *inputs, "-k", "21", "--counts", "--partitions", "4", "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def reads(tmp_path_factory):
    """A FASTQ of 400 reads (60,000 bases, many batches of BATCH), from every genome and random."""
    rng = np.random.default_rng(12)
    genomes = [s for paths in GENOMES.values() for _, s in oracle.read_sequences(paths[0]) if len(s) > READ_LENGTH]
    lines = []
    for i in range(400):
        g = genomes[i % len(genomes)]
        if i % 7 == 6:  # some reads from no genome
            seq = "".join(rng.choice(list("ACGT"), READ_LENGTH))
        else:
            lo = int(rng.integers(0, len(g) - READ_LENGTH))
            seq = g[lo : lo + READ_LENGTH]
        lines += [f"@read{i} extra words", seq, "+", "I" * len(seq)]
    path = tmp_path_factory.mktemp("reads") / "reads.fq"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(query_engine, "QUERY_BATCH_BASES", BATCH)


def api_answer(db_path, path):
    """db.query on all reads at once: the reference the streamed rows must equal."""
    recs = oracle.read_sequences(path)
    with kmerdb.open(db_path) as handle:
        result = handle.query([s for _, s in recs], names=[n for n, _ in recs])
    return result


def parse_tsv(text):
    lines = text.splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_streamed_rows_equal_the_api_on_all_reads(db, reads, capsys, small_batches):
    code, out, _ = run(capsys, "query", db, reads)
    assert code == 0
    header, rows = parse_tsv(out)
    assert header == ["sequence", "n_kmers", "A", "B", "C", "best_ratio"]
    result = api_answer(db, reads)
    assert [r[0] for r in rows] == list(result.names)
    for i, row in enumerate(rows):
        assert int(row[1]) == result.n_kmers[i]
        assert [int(v) for v in row[2:5]] == result.hits[i].tolist()
        assert float(row[5]) == result.ratio[i].max()


def test_batches_bound_the_reads_held(db, reads, capsys, monkeypatch, small_batches):
    calls = []
    written_before = []
    original = Database.query

    def counting(self, sequences, *args, **kwargs):
        calls.append(sum(len(s) for s in sequences))
        written_before.append(capsys.readouterr().out)  # what reached stdout before this batch
        return original(self, sequences, *args, **kwargs)

    monkeypatch.setattr(Database, "query", counting)
    assert run(capsys, "query", db, reads)[0] == 0
    total = 400 * READ_LENGTH
    assert sum(calls) == total
    # a batch closes with the read that reaches BATCH bases: never more than one read over
    assert all(n < BATCH + READ_LENGTH for n in calls)
    assert len(calls) == -(-total // BATCH)
    # rows go out batch by batch: the first batch's rows are written before the second is queried
    assert written_before[0].splitlines() == ["sequence\tn_kmers\tA\tB\tC\tbest_ratio"]
    assert len(written_before[1].splitlines()) == -(-BATCH // READ_LENGTH)


def test_fastq_named_fa_and_gzip_files(db, reads, tmp_path, capsys, small_batches):
    _, expected, _ = run(capsys, "query", db, reads)
    named_fa = tmp_path / "reads.fa"
    shutil.copy(reads, named_fa)
    code, out, _ = run(capsys, "query", db, named_fa)
    assert code == 0 and out == expected
    gz = tmp_path / "reads.fa.gz"
    gz.write_bytes(gzip.compress(reads.read_bytes()))
    code, out, _ = run(capsys, "query", db, gz)
    assert code == 0 and out == expected


def _console(*argv, stdin: bytes | None = None):
    return subprocess.run(
        [sys.executable, "-m", "kmerdb", *map(str, argv)], input=stdin, capture_output=True
    )


def test_stdin_plain_and_gzip(db, reads, capsys):
    _, expected, _ = run(capsys, "query", db, reads)
    proc = _console("query", db, "-", stdin=reads.read_bytes())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == expected
    proc = _console("query", db, "-", stdin=gzip.compress(reads.read_bytes()))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == expected
    proc = _console("query", db, "-", stdin=b"")
    assert proc.returncode == 1 and b"-: empty stream" in proc.stderr and proc.stderr.count(b"\n") == 1


def test_stdin_on_a_terminal_is_refused(db, capsys, monkeypatch):
    with open("/dev/null", "rb") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        monkeypatch.setattr("kmerdb.ops.inputs.os.isatty", lambda fd: fd == stdin.fileno())
        code, _, err = run(capsys, "query", db, "-")
    assert code == 1 and "standard input is a terminal" in err and err.count("\n") == 1


@pytest.mark.parametrize("min_ratio", [None, 0.0, 0.5, 0.95, 1.0])
def test_min_ratio_and_best_hit_against_the_api(db, reads, capsys, small_batches, min_ratio):
    result = api_answer(db, reads)
    labels = list(result.labels)
    ratio = result.ratio
    extra = [] if min_ratio is None else ["--min-ratio", str(min_ratio)]
    kept = [i for i in range(len(result.names)) if min_ratio is None or ratio[i].max() >= min_ratio]

    code, out, _ = run(capsys, "query", db, reads, *extra)
    assert code == 0
    _, rows = parse_tsv(out)
    assert [r[0] for r in rows] == [result.names[i] for i in kept]

    code, out, _ = run(capsys, "query", db, reads, "--best-hit", *extra)
    assert code == 0
    header, rows = parse_tsv(out)
    assert header == ["sequence", "n_kmers", "best_hit", "hits", "best_ratio"]
    expected = []
    for i in kept:
        most = int(result.hits[i].max())
        ties = [g for g, h in zip(labels, result.hits[i].tolist()) if h == most and most > 0]
        expected.append([result.names[i], str(result.n_kmers[i]), ",".join(ties), str(most), ratio[i].max()])
    assert [r[:4] for r in rows] == [e[:4] for e in expected]
    assert [float(r[4]) for r in rows] == [e[4] for e in expected]
    if min_ratio is None:  # the reads hold ties (a read of A also in C) and reads without a hit
        assert any("," in r[2] for r in rows) and any(r[2] == "" for r in rows)

    code, out, _ = run(capsys, "query", db, reads, "--json", *extra)
    doc = json.loads(out)
    assert doc["labels"] == labels and doc["z"] == 0
    assert [d["name"] for d in doc["results"]] == [result.names[i] for i in kept]
    assert [d["best_hit"] for d in doc["results"]] == [e[2].split(",") if e[2] else [] for e in expected]
    assert [d["best_ratio"] for d in doc["results"]] == [e[4] for e in expected]


def test_csv_and_table(db, reads, capsys, small_batches):
    code, out, _ = run(capsys, "query", db, reads, "--format", "csv", "--best-hit")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["sequence", "n_kmers", "best_hit", "hits", "best_ratio"] and len(rows) == 401
    code, out, _ = run(capsys, "query", db, reads, "--format", "table", "--min-ratio", "1")
    assert code == 0 and "best_ratio" in out and "read0" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--min-ratio", "1.5"], "--min-ratio"),
        (["--min-ratio", "half"], "--min-ratio"),
        (["--kmers", "--best-hit"], "--best-hit and --min-ratio apply to sequences"),
    ],
)
def test_usage_errors(db, capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        main(["query", str(db), str(FIXTURES / "reads.fa"), *argv])
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


class Recorder:
    def __init__(self):
        self.entered = 0
        self.calls = []

    @contextlib.contextmanager
    def __call__(self, quiet):
        self.entered += 1
        yield lambda *a: self.calls.append(a)


def test_progress_from_the_second_batch(db, reads, capsys, monkeypatch, small_batches):
    bar = Recorder()
    monkeypatch.setattr(console_core, "progress_callback", bar)
    assert run(capsys, "query", db, reads)[0] == 0
    size = reads.stat().st_size
    assert bar.entered == 1 and bar.calls[-1] == ("query", size, size)
    assert all(phase == "query" and total == size and done <= size for phase, done, total in bar.calls)
    # one batch: over before a bar would tell anything; --quiet: none
    bar = Recorder()
    monkeypatch.setattr(console_core, "progress_callback", bar)
    assert run(capsys, "query", db, reads, "--quiet")[0] == 0
    monkeypatch.setattr(query_engine, "QUERY_BATCH_BASES", 400 * READ_LENGTH)
    assert run(capsys, "query", db, reads)[0] == 0
    assert bar.entered == 0


def test_progress_of_a_stream_counts_bases(db, reads, monkeypatch, small_batches):
    with open(reads, "rb") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        reader = console_core._Reader(["-"])
        assert reader.phase == "query-stream" and reader.total is None
        n = sum(1 for _ in reader.records())
    assert n == 400 and reader.position == 400 * READ_LENGTH


def test_lookup_and_query_kmers_from_stdin(db, capsys):
    sets = oracle.genome_sets(GENOMES, 21)
    some = sorted(sets["B"])[:3]
    _, expected, _ = run(capsys, "lookup", db, *some)
    proc = _console("lookup", db, "-", stdin=("\n".join(some) + "\n").encode())
    assert proc.returncode == 0 and proc.stdout.decode() == expected
    proc = _console("query", db, "--kmers", "-", stdin=("\n".join(some) + "\n").encode())
    assert proc.returncode == 0 and proc.stdout.decode() == expected


def test_build_from_stdin(tmp_path, capsys):
    fq = FIXTURES / "genome_c.fq"
    proc = _console("build", tmp_path / "s", "-", "-k", "15", "--partitions", "2", "--quiet", stdin=fq.read_bytes())
    assert proc.returncode == 0, proc.stderr
    proc = _console("build", tmp_path / "l", "C=-", "-k", "15", "--partitions", "2", "--quiet",
                    stdin=gzip.compress(fq.read_bytes()))
    assert proc.returncode == 0, proc.stderr
    expected = len(oracle.genome_sets({"C": [str(fq)]}, 15)["C"])
    with kmerdb.open(tmp_path / "s") as a, kmerdb.open(tmp_path / "l") as b:
        assert a.genomes == ("stdin",) and b.genomes == ("C",)
        assert a.genome_records[0].n_kmers == b.genome_records[0].n_kmers == expected
