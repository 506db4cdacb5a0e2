"""``min_count`` on build and append: every cell equals the oracle's count filtered by count >= N."""

import random

import oracle
import pytest
from conftest import GENOMES

import kmerdb
from kmerdb.errors import InvalidParameterError


def _reads(path, seed: int, n_reads: int = 60, length: int = 70, error: float = 0.02) -> str:
    """Reads of a random reference with substitution errors, as FASTQ: k-mers of many counts,
    the error k-mers mostly seen once."""
    rng = random.Random(seed)
    ref = "".join(rng.choice("ACGT") for _ in range(500))
    with open(path, "w") as fh:
        for i in range(n_reads):
            lo = rng.randrange(len(ref) - length)
            read = [b if rng.random() > error else rng.choice("ACGT".replace(b, "")) for b in ref[lo : lo + length]]
            if rng.random() < 0.5:
                read = list(oracle.reverse_complement("".join(read)))
            fh.write(f"@r{i}\n{''.join(read)}\n+\n{'I' * length}\n")
    return str(path)


@pytest.fixture(scope="module")
def read_genomes(tmp_path_factory):
    d = tmp_path_factory.mktemp("reads")
    return {"R1": [_reads(d / "r1.fq", 1)], "R2": [_reads(d / "r2.fq", 2)], "A": GENOMES["A"]}


def _filtered(sets, n):
    return {label: {x: c for x, c in s.items() if c >= n} for label, s in sets.items()}


def _check(path, full, n, counts):
    """Cells, records and spectra of ``path`` against the oracle's counts ``full`` cut at ``n``."""
    kept = _filtered(full, n)
    universe = sorted(set().union(*[set(s) for s in kept.values()]))
    dropped = sorted(set().union(*[set(s) for s in full.values()]) - set(universe))
    with kmerdb.open(path) as db:
        assert db.n_kmers == len(universe)
        keys = sorted(int(x) for chunk, _ in db.iter_rows() for x in chunk)
        assert keys == [oracle.encode(x) for x in universe]
        got = db.lookup(universe, counts=counts)
        for j, label in enumerate(db.genomes):
            column = [kept[label].get(x, 0) for x in universe]
            assert got[:, j].tolist() == (column if counts else [c > 0 for c in column]), label
        if dropped:  # k-mers under n in every genome are in no layer
            assert not db.lookup(dropped).any()
        spectra = db.spectrum()
        for rec in db.genome_records:
            assert rec.min_count == n
            assert rec.n_kmers == len(kept[rec.label])
            assert rec.total == sum(kept[rec.label].values())
            # the spectrum is the inputs' whole histogram: the counts cut off are in it
            spectrum: dict[int, int] = {}
            for c in full[rec.label].values():
                spectrum[c] = spectrum.get(c, 0) + 1
            assert dict(rec.spectrum) == spectrum
            assert dict(spectra[rec.label]) == spectrum
        assert db.history()[-1].args["min_count"] == n
        assert all(g["min_count"] == n for g in db.info()["genomes"])


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("counts", [True, False])
def test_build_min_count_matches_oracle(tmp_path, read_genomes, n, counts):
    k = 11
    full = oracle.genome_sets(read_genomes, k)
    assert any(c == 1 for s in full.values() for c in s.values()) and any(c >= 3 for s in full.values() for c in s.values())
    path = tmp_path / "db"
    report = kmerdb.build(path, read_genomes, k=k, partitions=4, threads=2 if n == 2 else 1, counts=counts, min_count=n)
    assert report.n_kmers == len(set().union(*[set(s) for s in _filtered(full, n).values()]))
    _check(path, full, n, counts)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("counts", [True, False])
def test_append_min_count_matches_oracle(tmp_path, read_genomes, n, counts):
    k = 11
    full = oracle.genome_sets(read_genomes, k)
    path = tmp_path / "db"
    first = {"R1": read_genomes["R1"]}
    kmerdb.build(path, first, k=k, partitions=4, counts=counts, min_count=n)
    rest = {label: paths for label, paths in read_genomes.items() if label != "R1"}
    with kmerdb.open(path, mode="a") as db, db.transaction():
        db.append_genomes(rest, threads=2 if n == 2 else 1, min_count=n)
    _check(path, full, n, counts)


def test_append_min_count_applies_to_the_appended_genomes_only(tmp_path, read_genomes):
    k = 11
    full = oracle.genome_sets(read_genomes, k)
    path = tmp_path / "db"
    kmerdb.build(path, {"R1": read_genomes["R1"]}, k=k, partitions=4, counts=True)
    with kmerdb.open(path, mode="a") as db:
        with db.transaction():
            db.append_genome("R2", read_genomes["R2"], min_count=3)
        assert [g.min_count for g in db.genome_records] == [1, 3]
        universe = sorted(set(full["R1"]) | set(full["R2"]))
        got = db.lookup(universe, counts=True)
        assert got[:, 0].tolist() == [full["R1"].get(x, 0) for x in universe]
        assert got[:, 1].tolist() == [c if c >= 3 else 0 for c in (full["R2"].get(x, 0) for x in universe)]


