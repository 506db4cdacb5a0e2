"""Evidence: exact has no false positives, approx has ~2^-B, and the z rule in sequence queries."""

import numpy as np
import oracle
import pytest
from conftest import GENOMES

import kmerdb
from kmerdb.config import Config
from kmerdb.core import bits
from kmerdb.core.evidence import (
    EXACT,
    HEADER_WORDS,
    MAGIC,
    ApproxEvidence,
    Evidence,
    ExactEvidence,
    approx_evidence,
    evidence_for,
    evidence_kind,
    exact_evidence,
    fingerprints,
    z_rule,
)
from kmerdb.core.kmers import canonical, kmer_minimizer_hashes, partition_of
from kmerdb.core.mphf import MPHF
from kmerdb.core.unitigs import UnitigSet, build_unitigs
from kmerdb.errors import CorruptDatabaseError
from kmerdb.store.catalog import LayerRecord
from kmerdb.store.layer import Layer, write_evidence, write_group, write_layer
from kmerdb.store.storage import save_array

K = 31
N_KEYS = 200_000
N_PROBES = 1_000_000


def random_kmers(seed: int, n: int, k: int = K) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return canonical(rng.integers(0, 4**k, n, dtype=np.uint64), k)


@pytest.fixture(scope="module")
def members():
    keys = np.sort(random_kmers(11, N_KEYS))
    return keys[np.r_[True, keys[1:] != keys[:-1]]]


@pytest.fixture(scope="module")
def absent(members):
    probes = random_kmers(12, N_PROBES + 10_000)
    at = np.minimum(np.searchsorted(members, probes), members.size - 1)
    probes = probes[members[at] != probes]
    return probes[:N_PROBES]


def one_layer(tmp_path, keys, **cfg) -> Layer:
    config = Config.create(k=K, partitions=1, **cfg)
    rows = np.ones((keys.size, 1), dtype=bool)
    rec = write_layer(str(tmp_path), 0, 0, 1, keys, [((0,), rows)], config)
    return Layer(str(tmp_path), rec, {0: 0})


def format3_layer(root, keys) -> Layer:
    """An exact layer as formats 1-3 wrote it: MPHF and the unitig order of each slot's k-mer."""
    config = Config.create(k=K, partitions=1)
    unitigs, ordinals = build_unitigs(keys, K)
    mphf = MPHF.build(keys)
    slots = mphf.lookup(keys)
    files = {
        "unitigs": save_array(str(root), "data/u.npy", unitigs),
        "mphf": save_array(str(root), "data/m.npy", mphf.to_array()),
        "evidence": write_evidence(str(root), "data/L", 1, config, keys, slots, ordinals),
    }
    group = write_group(str(root), "data/L", 1, (0,), np.ones((keys.size, 1), dtype=bool), slots, config)
    return Layer(str(root), LayerRecord(0, int(keys.size), files, (group,), 1), {0: 0})


def test_exact_evidence_has_no_false_positives(tmp_path, members, absent):
    layer = one_layer(tmp_path, members)
    assert layer.exact and layer.evidence_kind == "exact" and layer.dictionary is not None
    found, slots = layer.find(members)
    # the k-mers are kept once, in the unitigs: a key's slot is its rank there
    assert found.all() and np.array_equal(layer.unitig_kmers()[slots], members)
    found, _ = layer.find(absent)
    assert not found.any()
    assert np.array_equal(np.sort(layer.kmers()), members)


def test_exact_evidence_of_format_3_has_no_false_positives(tmp_path, members, absent):
    layer = format3_layer(tmp_path, members)
    assert layer.exact and layer.evidence.kind == "exact" and layer.dictionary is None
    found, slots = layer.find(members)
    assert found.all() and np.array_equal(np.sort(slots), np.arange(members.size))
    assert not layer.find(absent)[0].any()
    # the evidence is a slot's k-mer's rank in the unitigs
    assert layer.evidence.width == max(1, (members.size - 1).bit_length())
    assert np.array_equal(layer.kmers()[slots], members)
    assert layer.fill_rows(slots, out := np.zeros((members.size, 1), dtype=bool), False) is None and out.all()


@pytest.mark.parametrize("fp_bits", [4, 8, 12])
def test_approx_false_positive_rate(tmp_path, members, absent, fp_bits):
    """Over 10^6 random absent k-mers (fixed seeds), the rate is within [0.5, 1.5] x 2^-B."""
    layer = one_layer(tmp_path, members, evidence="approx", fp_bits=fp_bits)
    assert not layer.exact and layer.evidence.fp_bits == fp_bits
    found, _ = layer.find(members)
    assert found.all()  # never a false negative
    found, _ = layer.find(absent)
    rate = found.mean()
    expected = 2.0**-fp_bits
    assert 0.5 * expected <= rate <= 1.5 * expected, (rate, expected)
    # find_exact is exact whatever the evidence
    ok, slots = layer.find_exact(np.concatenate([members[:1000], absent[:1000]]))
    assert ok[:1000].all() and not ok[1000:].any()
    assert np.array_equal(slots[:1000], layer.find(members[:1000])[1])


