"""Genome inputs: labels, manifests, per-record collections, bad files."""

import gzip
import os
import threading

import numpy as np
import oracle
import pytest

import kmerdb
from kmerdb.errors import DuplicateLabelError, InputError, InvalidParameterError, InvalidTypeError
from kmerdb.ops import inputs as inputs_mod
from kmerdb.ops.inputs import (
    GenomeInput,
    check_readable,
    estimated_bases,
    label_from_path,
    parse_input_args,
    per_record_genomes,
    read_manifest,
    read_records,
    resolve_genomes,
)


@pytest.mark.parametrize(
    "name,label",
    [
        ("GCF_000005845.2_ASM584v2_genomic.fna.gz", "GCF_000005845.2_ASM584v2_genomic"),
        ("sample.fastq.gz", "sample"),
        ("x.fa", "x"),
        ("reads.FQ", "reads"),
        ("plain", "plain"),
        ("/some/dir/a.b.fasta", "a.b"),
    ],
)
def test_label_from_path(name, label):
    assert label_from_path(name) == label


def test_records_match_the_oracle_reader(fixtures_dir):
    for name in ("genome_a.fa", "genome_b.fa.gz", "genome_c.fq", "collection.fa"):
        path = str(fixtures_dir / name)
        got = [(n, s.decode()) for n, s in read_records(path)]
        assert got == oracle.read_sequences(path)


@pytest.mark.parametrize(
    "name,needle,line",
    [
        ("empty.fa", "empty file", None),
        ("binary.fa", "binary", None),
        ("no_header.fa", "must start with", 1),
        ("truncated.fq", "Premature end", 12),
        ("qual_mismatch.fq", "qualities differ", 12),
        ("truncated.fa.gz", "gzip", None),
        ("bad_chars.fq", "Non-ASCII", None),
    ],
)
def test_bad_inputs_raise_one_clear_error(fixtures_dir, name, needle, line):
    path = str(fixtures_dir / "bad" / name)
    with pytest.raises(InputError) as info:
        list(read_records(path))
    err = info.value
    assert err.path == path and needle in str(err)
    assert err.line == line
    assert str(err).startswith(path)


def test_gzip_is_detected_by_content_not_name(fixtures_dir, tmp_path):
    # a plain file named .gz is read as plain text; a gzip file without .gz is decompressed
    plain = list(read_records(str(fixtures_dir / "bad" / "not_gzip.fa.gz")))
    assert plain and all(isinstance(s, bytes) for _, s in plain)
    hidden = tmp_path / "hidden.fa"
    hidden.write_bytes(gzip.compress(b">r\nACGTACGT\n"))
    assert list(read_records(str(hidden))) == [("r", b"ACGTACGT")]


@pytest.mark.parametrize("at", [30, 100, -20])
def test_a_damaged_gzip_body_is_one_clear_error(fixtures_dir, tmp_path, at):
    # a flipped byte in the deflate stream (the inflater's own error) or in the CRC trailer
    data = bytearray(gzip.compress((fixtures_dir / "genome_a.fa").read_bytes()))
    data[at] ^= 0x55
    path = tmp_path / "damaged.fa.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        list(read_records(str(path)))
    assert str(info.value).startswith(str(path)) and "damaged gzip data" in str(info.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_records(str(tmp_path / "nope.fa")))
    with pytest.raises(InputError, match="directory"):
        list(read_records(str(tmp_path)))


def test_parse_input_args_forms(fixtures_dir):
    a = str(fixtures_dir / "genome_a.fa")
    b = str(fixtures_dir / "genome_b.fa.gz")
    got = parse_input_args([a, f"both={a},{b}"])
    assert got == [GenomeInput("genome_a", (a,)), GenomeInput("both", (a, b))]
    with pytest.raises(DuplicateLabelError):
        parse_input_args([a, a])