def test_merge_keeps_min_count_and_the_spectrum_below_it(tmp_path, read_genomes):
    k = 11
    full = oracle.genome_sets(read_genomes, k)
    kmerdb.build(tmp_path / "a", {"R1": read_genomes["R1"]}, k=k, partitions=4, counts=True, min_count=2)
    kmerdb.build(tmp_path / "b", {"R2": read_genomes["R2"]}, k=k, partitions=4, counts=True, min_count=2)
    kmerdb.merge(tmp_path / "ab", [tmp_path / "a", tmp_path / "b"], mode="count")
    with kmerdb.open(tmp_path / "ab") as db:
        for rec in db.genome_records:
            assert rec.min_count == 2
            spectrum: dict[int, int] = {}
            for c in full[rec.label].values():
                spectrum[c] = spectrum.get(c, 0) + 1
            assert dict(rec.spectrum) == spectrum
            assert rec.n_kmers == sum(1 for c in full[rec.label].values() if c >= 2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_min_count_must_be_an_integer_from_1(tmp_path, read_genomes, bad):
    with pytest.raises(InvalidParameterError, match="min_count"):
        kmerdb.build(tmp_path / "db", read_genomes, k=11, partitions=2, min_count=bad)
    assert not (tmp_path / "db").exists()
    kmerdb.build(tmp_path / "ok", {"R1": read_genomes["R1"]}, k=11, partitions=2)
    with kmerdb.open(tmp_path / "ok", mode="a") as db:
        with pytest.raises(InvalidParameterError, match="min_count"), db.transaction():
            db.append_genome("R2", read_genomes["R2"], min_count=bad)
        assert db.genomes == ("R1",)


def test_console_min_count_on_build_append_info_and_history(tmp_path, capsys, read_genomes):
    from conftest import run_console

    k = 11
    full = oracle.genome_sets(read_genomes, k)
    db = tmp_path / "db"
    code, _, err = run_console(capsys, "build", db, f"R1={read_genomes['R1'][0]}", "-k", k, "--partitions", 2,
                               "--counts", "--min-count", 2, "--quiet")
    assert code == 0, err
    code, _, err = run_console(capsys, "append", db, f"R2={read_genomes['R2'][0]}", "--min-count", 3, "--quiet")
    assert code == 0, err
    with kmerdb.open(db) as handle:
        assert [(g.label, g.min_count) for g in handle.genome_records] == [("R1", 2), ("R2", 3)]
        assert handle.genome("R2").n_kmers == sum(1 for c in full["R2"].values() if c >= 3)
    code, out, _ = run_console(capsys, "info", db, "--format", "tsv")
    assert code == 0
    rows = [line.split("\t") for line in out.splitlines()]
    header = next(r for r in rows if "min count" in r)
    at = header.index("min count")
    assert [r[at] for r in rows if len(r) == len(header) and r[1] in ("R1", "R2")] == ["2", "3"]
    code, out, _ = run_console(capsys, "history", db, "--format", "json")
    assert code == 0 and '"min_count": 2' in out and '"min_count": 3' in out


@pytest.mark.parametrize("command", ["build", "append"])
@pytest.mark.parametrize("value", ["0", "-2", "x"])
def test_console_min_count_below_1_is_a_usage_error(tmp_path, capsys, read_genomes, command, value):
    from conftest import run_console

    db = tmp_path / "db"
    if command == "append":
        kmerdb.build(db, {"R1": read_genomes["R1"]}, k=11, partitions=2)
    with pytest.raises(SystemExit) as exc:
        run_console(capsys, command, db, f"R2={read_genomes['R2'][0]}", "-k" if command == "build" else "--quiet",
                    *(["11"] if command == "build" else []), "--min-count", value)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--min-count" in err
    if command == "build":
        assert not db.exists()


def test_genome_record_keeps_min_count_and_refuses_a_damaged_one():
    from kmerdb.store.catalog import GenomeRecord

    rec = GenomeRecord(0, "R", ("r.fq",), 5, 12, ((1, 9), (2, 3), (3, 2)), 2)
    assert GenomeRecord.from_record(rec.to_record()) == rec
    plain = GenomeRecord(0, "R", ("r.fq",), 5, 12)
    assert "min_count" not in plain.to_record()  # records of unfiltered genomes are unchanged
    assert GenomeRecord.from_record(plain.to_record()).min_count == 1
    for bad in (0, -1, "2", 1.5):
        with pytest.raises(ValueError, match="min_count"):
            GenomeRecord.from_record({**rec.to_record(), "min_count": bad})
