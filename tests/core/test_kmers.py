"""k-mer arithmetic against the brute-force oracle."""

import random

import numpy as np
import oracle
import pytest

from kmerdb.core import kmers as K
from kmerdb.errors import InvalidParameterError


def random_seq(rng: random.Random, n: int, noise: float = 0.03) -> str:
    out = []
    for _ in range(n):
        r = rng.random()
        out.append(rng.choice("NRYacgtn") if r < noise else rng.choice("ACGT"))
    return "".join(out)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 11, 16, 21, 30, 31])
def test_sequence_kmers_match_oracle(k):
    rng = random.Random(k)
    seq = random_seq(rng, 2000)
    _, codes, _ = K.sequence_kmers(K.encode(seq), k)
    expected = oracle.kmers(seq, k)
    assert len(codes) == len(expected)
    assert K.decode(codes, k) == expected
    assert codes.tolist() == [oracle.encode(x) for x in expected]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 8, 9, 16, 17, 21, 31, 32])
def test_window_pairs_match_oracle(k):
    rng = random.Random(1000 + k)
    seq = "".join(rng.choice("ACGT") for _ in range(300))
    words = [seq[i : i + k] for i in range(len(seq) - k + 1)]
    fwd, rc = K.kmer_window_pairs(K.encode(seq), k)
    assert fwd.tolist() == [oracle.encode(w) for w in words] == K.kmer_windows(K.encode(seq), k).tolist()
    assert rc.tolist() == [oracle.encode(oracle.reverse_complement(w)) for w in words]
    assert K.kmer_window_pairs(K.encode(seq[: k - 1]), k)[0].size == 0


def test_encode_is_case_insensitive_and_breaks_on_non_acgt():
    codes = K.encode("ACGTacgtNRY-")
    assert codes.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4]
    pos, _, _ = K.sequence_kmers(K.encode("ACGNACG"), 3)
    assert pos.tolist() == [0, 4]


def test_reverse_complement_and_canonical():
    for k in (1, 7, 31):
        rng = random.Random(k)
        words = ["".join(rng.choice("ACGT") for _ in range(k)) for _ in range(200)]
        codes = np.array([oracle.encode(w) for w in words], dtype=np.uint64)
        rc = K.reverse_complement(codes, k)
        assert K.decode(rc, k) == [oracle.reverse_complement(w) for w in words]
        assert K.decode(K.canonical(codes, k), k) == [oracle.canonical(w) for w in words]


@pytest.mark.parametrize("k,m", [(31, 13), (21, 9), (15, 7), (5, 5), (7, 1)])
def test_minimizers_match_oracle_and_are_strand_independent(k, m):
    rng = random.Random(k * 100 + m)
    seq = random_seq(rng, 600, noise=0.0)
    _, codes, hashes = K.sequence_kmers(K.encode(seq), k, m)

    def product_hash(code: int) -> int:
        return int(K.mix64(np.array([code], dtype=np.uint64), K._MINIMIZER_SEED)[0])

    words = oracle.kmers(seq, k)
    for word, h in zip(words, hashes.tolist()):
        mini = oracle.minimizer(word, m, product_hash)
        assert product_hash(oracle.encode(mini)) == h
    # the same hashes from standalone k-mers, in either orientation
    assert (K.kmer_minimizer_hashes(codes, k, m) == hashes).all()
    assert (K.kmer_minimizer_hashes(K.reverse_complement(codes, k), k, m) == hashes).all()


def test_superkmers_cover_every_kmer_once_with_one_minimizer():
    rng = random.Random(7)
    k, m, parts = 21, 9, 5
    # a long low-complexity run is cut at the cap; N breaks k-mers
    seq = random_seq(rng, 5000) + "A" * 3000 + random_seq(rng, 300) + "N" + random_seq(rng, 40) + "NN" + random_seq(rng, 500)
    codes = K.encode(seq)
    pos, _, hashes = K.sequence_kmers(codes, k, m)
    starts, n, part = K.superkmers(codes, k, m, parts)
    covered = np.concatenate([np.arange(s, s + c) for s, c in zip(starts, n)])
    assert covered.tolist() == pos.tolist()
    assert n.max() <= K.SUPERKMER_CAP
    by_pos = dict(zip(pos.tolist(), hashes.tolist()))
    for s, c, p in zip(starts.tolist(), n.tolist(), part.tolist()):
        hs = {by_pos[i] for i in range(s, s + c)}
        assert len(hs) == 1 and hs.pop() % parts == p
    # maximal: a super-k-mer that the next one continues ends at a new minimizer or at the cap
    for s, c, nxt in zip(starts[:-1].tolist(), n[:-1].tolist(), starts[1:].tolist()):
        if s + c == nxt:
            assert by_pos[nxt] != by_pos[s] or c == K.SUPERKMER_CAP


def test_kmers_from_strings_validates():
    assert K.kmers_from_strings(["ACG", "cgt"], 3).tolist() == [oracle.encode("ACG")] * 2
    with pytest.raises(InvalidParameterError, match="length"):
        K.kmers_from_strings(["ACGT"], 3)
    with pytest.raises(InvalidParameterError, match=r"ACGT|A, C, G, T"):
        K.kmers_from_strings(["ANG"], 3)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 13, 21, 31, 32])
def test_kmers_from_strings_equal_the_oracle(k):
    """Canonical codes of str, bytes and mixed lists, upper and lower case, against the oracle."""
    rng = random.Random(k)
    words = ["".join(rng.choice("ACGTacgt") for _ in range(k)) for _ in range(300)]
    want = [oracle.encode(oracle.canonical(w.upper())) for w in words]
    assert K.kmers_from_strings(words, k).tolist() == want
    assert K.kmers_from_strings([w.encode() for w in words], k).tolist() == want
    mixed = [w if i % 2 else w.encode() for i, w in enumerate(words)]
    assert K.kmers_from_strings(mixed, k).tolist() == want
    assert K.kmers_from_strings(iter(words), k).tolist() == want  # any iterable
    assert K.kmers_from_strings([], k).size == 0


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_kmers_from_strings_names_the_bad_item(as_bytes):
    """The first bad k-mer is named, whichever item it is; lengths that add up still fail."""

    def items(words):
        return [w.encode() for w in words] if as_bytes else words

    for words, bad, why in (
        (["ACGT", "ACGTA", "ACG"], "ACGTA", "length is not k=4"),  # 5 + 3 bases: 2 x 4 in all
        (["ACGT", "AC", "ACGTAC"], "AC", "length is not k=4"),
        (["ACGT", "ACNT", "AXGT"], "ACNT", "A, C, G, T"),
    ):
        with pytest.raises(InvalidParameterError) as err:
            K.kmers_from_strings(items(words), 4)
        assert err.value.value == bad and why in str(err.value)


def test_a_non_ascii_letter_is_a_bad_base():
    with pytest.raises(InvalidParameterError) as err:
        K.kmers_from_strings(["ACGT", "AC\u00e9T"], 4)  # one character, one byte: the length holds
    assert err.value.value == "AC\u00e9T" and "A, C, G, T" in str(err.value)


def test_short_and_empty_inputs():
    for seq in ("", "A", "ACGTACG"):
        pos, codes, hashes = K.sequence_kmers(K.encode(seq), 31, 13)
        assert pos.size == codes.size == hashes.size == 0
        assert all(a.size == 0 for a in K.superkmers(K.encode(seq), 31, 13, 4))