def test_manifest(fixtures_dir, tmp_path):
    rows = read_manifest(str(fixtures_dir / "manifest.tsv"))
    assert [r[0] for r in rows] == ["A", "B", "C"]
    assert rows[0][1] == str(fixtures_dir / "genome_a.fa")
    got = parse_input_args([], manifest=str(fixtures_dir / "manifest.tsv"))
    assert [g.label for g in got] == ["A", "B", "C"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("A\tx.fa\nB only-one-field\n")
    with pytest.raises(InputError) as info:
        read_manifest(str(bad))
    assert info.value.line == 2


def test_per_record(fixtures_dir):
    path = str(fixtures_dir / "collection.fa")
    got = per_record_genomes([path])
    assert [g.label for g in got] == [n for n, _ in oracle.read_sequences(path)]
    assert all(g.record == g.label and g.paths == (path,) for g in got)


def test_resolve_genomes_validates(fixtures_dir):
    a = str(fixtures_dir / "genome_a.fa")
    assert resolve_genomes({"x": a}) == [GenomeInput("x", (a,))]
    with pytest.raises(InvalidParameterError):
        resolve_genomes({})
    with pytest.raises(InvalidParameterError):
        resolve_genomes({"bad\tlabel": a})
    with pytest.raises(InputError):
        resolve_genomes({"x": str(fixtures_dir / "bad" / "empty.fa")})


# -- FIFOs, pipes and devices ------------------------------------------------------------


def _feed(fifo, data: bytes) -> threading.Thread:
    """Write ``data`` into a FIFO from a thread (its open blocks until a reader comes)."""

    def run():
        with open(fifo, "wb") as fh:
            fh.write(data)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_fifo_without_writer_is_refused_not_waited_on_forever(tmp_path, monkeypatch):
    # before: open() of a FIFO with no writer blocked build for ever
    monkeypatch.setattr(inputs_mod, "FIFO_WAIT", 0.2)
    monkeypatch.delenv("KMERDB_FIFO_WAIT", raising=False)
    fifo = str(tmp_path / "in.fa")
    os.mkfifo(fifo)
    check_readable(fifo)  # a stat only: nothing opened, nothing drained
    assert estimated_bases(fifo) == 0
    with pytest.raises(InputError, match="nothing was written") as info:
        list(read_records(fifo))
    assert info.value.path == fifo


@pytest.mark.parametrize("name", ["genome_a.fa", "genome_b.fa.gz", "genome_c.fq"])
def test_fifo_with_a_writer_is_read_as_a_stream(fixtures_dir, tmp_path, name):
    # before: a FIFO with data was "empty file" (its size is 0)
    fifo = str(tmp_path / "in")
    os.mkfifo(fifo)
    writer = _feed(fifo, (fixtures_dir / name).read_bytes())
    got = [(n, s.decode()) for n, s in read_records(fifo)]
    writer.join(5)
    assert got == oracle.read_sequences(str(fixtures_dir / name))


def test_pipe_by_its_proc_path_like_process_substitution(fixtures_dir):
    # <(...) and /dev/stdin on a pipe are /dev/fd/N or /proc/self/fd/N paths to a pipe
    r, w = os.pipe()
    data = (fixtures_dir / "genome_a.fa").read_bytes()
    t = threading.Thread(target=lambda: (os.write(w, data), os.close(w)), daemon=True)
    t.start()
    try:
        got = [(n, s.decode()) for n, s in read_records(f"/proc/self/fd/{r}")]
    finally:
        t.join(5)
        os.close(r)
    assert got == oracle.read_sequences(str(fixtures_dir / "genome_a.fa"))


def test_empty_and_binary_streams(tmp_path):
    for data, needle in ((b"", "empty stream"), (b"\x00\x01\x02", "binary stream"), (b"hello\n", "must start")):
        fifo = str(tmp_path / f"s{len(data)}")
        os.mkfifo(fifo)
        writer = _feed(fifo, data)
        with pytest.raises(InputError, match=needle):
            list(read_records(fifo))
        writer.join(5)


def test_devices_are_refused_at_once():
    with pytest.raises(InputError, match="device") as info:
        list(read_records("/dev/zero"))
    assert info.value.path == "/dev/zero"
    with pytest.raises(InputError, match="device"):
        resolve_genomes({"z": "/dev/null"})


def test_per_record_refuses_a_stream(tmp_path):
    fifo = str(tmp_path / "c.fa")
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="per-record"):
        per_record_genomes([fifo])


