"""Hand-checked cases for the brute-force oracle (tests/oracle.py)."""

import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_reverse_complement_and_canonical():
    assert oracle.reverse_complement("ACGT") == "ACGT"  # its own reverse complement
    assert oracle.canonical("ACGT") == "ACGT"
    assert oracle.reverse_complement("AAAC") == "GTTT"
    assert oracle.canonical("AAAC") == "AAAC"
    assert oracle.canonical("GTTT") == "AAAC"
    assert oracle.canonical("tttt") == "AAAA"
    assert oracle.canonical("T") == "A"
    assert oracle.canonical("G") == "C"


def test_kmers_break_on_non_acgt_and_ignore_case():
    assert oracle.kmers("ACGTN", 3) == ["ACG", "ACG"]  # ACG, CGT(->ACG); windows with N dropped
    assert oracle.kmers("ACNGT", 2) == ["AC", "AC"]  # AC, then GT -> AC; CN and NG dropped
    assert oracle.kmers("acgt", 4) == ["ACGT"]
    assert oracle.kmers("AAAR", 3) == ["AAA"]
    assert oracle.kmers("AC", 3) == []
    assert oracle.kmers("", 3) == []


def test_k_equals_one():
    assert oracle.kmers("ACGTN", 1) == ["A", "C", "C", "A"]
    assert oracle.count_kmers(["ACGT", "gg"], 1) == {"A": 2, "C": 4}


def test_count_kmers_over_sequences():
    # AAAA has 2 windows of 3 (AAA twice); TTT is AAA's reverse complement.
    assert oracle.count_kmers(["AAAA", "TTT"], 3) == {"AAA": 3}
    assert oracle.count_kmers(["ACGTT"], 2) == {"AC": 2, "CG": 1, "AA": 1}


def test_encode_decode():
    assert oracle.encode("A") == 0
    assert oracle.encode("T") == 3
    assert oracle.encode("ACGT") == 0b00011011
    assert oracle.encode("acgt") == 27
    assert oracle.decode(27, 4) == "ACGT"
    assert oracle.decode(0, 3) == "AAA"
    assert oracle.decode(3, 3) == "AAT"  # leading zeros are As
    kmer = "GATTACAGATTACAGATTACAGATTACAGAT"
    assert oracle.decode(oracle.encode(kmer), 31) == kmer
    # String order equals code order.
    words = ["ACGT", "TTTT", "CAAA", "AAAC", "GTAC"]
    assert sorted(words) == sorted(words, key=oracle.encode)


def test_minimizer():
    identity = lambda code: code  # noqa: E731
    # m-mers of AGTCA: AG, GT(->AC), TC(->GA), CA(->TG->CA); identity hash -> smallest code AC.
    assert oracle.minimizer("AGTCA", 2, identity) == "AC"
    # A hash that reverses the order picks the largest canonical m-mer.
    assert oracle.minimizer("AGTCA", 2, lambda c: -c) == "GA"
    # Same minimizer for a k-mer and its reverse complement.
    kmer = "GATTACAGGCATTC"
    h = lambda c: (c * 2654435761) % 2**32  # noqa: E731
    assert oracle.minimizer(kmer, 5, h) == oracle.minimizer(oracle.reverse_complement(kmer), 5, h)
    # Constant hash: ties broken by the smaller code.
    assert oracle.minimizer("TTTGCA", 3, lambda c: 0) == "AAA"
    with pytest.raises(ValueError):
        oracle.minimizer("ACGN", 2, identity)


def test_read_sequences_fasta_fastq_gzip(tmp_path):
    fa = tmp_path / "x.fa"
    fa.write_text(">r1 some description\nACGT\nac\n\n>r2\nNNNN\n")
    assert oracle.read_sequences(fa) == [("r1", "ACGTac"), ("r2", "NNNN")]
    fq = tmp_path / "x.fq"
    fq.write_text("@q1 desc\nACGT\n+\nIIII\n@q2\nGG\n+q2\nII\n")
    assert oracle.read_sequences(fq) == [("q1", "ACGT"), ("q2", "GG")]
    gz = tmp_path / "x.fasta.gz"  # gzip detected from its content, not its name
    gz.write_bytes(gzip.compress(b">g\nACGT\n"))
    assert oracle.read_sequences(gz) == [("g", "ACGT")]
    renamed = tmp_path / "plain_named.fa"
    renamed.write_bytes(gzip.compress(b">g\nAC\n"))
    assert oracle.read_sequences(renamed) == [("g", "AC")]
    empty = tmp_path / "empty.fa"
    empty.write_bytes(b"")
    assert oracle.read_sequences(empty) == []


@pytest.mark.parametrize(
    "name", ["no_header.fa", "truncated.fq", "qual_mismatch.fq", "bad_chars.fq", "binary.fa"]
)
def test_read_sequences_rejects_bad_fixtures(name):
    with pytest.raises(ValueError):
        oracle.read_sequences(FIXTURES / "bad" / name)


def test_genome_sets_and_query_hits(tmp_path):
    (tmp_path / "g1.fa").write_text(">a\nAAAACCCC\n")
    (tmp_path / "g2.fa").write_text(">b\nGGGGTTTT\n>c\nACGTN\n")
    sets = oracle.genome_sets({"g1": [tmp_path / "g1.fa"], "g2": [tmp_path / "g2.fa"]}, 4)
    assert sets["g1"] == {"AAAA": 1, "AAAC": 1, "AACC": 1, "ACCC": 1, "CCCC": 1}
    # GGGGTTTT is the reverse complement of AAAACCCC.
    assert sets["g2"] == {**sets["g1"], "ACGT": 1}
    hits, n = oracle.query_hits("aaaaccccN ACGT", sets, 4)
    # Valid windows: AAAA AAAC AACC ACCC CCCC (5) and ACGT (1).
    assert n == 6
    assert hits == {"g1": 5, "g2": 6}
    hits, n = oracle.query_hits("AAAAAA", sets, 4)  # AAAA three times, counted per position
    assert (hits, n) == ({"g1": 3, "g2": 3}, 3)


def test_oracle_reads_fixtures_like_dnaio():
    """The oracle's parser and dnaio agree on every good fixture."""
    dnaio = pytest.importorskip("dnaio")
    for name in ["genome_a.fa", "genome_b.fa.gz", "genome_c.fq", "genome_c_ref.fa", "reads.fa", "collection.fa"]:
        with dnaio.open(FIXTURES / name) as reader:
            expected = [(rec.id, rec.sequence) for rec in reader]
        assert oracle.read_sequences(FIXTURES / name) == expected, name
