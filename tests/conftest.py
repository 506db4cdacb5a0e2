"""Shared fixtures: paths, the brute-force oracle, small databases built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = ROOT / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"

# the oracle is a plain module beside the tests
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import oracle

GENOMES = {
    "A": [str(FIXTURES / "genome_a.fa")],
    "B": [str(FIXTURES / "genome_b.fa.gz")],
    "C": [str(FIXTURES / "genome_c.fq")],
}


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def genome_paths() -> dict[str, list[str]]:
    return dict(GENOMES)


@pytest.fixture(scope="session")
def oracle_sets():
    """k -> label -> {canonical k-mer: count} by the brute-force oracle (cached)."""
    cache: dict[int, dict] = {}

    def get(k: int, genomes: dict | None = None):
        genomes = genomes or GENOMES
        key = (k, tuple(sorted((lab, tuple(p)) for lab, p in genomes.items())))
        if key not in cache:
            cache[key] = oracle.genome_sets(genomes, k)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Build (once per configuration) an index of the fixtures: built(k=..., counts=..., partitions=...)."""
    import kmerdb

    made: dict = {}

    def get(k: int = 21, counts: bool = True, partitions: int = 8, m: int | None = None, threads: int = 2):
        key = (k, counts, partitions, m, threads)
        if key not in made:
            path = tmp_path_factory.mktemp("db") / f"k{k}-c{int(counts)}-p{partitions}.kmerdb"
            kmerdb.build(path, GENOMES, k=k, m=m, counts=counts, partitions=partitions, threads=threads)
            made[key] = path
        return made[key]

    return get


def run_console(capsys, *argv):
    """Run the console in this process: (exit code, stdout, stderr)."""
    from kmerdb.console import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def shared_genomes() -> list[Path]:
    names = [
        "GCF_000005845.2_ASM584v2_genomic.fna.gz",
        "GCF_000006945.1_ASM694v1_genomic.fna.gz",
        "GCF_000783305.1_ASM78330v1_genomic.fna.gz",
    ]
    return [SHARED_DATA / n for n in names]


needs_shared = pytest.mark.skipif(
    not all(p.exists() for p in shared_genomes()), reason="../shared/data is absent"
)


@pytest.fixture(scope="session")
def dask_client():
    """A Dask client on a 2-worker LocalCluster on loopback (processes), shared by the session."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as client:
        yield client
