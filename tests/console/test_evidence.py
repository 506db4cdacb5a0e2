"""Console: build --evidence approx, export --unitigs, reindex, stats."""

import json

import oracle
import pytest
from conftest import GENOMES, ROOT
from conftest import run_console as run

from kmerdb.console import main, make_parser

K = 21
COMMANDS = ("export", "reindex", "stats")


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "ap.kmerdb"
    inputs = [f"{label}={','.join(paths)}" for label, paths in GENOMES.items()]
    argv = ["build", path, *inputs, "--k", K, "--partitions", 4, "--evidence", "approx", "--fp-bits", 6, "--z", 1]
    assert main([str(a) for a in argv + ["--quiet"]]) == 0
    return path


def fasta_kmers(text: str) -> list[str]:
    seqs = text.splitlines()[1::2]
    return [oracle.canonical(s[i : i + K]) for s in seqs for i in range(len(s) - K + 1)]


def test_build_approx_info_and_stats(db, capsys):
    code, out, _ = run(capsys, "info", db)
    assert code == 0 and "approx (b=6, z=1)" in out and "unitigs" in out
    code, out, _ = run(capsys, "info", db, "--json")
    info = json.loads(out)
    assert info["config"]["evidence"] == "approx" and info["unitigs"]["count"] > 0
    code, out, _ = run(capsys, "stats", db)
    assert code == 0
    for word in ("mphf", "evidence", "unitigs", "columns", "index (dictionary or mphf + evidence, unitigs)", "N50", "b=6"):
        assert word in out
    code, out, _ = run(capsys, "stats", db, "--json")
    stats = json.loads(out)
    assert set(stats["structures"]) == {"dictionary", "mphf", "evidence", "unitigs", "columns"}
    assert stats["structures"]["dictionary"]["bytes"] == 0  # approximate evidence has no dictionary
    parts = sum(stats["structures"][r]["bits_per_kmer"] for r in ("mphf", "evidence", "unitigs"))
    assert abs(stats["index"]["bits_per_kmer"] - parts) < 1e-9
    assert stats["unitigs"]["mean_bases"] == pytest.approx(stats["unitigs"]["mean_kmers"] + K - 1)


def test_export_unitigs(db, capsys, tmp_path, oracle_sets):
    sets = oracle_sets(K)
    universe = set().union(*[set(s) for s in sets.values()])
    code, out, _ = run(capsys, "export", db, "--unitigs")
    assert code == 0 and out.startswith(">0 LN:i:")
    kmers = fasta_kmers(out)
    assert len(kmers) == len(universe) and set(kmers) == universe
    code, _, _ = run(capsys, "export", db, "--unitigs", "--genome", "B", "-o", tmp_path / "b.fa")
    assert code == 0
    kmers = fasta_kmers((tmp_path / "b.fa").read_text())
    assert len(kmers) == len(sets["B"]) and set(kmers) == set(sets["B"])
    # the file is FASTA any reader takes
    assert len(oracle.read_sequences(tmp_path / "b.fa")) == (tmp_path / "b.fa").read_text().count(">")


def test_export_errors(db, capsys):
    code, _, err = run(capsys, "export", db, "--unitigs", "--genome", "nope")
    assert code == 1 and err.startswith("kmerdb: error:") and "nope" in err
    code, _, err = run(capsys, "stats", db.parent / "missing.kmerdb")
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_reindex_round_trip(db, capsys):
    reads = ROOT / "fixtures" / "reads.fa"
    code, before, _ = run(capsys, "query", db, reads, "--format", "json")
    code, out, _ = run(capsys, "reindex", db, "--evidence", "exact", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["evidence"] == "exact" and summary["layers_rewritten"] == 4 and summary["generation"] == 2
    code, exact, _ = run(capsys, "query", db, reads, "--format", "json")
    exact = json.loads(exact)
    assert exact["z"] == 0
    assert all(r["found"] == r["found_raw"] for r in exact["results"])
    code, out, err = run(capsys, "reindex", db, "--evidence", "approx", "--fp-bits", 6, "--z", 1)
    assert code == 0 and "approx (b=6, z=1)" in err
    code, after, _ = run(capsys, "query", db, reads, "--format", "json")
    assert json.loads(after) == json.loads(before)  # same fingerprints, same answers
    code, _, err = run(capsys, "reindex", db, "--evidence", "exact", "--fp-bits", 8)
    assert code == 1 and "fp_bits" in err
    code, _, err = run(capsys, "reindex", db, "--evidence", "approx", "--fp-bits", 40)
    assert code == 1 and "fp_bits" in err


def test_commands_have_help_and_are_documented():
    doc = (ROOT / "docs" / "evidence.md").read_text()
    sub = next(a for a in make_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name in COMMANDS:
        assert helps.get(name), f"{name} has no help"
        assert sub.choices[name].description
        assert f"kmerdb {name}" in doc, f"{name} is not documented in docs/evidence.md"
        for action in sub.choices[name]._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in doc, f"{name} {opt} is not documented"
    for opt in ("--evidence", "--fp-bits", "--z"):
        assert "kmerdb build" in doc and opt in doc
