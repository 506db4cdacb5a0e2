"""Tests of the genome-family simulator and the fixture generator (small sizes)."""

import gzip
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))
import make_fixtures
import oracle
import simulate


def _dir_bytes(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _kmer_set(seq: bytes, k: int) -> set[str]:
    return set(oracle.kmers(seq.decode(), k))


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    args = dict(n_genomes=3, length=5_000, divergence=0.02, reads_per_genome=20, read_length=50)
    simulate.write_family(tmp_path / "a", seed=5, **args)
    simulate.write_family(tmp_path / "b", seed=5, **args)
    simulate.write_family(tmp_path / "c", seed=6, **args)
    a, b, c = (_dir_bytes(tmp_path / d) for d in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a if name.endswith((".fa", ".fq")))


def test_cli_writes_fastas_and_manifest(tmp_path):
    out = tmp_path / "sim"
    assert simulate.main(["--genomes", "4", "--length", "3000", "--divergence", "0.01",
                          "--seed", "1", "--out", str(out), "--quiet"]) == 0
    manifest = [line.split("\t") for line in (out / "manifest.tsv").read_text().splitlines()]
    assert [label for label, _ in manifest] == ["genome_0001", "genome_0002", "genome_0003", "genome_0004"]
    for label, rel in manifest:
        records = oracle.read_sequences(out / rel)
        assert [rid for rid, _ in records] == [label] == [Path(rel).stem]
        assert abs(len(records[0][1]) - 3000) < 100
        lines = (out / rel).read_text().splitlines()[1:]
        assert all(len(line) == 60 for line in lines[:-1]) and 0 < len(lines[-1]) <= 60
    assert not (out / "reads_manifest.tsv").exists()


def test_simulate_family_shape():
    family = simulate.simulate_family(5, 20_000, 0.01, seed=2)
    assert [name for name, _ in family] == [f"genome_{i:04d}" for i in range(1, 6)]
    for _name, seq in family:
        assert isinstance(seq, bytes)
        assert abs(len(seq) - 20_000) < 200  # indels are balanced in expectation
        assert set(seq) <= set(b"ACGT")
    assert len({seq for _, seq in family}) == 5
    assert simulate.simulate_family(1, 1_000, 0.01, seed=2)[0][1] == simulate.random_root(1_000, 2).tobytes()


@pytest.mark.parametrize("divergence", [0.005, 0.02])
def test_divergence_matches_shared_kmers(divergence):
    """Mash-style estimate 1 - shared**(1/k) from shared 21-mers tracks --divergence."""
    k, n = 21, 4
    family = simulate.simulate_family(n, 40_000, divergence, seed=11)
    sets = [_kmer_set(seq, k) for _, seq in family]
    estimates = []
    for a, b in itertools.combinations(sets, 2):
        shared = len(a & b) / min(len(a), len(b))
        estimates.append(1 - shared ** (1 / k))
    # Every pair differs, none by much more than twice the target; the mean is on target.
    assert min(estimates) > divergence / 4
    assert max(estimates) < divergence * 2.5
    assert divergence * 0.7 < np.mean(estimates) < divergence * 1.3


def test_zero_divergence_gives_identical_genomes():
    family = simulate.simulate_family(3, 5_000, 0.0, seed=4)
    assert len({seq for _, seq in family}) == 1


def test_root_from_fasta(tmp_path):
    root = tmp_path / "root.fa.gz"
    root.write_bytes(gzip.compress(b">r1\nacgtNNNNacgtacgtac\nACGT\n>r2\nTTTTGGGGCCCCAAAA\n"))
    family = simulate.simulate_family(2, None, 0.0, seed=1, root=root)
    assert family[0][1] == b"ACGTNNNNACGTACGTACACGTTTTTGGGGCCCCAAAA"


def test_reads_fastq_well_formed(tmp_path):
    out = tmp_path / "sim"
    simulate.write_family(out, 2, 4_000, 0.01, seed=3, reads_per_genome=60, read_length=100, error_rate=0.02)
    manifest = [line.split("\t") for line in (out / "reads_manifest.tsv").read_text().splitlines()]
    assert [rel for _, rel in manifest] == ["genome_0001.fq", "genome_0002.fq"]
    genome = oracle.read_sequences(out / "genome_0001.fa")[0][1]
    lines = (out / "genome_0001.fq").read_text().splitlines()
    assert len(lines) == 4 * 60
    total_errors = 0
    for i in range(0, len(lines), 4):
        header, seq, plus, qual = lines[i : i + 4]
        assert header.startswith(f"@genome_0001_r{i // 4 + 1:06d} ")
        assert plus == "+" and len(seq) == len(qual) == 100 and set(seq) <= set("ACGT")
        fields = dict(item.split("=") for item in header.split()[1:])
        start, errors = int(fields["pos"]), int(fields["errors"])
        ref = genome[start : start + 100]
        if fields["strand"] == "-":
            ref = oracle.reverse_complement(ref)
        mismatches = [j for j in range(100) if ref[j] != seq[j]]
        assert len(mismatches) == errors
        assert [j for j in range(100) if qual[j] == "+"] == mismatches
        total_errors += errors
    assert 0.005 < total_errors / (60 * 100) < 0.05


def test_make_fixtures_reproduces_committed_files(tmp_path):
    """Regenerating the fixtures gives the committed content (gzip compared decompressed)."""
    make_fixtures.write_fixtures(tmp_path)
    fresh, committed = _dir_bytes(tmp_path), _dir_bytes(REPO / "fixtures")
    assert fresh.keys() <= committed.keys()
    for name in fresh:
        a, b = fresh[name], committed[name]
        if name.endswith(".gz") and a[:2] == b"\x1f\x8b" and name != "bad/truncated.fa.gz":
            a, b = gzip.decompress(a), gzip.decompress(b)
        elif name in ("bad/truncated.fa.gz", "README.md"):
            continue  # zlib-version dependent bytes (and the README records their sizes)
        assert a == b, name
