"""Builds against the brute-force oracle; refusals and failures leave nothing usable behind."""

import os
import subprocess
import sys

import lmdb
import msgpack
import numpy as np
import oracle
import pytest
from conftest import GENOMES, needs_shared, shared_genomes

import kmerdb
from kmerdb.ops.inputs import per_record_genomes


def check_against_oracle(path, sets, counts):
    with kmerdb.open(path) as db:
        labels = db.genomes
        universe = sorted(set().union(*[set(s) for s in sets.values()]))
        assert db.n_kmers == len(universe)
        dumped = np.concatenate([keys for keys, _ in db.iter_rows()]) if db.n_kmers else np.zeros(0)
        assert sorted(dumped.tolist()) == [oracle.encode(x) for x in universe]
        got = db.lookup(universe, counts=counts)
        for j, label in enumerate(labels):
            column = [sets[label].get(x, 0) for x in universe]
            expected = column if counts else [c > 0 for c in column]
            assert got[:, j].tolist() == expected, label
        for rec in db.genome_records:
            truth = sets[rec.label]
            assert rec.n_kmers == len(truth)
            assert rec.total == sum(truth.values())
            spectrum = {}
            for c in truth.values():
                spectrum[c] = spectrum.get(c, 0) + 1
            assert dict(rec.spectrum) == spectrum


@pytest.mark.parametrize(
    "k,m,partitions,threads,counts",
    [
        (31, None, 8, 2, True),
        (21, None, 1, 1, True),
        (21, 5, 64, 2, False),
        (15, 15, 3, 2, True),
        (5, None, 4, 1, True),
        (1, None, 2, 2, True),
    ],
)
def test_build_matches_oracle(tmp_path, oracle_sets, k, m, partitions, threads, counts):
    path = tmp_path / "db"
    report = kmerdb.build(path, GENOMES, k=k, m=m, partitions=partitions, threads=threads, counts=counts)
    sets = oracle_sets(k)
    assert report.n_genomes == 3
    check_against_oracle(path, sets, counts)


def test_build_with_multiple_files_per_genome_and_per_record(tmp_path, fixtures_dir, oracle_sets):
    two = {"AB": GENOMES["A"] + GENOMES["B"], "C": GENOMES["C"]}
    kmerdb.build(tmp_path / "two", two, k=21, partitions=4, counts=True)
    check_against_oracle(tmp_path / "two", oracle_sets(21, two), True)

    collection = str(fixtures_dir / "collection.fa")
    items = per_record_genomes([collection])
    kmerdb.build(tmp_path / "rec", items, k=21, partitions=4, counts=True)
    sets = {name: oracle.count_kmers([seq], 21) for name, seq in oracle.read_sequences(collection)}
    check_against_oracle(tmp_path / "rec", sets, True)


def test_existing_path_is_refused_and_untouched(tmp_path):
    path = tmp_path / "db"
    kmerdb.build(path, {"A": GENOMES["A"]}, k=15, partitions=2)
    before = {p: os.path.getmtime(p) for p in path.rglob("*")}
    with pytest.raises(kmerdb.DatabaseExistsError):
        kmerdb.build(path, {"B": GENOMES["B"]}, k=15, partitions=2)
    assert {p: os.path.getmtime(p) for p in path.rglob("*")} == before
    with kmerdb.open(path) as db:
        assert db.genomes == ("A",)


def test_bad_input_mid_build_leaves_nothing(tmp_path, fixtures_dir):
    path = tmp_path / "db"
    with pytest.raises(kmerdb.InputError) as info:
        kmerdb.build(path, {"A": GENOMES["A"], "bad": [str(fixtures_dir / "bad" / "truncated.fq")]}, k=15)
    assert "truncated.fq" in str(info.value) and info.value.line == 12
    assert not path.exists()


def test_killed_build_leaves_a_database_that_says_incomplete(tmp_path):
    path = tmp_path / "db"
    # kill the build (inline gather, one process) while it writes its first layer
    code = (
        "import os, signal, sys, kmerdb\n"
        "b = sys.modules['kmerdb.ops.build']  # the module; kmerdb.build is the function\n"
        "def die(*a, **k): os.kill(os.getpid(), signal.SIGKILL)\n"
        "b.write_layer = die\n"
        f"kmerdb.build({str(path)!r}, {GENOMES!r}, k=15, partitions=2, threads=1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert path.exists()
    with pytest.raises(kmerdb.IncompleteDatabaseError, match="incomplete"):
        kmerdb.open(path)


def test_memory_budget_too_small(tmp_path):
    with pytest.raises(kmerdb.MemoryBudgetError):
        kmerdb.build(tmp_path / "db", GENOMES, k=15, max_memory="10M", threads=2)
    assert not (tmp_path / "db").exists()
    with pytest.raises(kmerdb.InvalidParameterError):
        kmerdb.build(tmp_path / "db", GENOMES, k=15, max_memory="lots")


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"k": 32}, {"k": 21, "m": 22}, {"partitions": 0}, {"threads": 0}, {"k": "31"}, {"colours": "sparse"}],
)
def test_invalid_parameters(tmp_path, kwargs):
    with pytest.raises(kmerdb.InvalidParameterError):
        kmerdb.build(tmp_path / "db", GENOMES, **kwargs)
    assert not (tmp_path / "db").exists()


def test_count_width_is_the_smallest_that_holds_the_largest_count(tmp_path):
    reads = tmp_path / "rep.fa"
    reads.write_text(">r\n" + "ACGTTGCAAC" * 40 + "\n")  # a few 5-mers occur ~40 times each
    many = tmp_path / "many.fa"
    many.write_text("".join(f">r{i}\nACGTTGCAACG\n" for i in range(300)))  # counts of 300
    kmerdb.build(tmp_path / "db8", {"r": [str(reads)]}, k=5, partitions=1, counts=True)
    kmerdb.build(tmp_path / "db16", {"r": [str(many)]}, k=5, partitions=1, counts=True)
    widths = {}
    for name in ("db8", "db16"):
        files = list((tmp_path / name).rglob("*.counts.npy"))
        widths[name] = np.load(files[0]).dtype
    assert widths == {"db8": np.dtype("u1"), "db16": np.dtype("u2")}
    with kmerdb.open(tmp_path / "db16") as db:
        assert db.lookup(["ACGTT"], counts=True)[0, 0] == 300


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "db"
    kmerdb.build(path, {"A": GENOMES["A"]}, k=15, partitions=2)
    env = lmdb.open(str(path / "catalog"), subdir=True)
    with env.begin(write=True) as txn:
        txn.put(b"format", msgpack.packb(kmerdb.FORMAT_VERSION + 1))
    env.close()
    with pytest.raises(kmerdb.FormatVersionError, match="newer"):
        kmerdb.open(path)


@needs_shared
def test_real_genomes_match_kmc_counts(tmp_path):
    """Distinct canonical 31-mers of E. coli K-12 and Salmonella LT2 as counted by KMC 3.2.1."""
    ecoli, salmonella, _ = shared_genomes()
    kmerdb.build(tmp_path / "db", {"ecoli": str(ecoli), "lt2": str(salmonella)}, threads=2, max_memory="512M")
    with kmerdb.open(tmp_path / "db") as db:
        assert db.genome("ecoli").n_kmers == 4_554_269
        assert db.genome("lt2").n_kmers == 4_881_186