def test_evidence_arrays_round_trip_and_refuse_damage():
    ordinals = np.array([2, 0, 3, 1], dtype=np.int64)
    ev = Evidence(exact_evidence(ordinals))
    assert ev.kind == "exact" and ev.n == 4 and ev.width == 2
    assert (ev.values(np.arange(4)) == ordinals).all()
    keys = random_kmers(3, 100)
    ev = Evidence(approx_evidence(keys, 9))
    assert ev.kind == "approx" and ev.fp_bits == 9
    assert (ev.values(np.arange(100)) == fingerprints(keys, 9)).all()
    assert (fingerprints(keys, 9) < 2**9).all()
    arr = approx_evidence(keys, 9)
    for word, value in ((0, 1), (1, 7), (2, 5), (4, 40), (7, arr.size + 1)):
        bad = arr.copy()
        bad[word] = value
        with pytest.raises(kmerdb.CorruptDatabaseError):
            Evidence(bad)
    with pytest.raises(ValueError):
        approx_evidence(keys, 33)


def test_evidence_kinds_are_registered_and_chosen_by_the_config():
    assert evidence_kind("exact") is ExactEvidence and evidence_kind("approx") is ApproxEvidence
    assert evidence_for(Config.create(k=21, partitions=2)) == ExactEvidence()
    approx = evidence_for(Config.create(k=21, partitions=2, evidence="approx", fp_bits=12))
    assert approx == ApproxEvidence(12) and approx.tag == "approx12" and approx.false_positive_rate == 2.0**-12
    assert ExactEvidence().tag == "exact" and ExactEvidence().false_positive_rate == 0.0
    with pytest.raises(kmerdb.InvalidParameterError):
        evidence_kind("bloom")


@pytest.mark.parametrize("scheme", [ExactEvidence(), ApproxEvidence(32)], ids=["exact", "approx32"])
def test_every_kind_checks_the_keys_it_encoded(scheme):
    k = 15
    keys = np.unique(random_kmers(8, 3000, k))
    unitigs, ordinals = build_unitigs(keys, k)
    useq = UnitigSet(unitigs)
    slots = np.random.default_rng(2).permutation(keys.size)  # any bijection stands for the MPHF
    ev = Evidence(scheme.encode(keys, slots, ordinals))
    assert ev.scheme == scheme and ev.exact == scheme.exact and ev.n == keys.size
    assert ev.check(keys, slots, useq).all()
    # every key checked against another key's slot: exact rejects all, 32-bit fingerprints nearly all
    wrong = np.roll(slots, 1)
    assert ev.check(keys, wrong, useq).sum() <= (0 if scheme.exact else 2)
    if scheme.exact:
        assert np.array_equal(ev.ordinals(slots, useq), ordinals)
        assert np.array_equal(ev.positions(slots, useq), useq.base_of(ordinals))


def test_exact_evidence_of_version_1_stored_start_bases():
    """Evidence of format 1 and 2 stored each slot's start base: read the same way."""
    k = 15
    keys = np.unique(random_kmers(9, 2000, k))
    unitigs, ordinals = build_unitigs(keys, k)
    useq = UnitigSet(unitigs)
    slots = np.random.default_rng(3).permutation(keys.size)
    by_slot = np.empty(keys.size, dtype=np.uint64)
    by_slot[slots] = useq.base_of(ordinals)
    width = max(1, (useq.n_bases - 1).bit_length())
    words = bits.pack(by_slot, width)
    head = [MAGIC, 1, EXACT, keys.size, width, 0, HEADER_WORDS, HEADER_WORDS + words.size]
    old = np.concatenate([np.array(head, dtype=np.uint64), words])
    ev = Evidence(old)
    assert ev.version == 1 and ev.check(keys, slots, useq).all()
    assert np.array_equal(ev.ordinals(slots, useq), ordinals)
    assert not ev.check(keys, np.roll(slots, 1), useq).any()


def test_z_rule_runs_ends_and_breaks():
    # positions 4 and 12 are missing (a non-ACGT base, a gap between sequences)
    positions = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 13, 14])
    found = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1], dtype=bool)
    assert z_rule(positions, found, 0).tolist() == found.tolist()
    assert z_rule(positions, found, 1).astype(int).tolist() == [1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    assert z_rule(positions, found, 2).astype(int).tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0]
    assert z_rule(positions, found, 3).astype(int).tolist() == [0] * 13
    assert z_rule(positions[:0], found[:0], 2).size == 0


@pytest.fixture(scope="module")
def approx_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("approx") / "b4.kmerdb"
    kmerdb.build(path, GENOMES, k=K, partitions=4, evidence="approx", fp_bits=4, z=0, threads=1)
    return path


