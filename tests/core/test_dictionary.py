"""The minimizer dictionary: anchors against brute force, exact finds, corruption, size."""

import contextlib
import itertools
import random

import numpy as np
import oracle
import pytest

from kmerdb.core import bits
from kmerdb.core import dictionary as D
from kmerdb.core import kmers as K
from kmerdb.core.dictionary import (
    HEADER_WORDS,
    MAGIC,
    MAX_BUCKET,
    MAX_SKEW,
    VERSION,
    MinimizerDictionary,
    build_dictionary,
)
from kmerdb.core.mphf import MAGIC as MPHF_MAGIC
from kmerdb.core.mphf import MPHF
from kmerdb.core.pilots import MAGIC as PILOT_MAGIC
from kmerdb.core.unitigs import UnitigSet, build_unitigs
from kmerdb.errors import CorruptDatabaseError, InvalidParameterError

# -- brute force (plain Python over strings and ints) ---------------------------------------

_COMP = str.maketrans("ACGT", "TGCA")
_DIGITS = str.maketrans("ACGT", "0123")


def rc(s: str) -> str:
    """Reverse complement of an upper-case ACGT string."""
    return s[::-1].translate(_COMP)


def canon(s: str) -> str:
    """Canonical form of an ACGT string (either case)."""
    s = s.upper()
    return min(s, rc(s))


def code(s: str) -> int:
    """2-bit code of an upper-case ACGT string (first base most significant)."""
    return int(s.translate(_DIGITS), 4) if s else 0


def mhash(value: int) -> int:
    """The minimizer order of a canonical m-mer code (the product's hash function itself)."""
    return int(K.mix64(np.array([value], dtype=np.uint64), K._MINIMIZER_SEED)[0])


def brute_anchor(kmer: str, m: int) -> tuple[int, int]:
    """(minimizer hash, 2 * p + b) of a canonical k-mer string, by a loop over its m-mers."""
    best = None
    for p in range(len(kmer) - m + 1):
        mm = kmer[p : p + m]
        h = mhash(code(canon(mm)))
        if best is None or h < best[0]:  # strict: the leftmost offset of the minimum
            best = (h, 2 * p + (1 if mm <= rc(mm) else 0))
    assert best is not None
    return best


def min_count(kmer: str, m: int) -> int:
    """How many offsets of ``kmer`` hold its minimizer (equal hashes are equal canonical m-mers)."""
    hs = [mhash(code(canon(kmer[p : p + m]))) for p in range(len(kmer) - m + 1)]
    return hs.count(min(hs))


def string_kmers(seq: str, k: int) -> list[tuple[int, str]]:
    """(position, canonical k-mer) of every window of ``seq`` holding only ACGT (either case)."""
    up = seq.upper()
    bad = [0]
    for c in up:
        bad.append(bad[-1] + (c not in "ACGT"))
    return [(i, canon(up[i : i + k])) for i in range(len(up) - k + 1) if bad[i + k] == bad[i]]


def mutate(rng: random.Random, s: str, rate: float) -> str:
    """``s`` with each base replaced by another one with probability ``rate``."""
    out = list(s)
    for i, b in enumerate(out):
        if rng.random() < rate:
            out[i] = rng.choice([c for c in "ACGT" if c != b])
    return "".join(out)