def test_manifest_from_a_fifo(fixtures_dir, tmp_path):
    fifo = str(tmp_path / "m.tsv")
    os.mkfifo(fifo)
    writer = _feed(fifo, f"A\t{fixtures_dir / 'genome_a.fa'}\n".encode())
    assert read_manifest(fifo) == [("A", str(fixtures_dir / "genome_a.fa"))]
    writer.join(5)


def test_build_from_a_fifo_equals_build_from_the_file(fixtures_dir, tmp_path):
    fifo = str(tmp_path / "in.fa.gz")
    os.mkfifo(fifo)
    writer = _feed(fifo, (fixtures_dir / "genome_b.fa.gz").read_bytes())
    kmerdb.build(tmp_path / "s", {"B": fifo}, k=21, partitions=4, threads=1)
    writer.join(5)
    kmerdb.build(tmp_path / "f", {"B": str(fixtures_dir / "genome_b.fa.gz")}, k=21, partitions=4, threads=1)
    with kmerdb.open(tmp_path / "s") as s, kmerdb.open(tmp_path / "f") as f:
        a, b = np.sort(np.concatenate(list(s.iter_kmers()))), np.sort(np.concatenate(list(f.iter_kmers())))
        assert s.n_kmers == f.n_kmers > 0 and np.array_equal(a, b)


def test_empty_argument_is_named():
    # before: "No such file or directory" without a name
    with pytest.raises(InvalidParameterError) as info:
        parse_input_args([""])
    assert info.value.argument == "inputs" and "empty" in str(info.value)
    with pytest.raises(InvalidParameterError, match="empty"):
        resolve_genomes({"a": ""})
    with pytest.raises(InvalidTypeError):
        parse_input_args([None])


# -- protein and other non-DNA input -----------------------------------------------------

_PROTEIN = "MKVLAAGIVGLLLAFSQPEEQRKLEFIPQWYTDHSGKFLEEIQPLLEQ"


def test_protein_fasta_is_refused_naming_file_and_line(tmp_path):
    # before: accepted silently, giving 0 k-mers
    path = tmp_path / "mixed.fa"
    path.write_text(">dna first\nACGTACGTAC\nGTACGTACGT\n>prot some protein\n" + _PROTEIN + "\n")
    with pytest.raises(InputError, match="protein") as info:
        list(read_records(str(path)))
    assert info.value.path == str(path) and info.value.line == 4
    assert "prot" in str(info.value)


def test_protein_fastq_and_gzip(tmp_path):
    fq = tmp_path / "p.fq"
    fq.write_text(f"@r1\nACGTACGT\n+\nIIIIIIII\n@r2\n{_PROTEIN}\n+\n{'I' * len(_PROTEIN)}\n")
    with pytest.raises(InputError, match="protein") as info:
        list(read_records(str(fq)))
    assert info.value.line == 5
    gz = tmp_path / "p.fa.gz"
    gz.write_bytes(gzip.compress(f">p\n{_PROTEIN}\n".encode()))
    with pytest.raises(InputError, match="protein") as info:
        list(read_records(str(gz)))
    assert info.value.line == 1


def test_protein_refused_by_build_leaves_nothing(tmp_path):
    path = tmp_path / "p.fa"
    path.write_text(f">p\n{_PROTEIN}\n")
    with pytest.raises(InputError, match="protein"):
        kmerdb.build(tmp_path / "db", {"p": str(path)}, k=11, partitions=2, threads=1)
    assert not (tmp_path / "db").exists()


def test_iupac_codes_soft_masking_and_x_are_dna(tmp_path):
    path = tmp_path / "iupac.fa"
    seqs = ["acgtNNNNRYKMSWBDHVacgt" * 5, "ACGTXXXXXXXXXXXXACGT", "acgtacgtuuuu"]
    path.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    assert [s.decode() for _, s in read_records(str(path))] == seqs