def random_sequences(seed: int, n: int, length: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def test_z_lowers_the_sequence_false_hit_rate(approx_db, oracle_sets):
    """Random sequences: a position is a false hit with probability ~p = 2^-4 without the
    rule, and ~(z+1) p^(z+1) with it (it must sit in a run of z+1 false positives)."""
    sets = oracle_sets(K)
    universe = set().union(*[set(s) for s in sets.values()])
    seqs = random_sequences(21, 200, 1000)
    assert not any(x in universe for s in seqs[:5] for x in oracle.kmers(s, K))
    with kmerdb.open(approx_db) as db:
        assert db.config.z == 0
        base = db.query(seqs)
        positions = base.n_kmers.sum()
        p = base.found_raw.sum() / positions
        assert 0.5 * 2**-4 <= p <= 1.5 * 2**-4
        assert (base.found == base.found_raw).all()  # z = 0: the rule does nothing
        rates = [p]
        for z in (1, 2, 3):
            res = db.query(seqs, z=z)
            assert res.z == z and (res.found_raw == base.found_raw).all()
            rate = res.found.sum() / positions
            assert rate <= 3 * (z + 1) * p ** (z + 1)
            assert res.hits.sum(axis=1).max() <= res.found.max() * len(db.genomes)
            assert (res.hits <= res.found[:, None]).all()
            rates.append(rate)
        assert rates[0] > rates[1] > rates[2] >= rates[3]


def test_z_keeps_true_hits_away_from_the_ends(approx_db, oracle_sets):
    """True k-mers are never lost to the fingerprints; the rule drops only runs shorter than z+1."""
    reads = oracle.read_sequences(GENOMES["A"][0])
    genome = reads[0][1]
    with kmerdb.open(approx_db) as db:
        a = db.genomes.index("A")
        pieces = [genome[i : i + 100] for i in range(0, 3000, 100)]
        res = db.query(pieces, z=5)
        # every window of a genome piece is a true hit: one run covering the whole piece
        assert (res.found_raw == res.n_kmers).all() and (res.found == res.n_kmers).all()
        assert (res.hits[:, a] == res.n_kmers).all()
        # a piece holding fewer than z+1 k-mers counts for nothing, even though it is true
        short = genome[:K + 2]  # 3 k-mers
        res = db.query([short], z=3)
        assert res.found_raw[0] == 3 and res.found[0] == 0 and res.hits[0, a] == 0
        assert db.query([short], z=2).found[0] == 3
        # a base that is not ACGT splits a run: the windows beside it stand alone
        broken = genome[:K + 1] + "N" + genome[K + 2 : 2 * K + 3]  # 2 k-mers, N, 2 k-mers
        res = db.query([broken], z=2)
        assert res.n_kmers[0] == 4 and res.found_raw[0] == 4 and res.found[0] == 0
        assert db.query([broken], z=1).found[0] == 4


def test_exact_query_reports_found(built, oracle_sets):
    sets = oracle_sets(21)
    universe = set().union(*[set(s) for s in sets.values()])
    reads = oracle.read_sequences(__import__("conftest").FIXTURES / "reads.fa")
    with kmerdb.open(built(k=21)) as db:
        res = db.query([s for _, s in reads])
        assert res.z == 0 and (res.found == res.found_raw).all()
        for i, (_, seq) in enumerate(reads):
            assert res.found_raw[i] == sum(1 for x in oracle.kmers(seq, 21) if x in universe)


def test_approx_index_matches_the_oracle_on_true_kmers(approx_db, oracle_sets):
    sets = oracle_sets(K)
    universe = sorted(set().union(*[set(s) for s in sets.values()]))
    with kmerdb.open(approx_db) as db:
        presence = db.lookup(universe)
        assert (presence == np.array([[x in sets[g] for g in db.genomes] for x in universe])).all()
        ks = np.concatenate(list(db.iter_kmers()))
        assert np.array_equal(np.sort(ks), np.sort(kmerdb.core.kmers.kmers_from_strings(universe, K)))
        st = db.stats()
        assert st["evidence"]["kind"] == "approx" and st["evidence"]["fp_bits"] == 4
        assert st["evidence"]["layer_kinds"] == ["approx"]
        ev_bits = st["structures"]["evidence"]["bits_per_kmer"]
        assert 4 <= ev_bits < 4 + 2  # 4 bits per slot plus headers of small layers
        part = partition_of(kmer_minimizer_hashes(ks, K, db.config.m), db.config.n_partitions)
        assert part.min() >= 0


def test_a_layer_of_another_configuration_is_refused(tmp_path, members):
    """A layer read with another m (its dictionary's minimizers), k or evidence kind than it was
    written with answers wrong instead of failing: check_config refuses it, naming the file."""
    layer = one_layer(tmp_path, members[:5000])
    layer.check_config(Config.create(k=K, partitions=1))
    for other in (
        Config.create(k=K, m=11, partitions=1),
        Config.create(k=K - 2, partitions=1),
        Config.create(k=K, partitions=1, evidence="approx", fp_bits=8),
    ):
        with pytest.raises(CorruptDatabaseError) as info:
            layer.check_config(other)
        assert info.value.path.endswith((".dictionary.npy", ".unitigs.npy"))
