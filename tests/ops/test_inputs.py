"""Genome inputs: labels, manifests, per-record collections, bad files."""

import gzip

import oracle
import pytest

from kmerdb.errors import DuplicateLabelError, InputError, InvalidParameterError
from kmerdb.ops.inputs import (
    GenomeInput,
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
