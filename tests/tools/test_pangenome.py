"""Tests of the pangenome simulator (tools/pangenome.py) on tiny genomes of the shared data."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))
import oracle
import pangenome

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / pangenome.CORE_GENOME).exists(), reason="../shared/data is absent"
)

LENGTH = 100_000
K = 31


@pytest.fixture(scope="module")
def pan():
    return pangenome.Pangenome(LENGTH, seed=3, data_dir=SHARED_DATA)


def _canonical_kmers(contigs: list[bytes], k: int = K) -> np.ndarray:
    """Sorted distinct canonical k-mers (2-bit codes) of ACGT contigs."""
    out = []
    weights = (4 ** np.arange(k - 1, -1, -1, dtype=np.uint64)).astype(np.uint64)
    for c in contigs:
        codes = pangenome._CODE[np.frombuffer(c, dtype=np.uint8)].astype(np.uint64)
        if codes.size < k:
            continue
        win = np.lib.stride_tricks.sliding_window_view(codes, k)
        fwd = (win * weights).sum(axis=1, dtype=np.uint64)
        rev = ((3 - win[:, ::-1]) * weights).sum(axis=1, dtype=np.uint64)
        out.append(np.minimum(fwd, rev))
    return np.unique(np.concatenate(out))


def test_same_seed_same_genomes_other_seed_differs(pan):
    again = pangenome.Pangenome(LENGTH, seed=3, data_dir=SHARED_DATA)
    other = pangenome.Pangenome(LENGTH, seed=4, data_dir=SHARED_DATA)
    for i in (1, 2, 5):
        assert pan.genome(i) == again.genome(i)
        assert pan.genome(i)[1] != other.genome(i)[1]
    # the library iterator gives the same genomes, and a later genome does not change earlier ones
    listed = list(pangenome.simulate_pangenome(3, LENGTH, seed=3, data_dir=SHARED_DATA))
    assert listed == [pan.genome(i) for i in (1, 2, 3)]
    assert list(pangenome.simulate_pangenome(4, LENGTH, seed=3, data_dir=SHARED_DATA, first=4)) == [pan.genome(4)]


def test_cli_writes_genomes_contigs_and_lists_and_reuses_them(tmp_path):
    out = tmp_path / "pan"
    argv = ["--genomes", "4", "--out", str(out), "--seed", "3", "--length", str(LENGTH),
            "--data", str(SHARED_DATA), "--quiet"]
    assert pangenome.main(argv) == 0
    paths = [Path(line) for line in (out / "list.txt").read_text().splitlines()]
    assert paths == [(out / f"g{i:04d}.fa").resolve() for i in range(1, 5)]
    assert (out / "manifest.tsv").read_text().splitlines() == [f"g{i:04d}\tg{i:04d}.fa" for i in range(1, 5)]
    ids = []
    for i, p in enumerate(paths, 1):
        records = oracle.read_sequences(p)
        assert pangenome.CONTIGS_MIN <= len(records) <= pangenome.CONTIGS_MAX
        assert all(set(seq) <= set("ACGT") and len(seq) >= pangenome.MIN_CONTIG for _, seq in records)
        assert 0.8 * LENGTH < sum(len(seq) for _, seq in records) < 1.25 * LENGTH
        ids += [rid for rid, _ in records]
        assert [rid.split("_")[0] for rid, _ in records] == [f"g{i:04d}"] * len(records)
    assert len(set(ids)) == len(ids)
    # a second run with the same parameters reuses the files; more genomes only adds files
    stamps = {p: p.stat().st_mtime_ns for p in paths}
    contents = {p: p.read_bytes() for p in paths}
    assert pangenome.main(argv[:1] + ["6"] + argv[2:]) == 0
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps
    assert len((out / "list.txt").read_text().splitlines()) == 6
    # another seed: the files of the old one are dropped, the requested ones written anew
    assert pangenome.main(argv[:5] + ["9"] + argv[6:]) == 0
    assert len(list(out.glob("g*.fa"))) == 4
    assert any(p.read_bytes() != contents[p] for p in paths)


def test_clade_snps_private_snps_and_accessory_genes(pan):
    n = 8
    sets = [_canonical_kmers(pan.genome(i)[1]) for i in range(1, n + 1)]
    allk = np.concatenate(sets)
    owner = np.repeat(np.arange(n, dtype=np.int64), [s.size for s in sets])
    order = np.argsort(allk, kind="stable")
    allk, owner = allk[order], owner[order]
    starts = np.flatnonzero(np.concatenate([[True], allk[1:] != allk[:-1]]))
    masks = np.bitwise_or.reduceat(np.left_shift(1, owner), starts)
    patterns = set(np.unique(masks).tolist())
    # every genome has k-mers of its own (private SNPs): the genomes all differ
    assert all(1 << g in patterns for g in range(n))
    # k-mers shared by exactly the genomes of a clade (clade SNPs), for several clades
    clades = pan.clades(n)
    assert clades
    clade_masks = {sum(1 << (g - 1) for g in members) for _node, members in clades}
    assert len(clade_masks & patterns) >= 2
    # the core k-mers are shared by all
    assert (1 << n) - 1 in patterns
    # accessory genes: presence differs between genomes
    presence = np.array([pan.genome_space(i)[1] for i in range(1, n + 1)])
    assert presence.sum(axis=1).min() > 0 and len({row.tobytes() for row in presence}) > 1


def test_core_divergence_is_realistic(pan):
    cores = [pan.genome_space(i)[0][: pan.core_length] for i in range(1, 7)]
    diffs = [float(np.mean(a != b)) for a, b in itertools.combinations(cores, 2)]
    assert min(diffs) > 0
    assert 0.001 < float(np.mean(diffs)) < 0.006