def random_dna(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACGT") for _ in range(n))


def genome_with_repeats(seed: int, size: int) -> str:
    """A random genome with planted identical repeats (one reverse complemented), a family
    of diverged copies (3 %, more copies than MAX_BUCKET), a pair family, poly-A, a
    dinucleotide repeat and two tandem repeats."""
    rng = random.Random(seed)
    same = random_dna(rng, 2000)
    family = random_dna(rng, 600)
    pair = random_dna(rng, 400)
    parts = []
    for i in range(12):
        parts.append(random_dna(rng, size // 12))
        if i < 3:
            parts.append(same if i != 1 else rc(same))
        parts.append(mutate(rng, family, 0.03))
        if i < 3:
            parts.append(mutate(rng, pair, 0.04))
    parts += ["A" * 200, random_dna(rng, 300), "AC" * 100, random_dna(rng, 300), "ACGTTGC" * 40]
    parts += [random_dna(rng, 300), random_dna(rng, 25) * 12, random_dna(rng, 100)]
    return "".join(parts)


def key_set(seq: str, k: int) -> np.ndarray:
    """Sorted distinct canonical k-mer codes of an ACGT string (plain Python)."""
    return np.array(sorted({code(w) for _, w in string_kmers(seq, k)}), dtype=np.uint64)


# numpy oracles for long inputs, independent of kmerdb.core.kmers except for the hash itself


def mmer_codes(codes: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Forward and reverse-complement codes of every m-mer of a 0..3 code array."""
    n = max(codes.size - m + 1, 0)
    fw = np.zeros(n, dtype=np.uint64)
    rv = np.zeros(n, dtype=np.uint64)
    for j in range(m):
        c = codes[j : j + n].astype(np.uint64)
        fw = (fw << np.uint64(2)) | c
        rv |= (np.uint64(3) - c) << np.uint64(2 * j)
    return fw, rv


def window_oracle(codes: np.ndarray, k: int, m: int) -> dict[str, np.ndarray]:
    """Minimum hash, its leftmost place, how many places hold it, and whether another m-mer
    of the window shares its top 32 bits, for every k-mer window of ``codes`` (all ACGT)."""
    fw, rv = mmer_codes(codes, m)
    h = K.mix64(np.minimum(fw, rv), K._MINIMIZER_SEED)
    if h.size < k - m + 1:
        h = h[:0]  # no window
        win = np.zeros((0, k - m + 1), dtype=np.uint64)
    else:
        win = np.lib.stride_tricks.sliding_window_view(h, k - m + 1)
    least = win.min(axis=1)
    place = win.argmin(axis=1) + np.arange(least.size)
    count = (win == least[:, None]).sum(axis=1)
    top = ((win >> np.uint64(32)) == (least >> np.uint64(32))[:, None]).sum(axis=1)
    return {
        "hash": least,
        "place": place,
        "count": count,
        "tie": top > 1,
        "fw": fw,
        "rv": rv,
        "h": h,
    }


def letters(codes: np.ndarray) -> str:
    return np.frombuffer(b"ACGT", dtype=np.uint8)[codes].tobytes().decode()


def unitig_strings(ut: UnitigSet) -> list[str]:
    text = letters(ut.codes())
    b = ut.base_starts()
    return [text[b[u] : b[u + 1]] for u in range(ut.n_unitigs)]


def expected_stats(ut: UnitigSet, m: int, max_bucket: int, max_skew: int = MAX_SKEW) -> dict:
    """The dictionary's counts from scratch: a k-mer has an anchor when one m-mer alone holds
    the smallest top half of the hashes in it and is no palindrome; a minimizer with more
    than ``max_skew`` distinct anchors sends its k-mers to the overflow, one with more than
    ``max_bucket`` to the skew index."""
    k = ut.k
    if not ut.n:
        return {"buckets": 0, "multi_buckets": 0, "extra_anchors": 0, "skew_kmers": 0, "overflow_kmers": 0}
    w = window_oracle(ut.codes(), k, m)
    bounds = ut.base_starts()
    starts = np.concatenate([np.arange(bounds[u], bounds[u + 1] - k + 1) for u in range(ut.n_unitigs)])
    unitig = np.searchsorted(bounds, starts, side="right") - 1
    q = w["place"][starts]
    single = ~w["tie"][starts] & (w["fw"][q] != w["rv"][q])
    h = w["hash"][starts]
    value = 2 * (q - unitig * (k - 1)) + (w["fw"][q] < w["rv"][q])
    buckets: dict[int, set[int]] = {}
    for hv, v in zip(h[single].tolist(), value[single].tolist()):
        buckets.setdefault(hv, set()).add(v)
    heavy = {hv for hv, s in buckets.items() if len(s) > max_skew}
    skewed = {hv for hv, s in buckets.items() if max_bucket < len(s) <= max_skew}
    light = [len(s) for hv, s in buckets.items() if hv not in heavy]
    kept = h[single].tolist()
    return {
        "buckets": len(light),
        "multi_buckets": sum(1 for n in light if n > 1),
        "extra_anchors": sum(n - 1 for n in light),
        "skew_kmers": sum(1 for hv in kept if hv in skewed),
        "overflow_kmers": int((~single).sum()) + sum(1 for hv in kept if hv in heavy),
    }


# -- 1. minimizer_anchors --------------------------------------------------------------------


def probe_kmers(rng: random.Random, k: int, n: int) -> list[str]:
    """Random canonical k-mers and low-complexity ones (ties between equal m-mers)."""
    words = [random_dna(rng, k) for _ in range(n)]
    for unit in ("A", "C", "AC", "AT", "CG", "ACG", "AAC", "ACGT", "AACCT", "ACGTTGCA"):
        words.append((unit * k)[:k])
        words.append((random_dna(rng, 3) + unit * k)[:k])
    for _ in range(30):  # one m-mer twice, in both orientations
        half = random_dna(rng, max(1, k // 3))
        words.append((half + random_dna(rng, 2) + rc(half) + random_dna(rng, k))[:k])
        words.append((half + random_dna(rng, 1) + half + random_dna(rng, k))[:k])
    return [canon(s) for s in words]


@pytest.mark.parametrize("k,m", [(31, 13), (21, 11), (15, 7), (32, 16), (31, 31), (9, 4), (7, 1)])
def test_minimizer_anchors_match_brute_force(k, m):
    """Hash, leftmost offset and orientation of each canonical k-mer's minimizer."""
    rng = random.Random(1000 * k + m)
    words = probe_kmers(rng, k, 300)
    keys = np.array([code(s) for s in words], dtype=np.uint64)
    hashes, anchors = K.minimizer_anchors(keys, k, m)
    assert hashes.dtype == np.uint64 and anchors.dtype == np.uint8 and hashes.size == anchors.size == len(words)
    expected = [brute_anchor(s, m) for s in words]
    assert hashes.tolist() == [h for h, _ in expected]
    assert anchors.tolist() == [a for _, a in expected]
    assert np.array_equal(hashes, K.kmer_minimizer_hashes(keys, k, m))
    # the hash is that of the oracle's minimizer (ties between equal m-mers: one m-mer anyway)
    assert hashes.tolist()[:50] == [mhash(code(oracle.minimizer(s, m, mhash))) for s in words[:50]]
    assert K.minimizer_anchors(np.zeros(0, dtype=np.uint64), k, m)[1].size == 0


# -- 2. sequence_anchors ---------------------------------------------------------------------


def noisy_sequence(rng: random.Random, n: int, noise: float = 0.01) -> str:
    """Random bases in mixed case with N and IUPAC bytes, runs of N and low-complexity runs."""
    out = []
    while len(out) < n:
        r = rng.random()
        if r < noise:
            out.append(rng.choice("NNNRY-"))
        elif r < noise + 0.0005:
            out.extend("N" * rng.randint(1, 60))
        elif r < noise + 0.0008:
            out.extend(rng.choice(["A", "ac", "AT", "CAG"]) * rng.randint(10, 60))
        else:
            b = rng.choice("ACGT")
            out.append(b.lower() if rng.random() < 0.2 else b)
    return "".join(out[:n])


def check_sequence_anchors(seq: str, k: int, m: int, sample: list[int] | None) -> None:
    """sequence_anchors against sequence_kmers, minimizer_anchors and a brute force."""
    codes = K.encode(seq)
    got = K.sequence_anchors(codes, k, m)
    positions, kmers, min_hashes = K.sequence_kmers(codes, k, m)
    assert np.array_equal(got.positions, positions) and np.array_equal(got.kmers, kmers)
    assert np.array_equal(got.hashes, min_hashes)
    assert got.anchors.dtype == np.uint8 and got.others.size == got.kmers.size
    hashes, anchors = K.minimizer_anchors(got.kmers, k, m)
    assert np.array_equal(got.hashes, hashes)
    # where the minimum occurs once in the k-mer (numpy oracle on every window, no palindrome)
    clean = np.where(codes < 4, codes, 0)
    w = window_oracle(clean, k, m)
    once = w["count"][got.positions] == 1
    palin = w["fw"][w["place"][got.positions]] == w["rv"][w["place"][got.positions]]
    strict = once & ~palin
    assert np.array_equal(got.anchors[strict], anchors[strict])
    assert once.size == 0 or once.mean() > 0.5
    # plain Python over strings: every k-mer of a short sequence, a sample of a long one
    windows = string_kmers(seq, k)
    assert got.positions.tolist() == [i for i, _ in windows]
    picks = range(len(windows)) if sample is None else sample
    for j in picks:
        if j >= len(windows):
            continue
        i, word = windows[j]
        assert int(got.kmers[j]) == code(word)
        assert int(got.others[j]) == code(rc(word))
        h, a = brute_anchor(word, m)
        assert int(got.hashes[j]) == h
        mm = word[a // 2 : a // 2 + m]
        if min_count(word, m) == 1 and mm != rc(mm):  # one minimizer, no palindrome
            assert int(got.anchors[j]) == a, (seq[i : i + k], word)


@pytest.mark.parametrize("k,m", [(31, 13), (21, 11), (15, 7), (32, 15)])
def test_sequence_anchors_short_sequences(k, m):
    """Every k-mer of short noisy sequences, against the string brute force."""
    rng = random.Random(k * 7 + m)
    for n in (0, k - 1, k, k + 1, 200, 3000):
        check_sequence_anchors(noisy_sequence(rng, n), k, m, None)


@pytest.mark.parametrize("k,m", [(31, 13), (21, 11), (32, 16)])
def test_sequence_anchors_across_blocks(k, m):
    """Sequences longer than kmers.BLOCK: every k-mer by numpy oracle, block edges by strings."""
    rng = random.Random(k + m)
    n = 2 * K.BLOCK + 5000
    seq = noisy_sequence(rng, n, noise=0.002)
    windows = string_kmers(seq, k)
    starts = [i for i, _ in windows]
    edges = set()
    for edge in (K.BLOCK, 2 * K.BLOCK):
        at = int(np.searchsorted(starts, edge - k - 40))
        edges.update(range(at, at + 120))
    sample = sorted(edges | set(rng.sample(range(len(windows)), 1500)))
    check_sequence_anchors(seq, k, m, sample)


def test_sequence_anchors_agree_across_strands():
    """A read and its reverse complement give the same keys, hashes and anchors, in reverse."""
    rng = random.Random(5)
    k, m = 31, 13
    seq = random_dna(rng, K.BLOCK + 3000)
    a = K.sequence_anchors(K.encode(seq), k, m)
    b = K.sequence_anchors(K.encode(rc(seq)), k, m)
    assert np.array_equal(a.kmers, b.kmers[::-1]) and np.array_equal(a.hashes, b.hashes[::-1])
    assert np.array_equal(a.others, b.others[::-1])
    once = window_oracle(K.encode(seq), k, m)["count"] == 1
    assert np.array_equal(a.anchors[once], b.anchors[::-1][once])


def test_sequence_anchors_of_letters_equal_those_of_codes():
    """Letters coded in the k-mer pass (either case, N, other bytes, a separator) give what
    their codes give."""
    rng = random.Random(8)
    letters = "".join(rng.choice("ACGTacgtNn-\x00") if rng.random() < 0.02 else rng.choice("ACGTacgt") for _ in range(20000))
    raw = letters.encode("ascii")
    want = K.sequence_anchors(K.encode(raw), 31, 15)
    assert want.kmers.size > 10000
    for given in (raw, memoryview(raw)[:]):
        got = K.sequence_anchors(given, 31, 15, coded=False)
        for name in ("positions", "kmers", "others", "hashes", "anchors"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name


def test_sequence_anchors_palindromic_minimizer():
    """An even-m minimizer that is its own reverse complement: b is 1 whichever strand is read."""
    k, m = 32, 16
    word = planted_palindrome_kmer(random.Random(3), k, m)
    for read in (word, rc(word)):
        got = K.sequence_anchors(K.encode(read), k, m)
        assert got.anchors.tolist() == K.minimizer_anchors(got.kmers, k, m)[1].tolist()


def planted_palindrome_kmer(rng: random.Random, k: int, m: int) -> str:
    """A canonical k-mer whose minimizer occurs once and is a palindrome, placed off centre so
    that p and k - m - p differ, and whose read orientation is not canonical."""
    best = None
    for _ in range(20000):  # a palindrome of small hash
        half = random_dna(rng, m // 2)
        pal = half + rc(half)
        h = mhash(code(pal))
        if best is None or h < best[0]:
            best = (h, pal)
    assert best is not None
    h, pal = best
    while True:
        word = random_dna(rng, 3) + pal + random_dna(rng, k - m - 3)
        if brute_anchor(canon(word), m)[0] == h and min_count(word, m) == 1 and word != canon(word):
            return word


# -- 3. window_minimizers --------------------------------------------------------------------


def low_complexity_genome(rng: random.Random, n: int) -> str:
    parts = []
    while sum(map(len, parts)) < n:
        parts.append(random_dna(rng, rng.randint(200, 3000)))
        parts.append(rng.choice(["A", "C", "AC", "AG", "CAG", "ACGTTGC", random_dna(rng, 11)]) * rng.randint(5, 80))
    return "".join(parts)[:n]


def all_windows(codes: np.ndarray, k: int) -> np.ndarray:
    return np.arange(max(codes.size - k + 1, 0), dtype=np.int64)


def check_window_minimizers(codes: np.ndarray, k: int, m: int, sample: list[int]) -> None:
    hashes, places, alone, forward = K.window_minimizers(codes, k, m, all_windows(codes, k))
    n = codes.size - k + 1
    assert hashes.size == places.size == alone.size == forward.size == max(n, 0)
    if n <= 0:
        return
    # some windows only (as a layer asks for the starts of its k-mers): the same answers
    some = np.flatnonzero(np.random.default_rng(n).random(n) < 0.3)
    for got, want in zip(K.window_minimizers(codes, k, m, some), (hashes, places, alone, forward)):
        assert np.array_equal(got, want[some])
    w = window_oracle(codes, k, m)
    # places: the leftmost m-mer of the smallest top half, inside the window
    assert ((places >= np.arange(n)) & (places <= np.arange(n) + k - m)).all()
    assert np.array_equal(hashes, w["h"][places])
    assert np.array_equal(hashes >> np.uint64(32), w["hash"] >> np.uint64(32))
    palin = w["fw"][w["place"]] == w["rv"][w["place"]]
    single = (w["count"] == 1) & ~w["tie"] & ~palin
    assert np.array_equal(alone, single)
    assert np.array_equal(places[alone], w["place"][alone])
    assert np.array_equal(hashes[alone], w["hash"][alone])
    assert not alone[w["count"] > 1].any()  # the minimizer twice in the window
    assert np.array_equal(forward, w["fw"][places] <= w["rv"][places])
    # plain Python over strings on a sample of windows
    text = letters(codes)
    for i in sample:
        if i >= n:
            continue
        word = text[i : i + k]
        hs = [mhash(code(canon(word[p : p + m]))) for p in range(k - m + 1)]
        least = min(hs)
        twice = hs.count(least) > 1
        if alone[i]:
            assert not twice
            p = hs.index(least)
            assert int(places[i]) == i + p and int(hashes[i]) == least
            mm = word[p : p + m]
            assert bool(forward[i]) == (mm < rc(mm))
        else:
            tie = sum(1 for x in hs if x >> 32 == least >> 32) > 1
            mm = word[hs.index(least) : hs.index(least) + m]
            assert twice or tie or mm == rc(mm)


@pytest.mark.parametrize("k,m", [(31, 13), (21, 11), (15, 7), (32, 16), (13, 4), (31, 31), (11, 1)])
def test_window_minimizers_match_brute_force(k, m):
    """Every window of a low-complexity genome (with palindromic minimizers for even m), and
    short inputs."""
    rng = random.Random(31 * k + m)
    seq = low_complexity_genome(rng, 20000)
    if m % 2 == 0:
        seq += "".join(planted_palindrome_kmer(rng, k, m) + random_dna(rng, 50) for _ in range(5))
        w = window_oracle(K.encode(seq), k, m)
        assert (w["fw"][w["place"]] == w["rv"][w["place"]]).sum() >= 5
    check_window_minimizers(K.encode(seq), k, m, rng.sample(range(len(seq) - k + 1), 400))
    for n in (0, k - 1, k, k + 5):
        check_window_minimizers(K.encode(random_dna(rng, n)), k, m, list(range(6)))


@pytest.mark.parametrize("k,m", [(31, 13), (25, 9)])
def test_window_minimizers_across_blocks(k, m):
    """Windows on both sides of the block edges, poly-A and a dinucleotide repeat across one."""
    rng = random.Random(k * m)
    seq = low_complexity_genome(rng, 2 * K.BLOCK + 1000)
    seq = seq[: K.BLOCK - 100] + "A" * 150 + seq[K.BLOCK + 50 : 2 * K.BLOCK - 60] + "CA" * 70 + seq[2 * K.BLOCK + 80 :]
    edges = [i for e in (K.BLOCK, 2 * K.BLOCK) for i in range(e - k - 120, e + 120)]
    check_window_minimizers(K.encode(seq), k, m, sorted(set(edges + rng.sample(range(len(seq) - k), 800))))


def top_half_pair(m: int, seed: int) -> tuple[str, str]:
    """Two canonical m-mers whose hashes share their top 32 bits (the smaller hash second),
    the pair of smallest hash among a million random m-mers."""
    rng = np.random.default_rng(seed)
    codes = np.unique(rng.integers(0, 4**m, 1 << 20, dtype=np.uint64))
    fw = codes
    rv = np.zeros_like(fw)
    for j in range(m):
        rv |= (np.uint64(3) - ((fw >> np.uint64(2 * j)) & np.uint64(3))) << np.uint64(2 * (m - 1 - j))
    codes = np.unique(np.minimum(fw, rv))
    h = K.mix64(codes, K._MINIMIZER_SEED)
    order = np.argsort(h)
    h, codes = h[order], codes[order]
    same = np.flatnonzero((h[1:] >> np.uint64(32)) == (h[:-1] >> np.uint64(32)))
    assert same.size
    j = int(same[0])
    small, big = oracle.decode(int(codes[j]), m), oracle.decode(int(codes[j + 1]), m)
    assert mhash(code(small)) < mhash(code(big)) and mhash(code(small)) >> 32 == mhash(code(big)) >> 32
    return big, small


def tie_genome(seed: int, k: int, m: int, copies: int = 20) -> tuple[str, str, str]:
    """Random DNA with the two m-mers of a top-half tie planted close together, the one of
    larger hash first."""
    big, small = top_half_pair(m, seed)
    rng = random.Random(seed)
    parts = []
    for _ in range(copies):
        parts.append(random_dna(rng, 300))
        parts.append(big + random_dna(rng, rng.randint(0, k - 2 * m)) + small)
    parts.append(random_dna(rng, 300))
    return "".join(parts), big, small


def test_top_half_ties():
    """Two m-mers of one window sharing the top half of their hash: window_minimizers does not
    call either alone; sequence_anchors still places the true (leftmost smallest) minimizer."""
    k, m = 31, 13
    seq, _, _ = tie_genome(11, k, m)
    codes = K.encode(seq)
    hashes, _, alone, _ = K.window_minimizers(codes, k, m, all_windows(codes, k))
    w = window_oracle(codes, k, m)
    tied = w["tie"] & (w["count"] == 1)
    assert tied.sum() > 20
    assert not alone[tied].any()
    # the leftmost smallest top half is the m-mer of larger hash, not the minimizer
    assert (hashes[tied] != w["hash"][tied]).any()
    check_window_minimizers(codes, k, m, np.flatnonzero(tied).tolist())
    got = K.sequence_anchors(codes, k, m)
    hs, an = K.minimizer_anchors(got.kmers, k, m)
    assert np.array_equal(got.hashes, hs) and np.array_equal(got.anchors, an)
    for j in np.flatnonzero(tied[got.positions]).tolist():
        word = canon(seq[int(got.positions[j]) : int(got.positions[j]) + k])
        assert brute_anchor(word, m) == (int(got.hashes[j]), int(got.anchors[j]))
    # the dictionary sends those k-mers to the overflow and still finds every key
    keys = key_set(seq, k)
    check_layer(keys, k, m, [MAX_BUCKET, 1, (1, 1)], random.Random(2))


# -- 4. the dictionary end to end -------------------------------------------------------------


class LayerCase:
    """A layer's keys, unitigs and unitig orders, with the brute-force order of every key."""

    def __init__(self, keys: np.ndarray, k: int) -> None:
        self.k = k
        self.keys = keys
        self.array, self.ordinals = build_unitigs(keys, k)
        self.unitigs = UnitigSet(self.array)
        # unitig order by brute force: the rank of each k-mer window in the unitig strings
        order_of = {}
        r = 0
        for s in unitig_strings(self.unitigs):
            for i in range(len(s) - k + 1):
                order_of[code(canon(s[i : i + k]))] = r
                r += 1
        assert r == keys.size and len(order_of) == keys.size
        assert self.ordinals.tolist() == [order_of[x] for x in keys.tolist()]
        self.order_of = order_of

    def dictionary(self, m: int, max_bucket: int = MAX_BUCKET, max_skew: int = MAX_SKEW) -> MinimizerDictionary:
        return MinimizerDictionary(build_dictionary(self.array, m, max_bucket, max_skew), self.unitigs, "test")

    def expected(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        got = [self.order_of.get(x, -1) for x in queries.tolist()]
        orders = np.array(got, dtype=np.int64)
        return orders >= 0, orders


def junction_kmers(case: LayerCase) -> np.ndarray:
    """Canonical k-mers read across the joins of consecutive unitigs in the base sequence:
    what a wrong start computed from an anchor would spell."""
    k = case.k
    fw, rv = mmer_codes(case.unitigs.codes(), k)
    b = case.unitigs.base_starts()[1:-1]
    at = (b[:, None] - np.arange(1, k)[None, :]).ravel()
    return np.unique(np.minimum(fw[at], rv[at]))


def strangers(case: LayerCase, rng: random.Random, n: int) -> np.ndarray:
    """Random canonical k-mers, one-base mutants of keys and junction k-mers, none a key."""
    k = case.k
    gen = np.random.default_rng(rng.randrange(1 << 30))
    top = 4**k if k < 32 else None
    rand = gen.integers(0, top, n, dtype=np.uint64) if top else gen.integers(0, 2**64 - 1, n, dtype=np.uint64)
    pick = case.keys[gen.integers(0, case.keys.size, n // 4)] if case.keys.size else np.zeros(0, np.uint64)
    shift = (2 * gen.integers(0, k, pick.size)).astype(np.uint64)
    mutants = pick ^ (gen.integers(1, 4, pick.size).astype(np.uint64) << shift)
    out = np.concatenate([rand, mutants, junction_kmers(case) if case.unitigs.n_unitigs > 1 else rand[:0]])
    out = np.minimum(out, K.reverse_complement(out, k))
    return out[~np.isin(out, case.keys)]


def reads_of(rng: random.Random, seq: str, n: int, lo: int = 40, hi: int = 3000) -> str:
    """Reads cut from ``seq`` on both strands, in mixed case with a few N, joined by N."""
    out = []
    for _ in range(n):
        length = rng.randint(lo, hi)
        at = rng.randrange(0, max(1, len(seq) - length))
        read = seq[at : at + length]
        if rng.random() < 0.5:
            read = rc(read)
        chars = list(read)
        for _ in range(rng.randint(0, 2)):
            chars[rng.randrange(len(chars))] = "N"
        if rng.random() < 0.3:
            chars = [c.lower() if rng.random() < 0.5 else c for c in chars]
        out.append("".join(chars))
    return "N".join(out)


def check_find(d: MinimizerDictionary, case: LayerCase, queries: np.ndarray, **given) -> None:
    found, orders = d.find(queries, **given)
    assert found.dtype == bool and orders.dtype == np.int64 and found.size == orders.size == queries.size
    want, want_orders = case.expected(queries)
    assert np.array_equal(found, want), f"{int((found != want).sum())} wrong answers of {queries.size}"
    assert np.array_equal(orders[found], want_orders[found])


def check_layer(keys: np.ndarray, k: int, m: int, limits: list, rng: random.Random, seq: str = "") -> LayerCase:
    """Stats against the brute force, keys, strangers and reads, for each limit: a
    ``max_bucket``, or a ``(max_bucket, max_skew)`` pair."""
    case = LayerCase(keys, k)
    others = strangers(case, rng, 20000)
    for limit in limits:
        mb, ms = limit if isinstance(limit, tuple) else (limit, MAX_SKEW)
        d = case.dictionary(m, mb, ms)
        assert (d.n, d.k, d.m) == (keys.size, k, m)
        assert d.stats() == expected_stats(case.unitigs, m, mb, ms)
        check_find(d, case, keys)
        check_find(d, case, others)
        mixed = np.concatenate([keys, others])
        check_find(d, case, mixed[np.random.default_rng(mb).permutation(mixed.size)])
        if seq:
            codes = K.encode(reads_of(rng, seq, 40))
            got = K.sequence_anchors(codes, k, m)
            check_find(d, case, got.kmers, hashes=got.hashes, anchors=got.anchors, others=got.others)
    return case


@pytest.fixture(params=["ahead", "one by one"])
def skew_lookups(request, monkeypatch):
    """Skew slots looked up in batches ahead of the keys (any share of skewed k-mers), or one
    by one where a key needs its own (never ahead)."""
    monkeypatch.setattr(D, "_SKEW_AHEAD", 1 << 62 if request.param == "ahead" else 0)
    return request.param


@pytest.fixture(scope="module")
def genome():
    return genome_with_repeats(1, 150_000)


@pytest.fixture(scope="module")
def layer(genome):
    return LayerCase(key_set(genome, 31), 31)


@pytest.mark.parametrize("limits", [(MAX_BUCKET, MAX_SKEW), (2, 4), (1, MAX_SKEW), (1, 1)])
def test_every_key_found_at_its_unitig_order(layer, limits, skew_lookups):
    """All keys, in sorted, shuffled and minimizer order, and as a strided column."""
    d = layer.dictionary(13, *limits)
    check_find(d, layer, layer.keys)
    rng = np.random.default_rng(sum(limits))
    check_find(d, layer, layer.keys[rng.permutation(layer.keys.size)])
    hashes, anchors = K.minimizer_anchors(layer.keys, 31, 13)
    by_hash = np.argsort(hashes, kind="stable")  # runs of one minimizer from several anchors
    check_find(d, layer, layer.keys[by_hash])
    check_find(d, layer, layer.keys[by_hash][::-1])
    table = np.empty((layer.keys.size, 4), dtype=np.uint64)  # columns as the query engine passes them
    table[:, 0], table[:, 1], table[:, 2] = layer.keys, anchors, hashes
    table[:, 3] = K.reverse_complement(layer.keys, 31)
    table = table[rng.permutation(layer.keys.size)]
    check_find(d, layer, table[:, 0], hashes=table[:, 2], anchors=table[:, 1].astype(np.uint8), others=table[:, 3])
    check_find(d, layer, table[:, 0], hashes=table[:, 2], anchors=table[:, 1].astype(np.uint8))
    # duplicates in a query and one key at a time
    twice = np.repeat(layer.keys[:500], 2)
    check_find(d, layer, twice)
    for x in layer.keys[::20000]:
        check_find(d, layer, np.array([x], dtype=np.uint64))


@pytest.mark.parametrize("limits", [(MAX_BUCKET, MAX_SKEW), (2, 4), (1, MAX_SKEW), (1, 1)])
def test_strangers_are_not_found(layer, limits, skew_lookups):
    """~100k random k-mers, one-base mutants of keys and k-mers across unitig joins."""
    d = layer.dictionary(13, *limits)
    rng = random.Random(sum(limits))
    others = strangers(layer, rng, 100_000)
    assert others.size > 100_000
    found, _ = d.find(others)
    assert not found.any()
    mixed = np.concatenate([layer.keys, others])
    perm = np.random.default_rng(3).permutation(mixed.size)
    check_find(d, layer, mixed[perm])


@pytest.mark.parametrize("limits", [(MAX_BUCKET, MAX_SKEW), (2, 4), (1, MAX_SKEW), (1, 1)])
def test_reads_on_both_strands(layer, genome, limits, skew_lookups):
    """Keys from sequence_anchors over reads of the genome (both strands, N, lowercase), and
    over reads of a mutated genome (members and strangers mixed)."""
    d = layer.dictionary(13, *limits)
    rng = random.Random(10 + sum(limits))
    text = reads_of(rng, genome, 150)
    assert len(text) > K.BLOCK
    got = K.sequence_anchors(K.encode(text), 31, 13)
    assert got.kmers.tolist() == [code(w) for _, w in string_kmers(text, 31)]
    found, orders = d.find(got.kmers, got.hashes, got.anchors, got.others)
    assert found.all()
    assert orders.tolist() == [layer.order_of[x] for x in got.kmers.tolist()]
    check_find(d, layer, got.kmers, hashes=got.hashes, anchors=got.anchors)
    mutant = mutate(rng, genome, 0.01)
    got = K.sequence_anchors(K.encode(reads_of(rng, mutant, 100)), 31, 13)
    check_find(d, layer, got.kmers, hashes=got.hashes, anchors=got.anchors, others=got.others)
    found, _ = d.find(got.kmers, got.hashes, got.anchors, got.others)
    assert 0.3 < found.mean() < 0.95


@pytest.mark.parametrize("version, share", [(1, 1 << 62), (2, 0), (2, 1 << 62)], ids=["1", "2 levels", "2 pilots"])
def test_skew_index_of_either_version(layer, genome, version, share, skew_lookups, monkeypatch):
    """Version 2 hashes a skew index of a large share of the k-mers by pilots (forced here for
    any share, or never), version 1 (still read) always by levels: each finds every key at its
    unitig order, no stranger, and the k-mers of reads (every bucket of more than one anchor is
    skewed)."""
    monkeypatch.setattr(D, "_PILOT_SHARE", share)
    array = build_dictionary(layer.array, 13, 1, MAX_SKEW, version=version)
    assert int(array[1]) == version
    skew_at = int(array[21])
    assert int(array[skew_at]) == (PILOT_MAGIC if version == 2 and share else MPHF_MAGIC)
    d = MinimizerDictionary(array, layer.unitigs, "test")
    assert d.version == version and d.stats() == expected_stats(layer.unitigs, 13, 1, MAX_SKEW)
    assert d.stats()["skew_kmers"] > 1000
    check_find(d, layer, layer.keys[np.random.default_rng(version).permutation(layer.keys.size)])
    others = strangers(layer, random.Random(version), 30_000)
    assert not d.find(others)[0].any()
    got = K.sequence_anchors(K.encode(reads_of(random.Random(version), genome, 30)), 31, 13)
    check_find(d, layer, got.kmers, hashes=got.hashes, anchors=got.anchors, others=got.others)


def test_pilot_skew_index_in_version_1_is_rejected(layer, monkeypatch):
    """A version-1 header over a skew index hashed by pilots: not what version 1 holds."""
    monkeypatch.setattr(D, "_PILOT_SHARE", 1 << 62)
    array = build_dictionary(layer.array, 13, 1, MAX_SKEW)
    array[1] = 1
    with pytest.raises(CorruptDatabaseError):
        MinimizerDictionary(array, layer.unitigs, "test")


def test_unknown_version_is_not_written(layer):
    with pytest.raises(InvalidParameterError, match="version"):
        build_dictionary(layer.array, 13, version=3)


def test_stats_exercise_every_path(layer):
    """The counts match a brute force, and the genome fills multi buckets, extra anchors, the
    skew index and the overflow (heavy buckets and k-mers without one anchor)."""
    limits = [(MAX_BUCKET, MAX_SKEW), (2, 4), (1, MAX_SKEW), (2, 2), (1, 1)]
    stats = {lim: layer.dictionary(13, *lim).stats() for lim in limits}
    for lim, s in stats.items():
        assert s == expected_stats(layer.unitigs, 13, *lim)
    s = stats[(MAX_BUCKET, MAX_SKEW)]
    assert s["multi_buckets"] > 10 and s["extra_anchors"] > s["multi_buckets"] and s["overflow_kmers"] > 0
    assert s["skew_kmers"] > 0  # the 12-copy family: buckets of more than MAX_BUCKET anchors
    assert stats[(1, MAX_SKEW)]["skew_kmers"] > stats[(2, 4)]["skew_kmers"] > 0
    assert stats[(2, 2)]["extra_anchors"] == stats[(2, 2)]["multi_buckets"] > 0  # two anchors each
    assert stats[(1, 1)]["multi_buckets"] == stats[(1, 1)]["extra_anchors"] == 0
    assert stats[(1, 1)]["overflow_kmers"] > stats[(2, 2)]["overflow_kmers"] > s["overflow_kmers"]
    # k-mers whose minimizer occurs twice in them (poly-A, tandem repeats) are in the overflow
    poly = np.array([code(canon(w)) for w in ("A" * 31, ("AC" * 16)[:31], ("ACGTTGC" * 5)[:31])], dtype=np.uint64)
    assert np.isin(poly, layer.keys).all()
    d = layer.dictionary(13, MAX_BUCKET)
    check_find(d, layer, poly)
    assert s["buckets"] < layer.keys.size / 5


@pytest.mark.parametrize(
    "k,m,max_bucket",
    [(21, 11, MAX_BUCKET), (15, 7, 2), (32, 16, MAX_BUCKET), (32, 15, 1), (31, 31, MAX_BUCKET), (17, 9, 3), (31, 1, 1)],
)
def test_other_k_and_m(k, m, max_bucket):
    """Smaller genomes for other k and m, palindromic minimizers (even m) and m = k."""
    seq = genome_with_repeats(k * m, 24_000)
    if k % 2 == 0:  # a palindromic k-mer
        half = random_dna(random.Random(k), k // 2)
        seq += "T" + half + rc(half) + "G"
    if m % 2 == 0:  # a palindromic minimizer
        seq += planted_palindrome_kmer(random.Random(1), k, m) + "C"
    check_layer(key_set(seq, k), k, m, [max_bucket, MAX_BUCKET, (1, max_bucket)], random.Random(k), seq)


def test_every_kmer_in_the_overflow(skew_lookups):
    """Tiny m with buckets of one anchor: (nearly) no bucket, the k-mers found in the overflow."""
    seq = genome_with_repeats(5, 20_000)
    case = check_layer(key_set(seq, 31), 31, 2, [(1, 1)], random.Random(5), seq)
    s = case.dictionary(2, 1, 1).stats()
    assert s == {"buckets": 0, "multi_buckets": 0, "extra_anchors": 0, "skew_kmers": 0, "overflow_kmers": case.keys.size}
    check_layer(case.keys, 31, 5, [(1, 1), 1], random.Random(6), seq)
    s = case.dictionary(5, 1, 1).stats()
    assert s["buckets"] < 50 and s["overflow_kmers"] > case.keys.size - 100
    s = case.dictionary(5, 1).stats()  # the same minimizers, through the skew index
    assert s["skew_kmers"] > case.keys.size / 2


def test_empty_and_tiny_layers():
    """A layer of no k-mer finds nothing; layers of one k-mer find exactly it."""
    case = LayerCase(np.zeros(0, dtype=np.uint64), 31)
    d = case.dictionary(13)
    assert d.n == 0 and d.stats() == {"buckets": 0, "multi_buckets": 0, "extra_anchors": 0, "skew_kmers": 0, "overflow_kmers": 0}
    probes = K.canonical(np.random.default_rng(0).integers(0, 4**31, 1000, dtype=np.uint64), 31)
    found, orders = d.find(probes)
    assert not found.any() and orders.size == 1000
    assert d.find(np.zeros(0, dtype=np.uint64))[0].size == 0
    for word, k, m in [
        ("ACGTTGCATGCAAGTCCGATGGCATTACGAT", 31, 13),
        ("A" * 31, 31, 13),
        ("ACGTTAGGCCATGACT" + rc("ACGTTAGGCCATGACT"), 32, 16),
        (canon("GATTACAGATTACAGATTACAGATTACAGAT"), 31, 31),
    ]:
        keys = np.array([code(canon(word))], dtype=np.uint64)
        check_layer(keys, k, m, [MAX_BUCKET, 1, (1, 1)], random.Random(len(word)), word)
        case = LayerCase(keys, k)
        d = case.dictionary(m)
        assert d.find(keys)[0].tolist() == [True] and d.find(keys)[1].tolist() == [0]
        assert d.find(np.array([code(canon(word)) ^ 1], dtype=np.uint64))[0].tolist() == [False]


# -- 5. corruption ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    """A valid dictionary with buckets of several anchors, extra anchors and an overflow."""
    seq = genome_with_repeats(7, 12_000)
    case = LayerCase(key_set(seq, 31), 31)
    array = build_dictionary(case.array, 13, 2)
    head = [int(x) for x in array[:HEADER_WORDS]]
    n, ow = head[H["n"]], head[H["order width"]]
    assert head[0] == MAGIC and head[1] == VERSION and head[H["total"]] == array.size
    assert head[H["M"]] >= 1 and head[H["E"]] > head[H["M"]] and head[H["F"]] >= 1 and head[H["S"]] >= 1
    assert n < 2**ow  # an overflow order of n fits its field
    assert head[5] % 64  # a free flag bit after the last bucket's
    MinimizerDictionary(array, case.unitigs)
    return case, array


#: Header words by name (the layout in kmerdb.core.dictionary's docstring).
NAMES = [
    "magic", "version", "n", "k", "m", "B", "anchor width", "M", "E", "extra width", "L", "S", "skew width", "F",
    "order width", "mphf at", "mphf len", "anchors at", "flags at", "starts at", "extras at", "skew at", "skew len",
    "entries at", "over at", "over len", "orders at", "total",
]  # fmt: skip
H = {name: i for i, name in enumerate(NAMES)}
assert len(H) == HEADER_WORDS


def edited(array: np.ndarray, words: dict[int, int]) -> np.ndarray:
    """A copy of ``array`` with some words replaced."""
    out = array.copy()
    for at, value in words.items():
        out[at] = np.uint64(value % 2**64)
    return out


def repacked(array: np.ndarray, start_word: int, end: int, count: int, width: int, change) -> np.ndarray:
    """``array`` with the packed fields of one section unpacked, changed and packed back."""
    out = array.copy()
    values = bits.unpack(out[start_word:end], count, width)
    change(values)
    out[start_word:end] = bits.pack(values, width)
    return out


def corrupted_variants(case: LayerCase, array: np.ndarray) -> dict[str, np.ndarray]:
    h = [int(x) for x in array[:HEADER_WORDS]]
    n, B, M, E, ew = h[H["n"]], h[H["B"]], h[H["M"]], h[H["E"]], h[H["extra width"]]
    S, sw, F, ow = h[H["S"]], h[H["skew width"]], h[H["F"]], h[H["order width"]]
    flags_at, starts_at, extras_at = h[H["flags at"]], h[H["starts at"]], h[H["extras at"]]
    entries_at, over_at, orders_at, total = h[H["entries at"]], h[H["over at"]], h[H["orders at"]], h[H["total"]]
    flags = bits.unpack_flags(array[flags_at:starts_at], B)
    zero, one = int(np.flatnonzero(~flags)[0]), int(np.flatnonzero(flags)[0])

    def flip(j: int) -> np.ndarray:
        out = array.copy()
        out[flags_at + (j >> 6)] ^= np.uint64(1) << np.uint64(63 - (j & 63))
        return out

    def set_at(i, v):
        return lambda values: values.__setitem__(i, v)

    variants = {
        "magic": edited(array, {0: MAGIC ^ 1}),
        "version": edited(array, {1: VERSION + 1}),
        "version 0": edited(array, {1: 0}),
        "n + 1": edited(array, {2: n + 1}),
        "n - 1": edited(array, {2: n - 1}),
        "k": edited(array, {3: 30}),
        "m = 0": edited(array, {4: 0}),
        "m > k": edited(array, {4: 32}),
        "multi > buckets": edited(array, {H["M"]: B + 1}),
        "overflow > n": edited(array, {H["F"]: n + 1}),
        "skew > n": edited(array, {H["S"]: n + 1}),
        "scan limit 0": edited(array, {H["L"]: 0}),
        "anchor width 0": edited(array, {H["anchor width"]: 0}),
        "anchor width 65": edited(array, {H["anchor width"]: 65}),
        "huge extra count": edited(array, {H["E"]: 2**40}),
        "huge bucket count": edited(array, {H["B"]: 2**50}),
        "extra width 0": edited(array, {H["extra width"]: 0}),
        "skew width 0": edited(array, {H["skew width"]: 0}),
        "order width 0": edited(array, {H["order width"]: 0}),
        "total + 1": edited(array, {H["total"]: total + 1}),
        "total - 1": edited(array, {H["total"]: total - 1}),
        "truncated": array[:-1].copy(),
        "one word more": np.append(array, np.uint64(0)),
        "header only": array[: HEADER_WORDS - 1].copy(),
        "flag set": flip(zero),
        "flag cleared": flip(one),
        "order n": repacked(array, orders_at, total, F, ow, set_at(0, n)),
        "order max": repacked(array, orders_at, total, F, ow, set_at(F - 1, 2**ow - 1)),
        "starts flat": repacked(array, starts_at, extras_at, M + 1, ew, set_at(1, 0)),
        "starts end": repacked(array, starts_at, extras_at, M + 1, ew, set_at(M, E - 1)),
        "starts begin": repacked(array, starts_at, extras_at, M + 1, ew, set_at(0, 1)),
        "bucket MPHF magic": edited(array, {h[H["mphf at"]]: int(array[h[H["mphf at"]]]) ^ 1}),
        "skew MPHF magic": edited(array, {h[H["skew at"]]: int(array[h[H["skew at"]]]) ^ 1}),
        "overflow MPHF magic": edited(array, {over_at: int(array[over_at]) ^ 1}),
        "bucket MPHF n": edited(array, {h[H["mphf at"]] + 2: int(array[h[H["mphf at"]] + 2]) + 1}),
        "skew MPHF n": edited(array, {h[H["skew at"]] + 2: int(array[h[H["skew at"]] + 2]) + 1}),
        "int64": array.view(np.int64),
        "2-D": array[: array.size // 2 * 2].reshape(2, -1),
    }
    assert S and sw and entries_at  # a skew index to damage
    for word in range(H["mphf at"], H["total"]):
        for step in (1, -1):
            variants[f"word {word} {step:+d}"] = edited(array, {word: h[word] + step})
    return variants


def test_corrupt_headers_are_rejected(small):
    """Each alteration of a valid array raises CorruptDatabaseError when opened."""
    case, array = small
    accepted = []
    for name, bad in corrupted_variants(case, array).items():
        try:
            MinimizerDictionary(bad, case.unitigs, "bad.npy")
        except CorruptDatabaseError as e:
            assert "bad.npy" in str(e)
        else:
            accepted.append(name)
    assert accepted == []


def test_dictionary_of_other_unitigs_is_rejected(small, layer):
    """A dictionary opened beside another layer's unitigs (other n, other k)."""
    case, array = small
    with pytest.raises(CorruptDatabaseError):
        MinimizerDictionary(array, layer.unitigs)
    other = LayerCase(key_set(genome_with_repeats(8, 3000), 21), 21)
    with pytest.raises(CorruptDatabaseError):
        MinimizerDictionary(build_dictionary(other.array, 11), case.unitigs)


def test_mphf_of_the_wrong_size_is_rejected(small):
    """A well-formed array whose bucket MPHF holds another number of keys than the header says."""
    case, array = small
    h = [int(x) for x in array[:HEADER_WORDS]]
    starts = [H[name] for name in ("mphf at", "anchors at", "flags at", "starts at", "extras at", "skew at",
                                   "entries at", "over at", "orders at", "total")]
    bounds = [h[i] for i in starts]
    sections = [array[a:b] for a, b in itertools.pairwise(bounds)]
    sections[0] = MPHF.build(np.arange(h[H["B"]] + 1, dtype=np.uint64)).to_array()
    sizes = np.cumsum([HEADER_WORDS] + [s.size for s in sections])
    head = list(h)
    for i, at in zip(starts, sizes):
        head[i] = int(at)
    head[H["mphf len"]] = sections[0].size
    bad = np.concatenate([np.array(head, dtype=np.uint64), *sections])
    with pytest.raises(CorruptDatabaseError, match="hash function"):
        MinimizerDictionary(bad, case.unitigs)


def test_header_fuzz_raises_only_corruption(small):
    """Any value in any header word: either CorruptDatabaseError or a dictionary whose finds
    raise nothing else."""
    case, array = small
    probes = np.concatenate([case.keys[::7], strangers(case, random.Random(1), 2000)])
    for word in range(HEADER_WORDS):
        v = int(array[word])
        for value in {0, 1, v - 1, v + 1, 2 * v, v + 64, 2**32, 2**63, 2**64 - 1}:
            bad = edited(array, {word: value})
            try:
                d = MinimizerDictionary(bad, case.unitigs)
            except CorruptDatabaseError:
                continue
            with contextlib.suppress(CorruptDatabaseError):
                d.find(probes)


# -- 6. size ---------------------------------------------------------------------------------


def test_bits_per_kmer():
    """About one anchor per super-k-mer: a few bits per k-mer, far from a position per k-mer."""
    rng = random.Random(200)
    seq = random_dna(rng, 200_000)
    case = LayerCase(key_set(seq, 31), 31)
    array = build_dictionary(case.array, 13)
    n = case.keys.size
    assert 8 * array.nbytes / n < 4.0
    d = MinimizerDictionary(array, case.unitigs)
    s = d.stats()
    assert 0.07 < s["buckets"] / n < 0.13  # minimizer density 2 / (w + 1) = 0.1
    assert s["overflow_kmers"] < n / 1000


def test_nbytes_is_the_array_size(layer):
    """MinimizerDictionary.nbytes is documented as the bytes of its array."""
    array = build_dictionary(layer.array, 13)
    assert MinimizerDictionary(array, layer.unitigs).nbytes == array.nbytes
