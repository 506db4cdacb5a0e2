"""Unitigs: a layer's k-mers as the maximal unitigs of its de Bruijn graph, 2 bits per base.

Graph.  The nodes are the layer's canonical k-mers; every node has two sides, the right
end of its forward string and the left end.  Side ``a`` of node x and side ``b`` of node
y are joined by an edge when the k-mers overlap by k-1 bases in the matching
orientations.  Each side has an outgoing (k-1)-mer ``t``: the suffix of x for its right
side and the reverse complement of the prefix of x for its left side; two sides are
joined exactly when ``t_a`` is the reverse complement of ``t_b``.  Writing ``t`` as its
canonical form plus a sign (+ when ``t`` is canonical), the sides joined to a side are
the sides with the same canonical (k-1)-mer and the opposite sign; a palindromic
(k-1)-mer (possible for odd k) gives its sides the same sign and joins all of them to
each other, the side itself included.

Compaction.  Two sides are linked when they are joined to each other and to nothing
else (their canonical (k-1)-mer occurs on exactly these two sides, with opposite
signs) and belong to different nodes.  A unitig is a maximal chain of links: a path,
or a cycle cut open at its smallest oriented node.  A node whose two sides are joined
to each other (like ``AAA...A``) always ends a unitig, and so does a palindromic k-mer
(even k only: it is its own reverse complement, has the same neighbours on both sides,
and links through its right side only).  Within one layer, no unitig can be extended
by, or glued to, another.  The layer's k-mers are those of one partition, so a unitig
stops where its next k-mer lives in another partition or another layer.

Construction is whole-array numpy: the 2n sides are sorted by canonical (k-1)-mer to
find the links; a successor array over oriented nodes (node ``i`` forward is ``2i``,
reverse is ``2i+1``; a link between sides ``a`` and ``b`` makes ``next[a] = b ^ 1``) is
ranked by pointer jumping, whose rounds run on the shrinking set of elements that have
not reached the end of their chain; cycles are found as the elements that never do.
Of the two walks of a chain (one per direction), the one ending at the smaller oriented
node is kept; unitigs are ordered by the node index (the sorted k-mer) of their first
k-mer, or, given a group number per k-mer (a layer's colour classes), by the group of their
first k-mer and then that index.

Serialized layout: one 1-D little-endian uint64 array (one ``.npy`` file)::

    word   field
    0      MAGIC ("kmerUTIG" as little-endian bytes)
    1      VERSION
    2      k
    3      n, the number of k-mers
    4      U, the number of unitigs
    5      B, the number of bases (n + U * (k - 1))
    6      width of an offset, in bits (version 1; 1 in version 2)
    7      offsets_start (word offset of the offsets)
    8      seq_start (word offset of the sequence)
    9      total length of the array, in words
    offsets_start   version 2: n flags of one bit, flag r set when a unitig starts at the
                    k-mer of unitig order r (U of them, flag 0 among them); version 1: U + 1
                    bit-packed k-mer offsets.  Either way unitig u holds the k-mers of unitig
                    order offsets[u] .. offsets[u+1]-1 (see :mod:`kmerdb.bits`)
    seq_start       B bases, 2 bits each (A=0 C=1 G=2 T=3), first base most significant,
                    unitigs back to back; unitig u starts at base offsets[u] + u * (k-1)

Version 2 (format 3) stores the offsets as flags: one bit per k-mer instead of bits(n) per
unitig, which is less wherever unitigs are shorter than bits(n) k-mers (layers of short
unitigs, as those of many related genomes, save about 2 bits per k-mer).  Version 1 is read.

The k-mer of unitig order r, in unitig u, starts at base ``r + u * (k - 1)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import numpy.typing as npt

from kmerdb.core import bits
from kmerdb.core.kmers import canonical, reverse_complement
from kmerdb.errors import CorruptDatabaseError

if TYPE_CHECKING:
    from kmerdb.database import Database

__all__ = [
    "Compaction",
    "compact",
    "build_unitigs",
    "UnitigSet",
    "UnitigWalk",
    "fasta_records",
    "write_fasta",
    "write_unitigs",
    "MAGIC",
    "VERSION",
]

MAGIC = int.from_bytes(b"kmerUTIG", "little")
VERSION = 2
#: Versions read: 1 stored the offsets bit-packed.
_READ_VERSIONS = (1, 2)
HEADER_WORDS = 10

_U64 = np.uint64
_LETTERS = np.frombuffer(b"ACGT", dtype=np.uint8)


@dataclass(frozen=True)
class Compaction:
    """The unitigs of a sorted k-mer set, as an order of its k-mers.

    Attributes
    ----------
    order : ndarray of int64
        ``order[r]`` is the index (in the sorted keys) of the k-mer of unitig order r.
    reverse : ndarray of bool
        Whether that k-mer is read as its reverse complement in its unitig.
    offsets : ndarray of int64, shape (U + 1,)
        Unitig u holds unitig orders ``offsets[u]`` to ``offsets[u+1] - 1``.
    branches : ndarray of int64, shape (2, B)
        Pairs of k-mers (indices in the sorted keys) joined at a branching (k-1)-mer, one
        shown on three sides or more: the graph's edges that end unitigs (a variant's
        bubble).  Colour classes are written as differences along them
        (:mod:`kmerdb.store.classes`).
    """

    order: np.ndarray
    reverse: np.ndarray
    offsets: np.ndarray
    branches: np.ndarray = field(default_factory=lambda: np.zeros((2, 0), dtype=np.int64))

    @property
    def n_unitigs(self) -> int:
        return self.offsets.size - 1


def _index_dtype(m: int) -> np.dtype:
    """Narrowest index type for m elements: int32 halves the bytes every gather moves."""
    return np.dtype(np.int32) if m < 2**31 - 1 else np.dtype(np.int64)


def _pairs(same: np.ndarray) -> np.ndarray:
    """Positions j of a sorted array where j and j+1 are a group of exactly two equal keys.

    ``same[j]`` tells whether keys j and j+1 are equal.
    """
    pair = same.copy()
    pair[1:] &= ~same[:-1]
    pair[:-1] &= ~same[1:]
    return np.flatnonzero(pair)


#: Nodes prepared per block in :func:`_links`, so the temporaries stay in cache.
_BLOCK = 1 << 15


def _branch_joins(sides: np.ndarray, sign: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Node pairs joined at branching (k-1)-mers: ``sides`` sorted by (k-1)-mer, ``group``
    numbering their (k-1)-mers (groups of three sides or more only), ``sign`` as in
    :func:`_links`.  Each side is paired with the next ``_BRANCH_SPAN`` of its group of the
    opposite sign, which in a (k-1)-mer of a few sides (a variant) is every pair."""
    wide = np.bincount(group).take(group) >= 3
    sides, sign, group = sides[wide], sign[wide], group[wide]
    a_parts, b_parts = [], []
    for d in range(1, _BRANCH_SPAN + 1):
        ok = (group[d:] == group[:-d]) & (sign[d:] != sign[:-d])
        a, b = sides[:-d][ok] >> 1, sides[d:][ok] >> 1
        keep = a != b
        a_parts.append(a[keep])
        b_parts.append(b[keep])
    return np.stack([np.concatenate(a_parts), np.concatenate(b_parts)]).astype(np.int64)


#: Sides of a branching (k-1)-mer each side is paired with (:func:`_branch_joins`).
_BRANCH_SPAN = 4


def _links(keys: np.ndarray, k: int, branches: list[np.ndarray] | None = None) -> np.ndarray:
    """Successor of every oriented node (``2i`` forward, ``2i+1`` reverse), -1 at chain ends.

    With a list ``branches``, the node pairs joined at branching (k-1)-mers are appended to
    it (:attr:`Compaction.branches`).

    Element ``2i`` leaves node i through its right side, ``2i+1`` through its left side, so
    elements and sides share their numbering and a link between sides a and b makes
    ``next[a] = b ^ 1`` (entering through a side means leaving through the other one).
    """
    n = keys.size
    m = 2 * n
    it = _index_dtype(m)
    if k == 1 or n < 2:
        return np.full(m, -1, dtype=it)  # 0-mers join every side to every side: nothing links
    km1 = k - 1
    low = _U64((1 << (2 * km1)) - 1)
    # A palindromic k-mer (even k: its own reverse complement) shows the same (k-1)-mer on
    # both sides: it has one neighbourhood, not two.  Its left side gets a key no (k-1)-mer
    # can have (bit 62 set), so only its right side links, and it ends its unitig.
    key_bits = 63 if k % 2 == 0 else 2 * km1
    # Sort (key, sign, side) packed in one uint64: a value sort is several times faster than
    # an argsort.  When they do not fit, the key's low bits stand in for it; its high bits
    # are kept apart to check the pairs, and groups of three or more are sorted again.
    side_bits = max(1, (m - 1).bit_length())
    room = 64 - side_bits - 1
    exact = key_bits <= room
    high_bits = 0 if exact else key_bits - room
    packed = np.empty(m, dtype=np.uint64)
    pk = packed.reshape(-1, 2)
    high: np.ndarray | None = None  # set exactly when the keys do not fit (not exact)
    hk: np.ndarray | None = None
    if not exact:
        high = np.empty(m, dtype=np.uint16 if high_bits <= 16 else np.uint32)
        hk = high.reshape(-1, 2)
    keep = _U64((1 << room) - 1) if not exact else ~_U64(0)
    s_side, s_key, s_high = _U64(side_bits), _U64(side_bits + 1), _U64(room)
    for lo in range(0, n, _BLOCK):
        x = keys[lo : lo + _BLOCK]
        rx = reverse_complement(x, k)
        el = np.arange(2 * lo, 2 * lo + 2 * x.size, 2, dtype=np.uint64)
        # right side: (k-1)-mer = suffix of x, its reverse complement = prefix of rc(x);
        # left side: suffix of rc(x), whose reverse complement is the prefix of x
        for col, t, rt in ((0, x & low, rx >> _U64(2)), (1, rx & low, x >> _U64(2))):
            plus = (t <= rt).astype(np.uint64)
            np.minimum(t, rt, out=t)
            if col == 1 and k % 2 == 0:
                pal = np.flatnonzero(x == rx)
                t[pal] = (_U64(1) << _U64(62)) | (pal + lo).astype(np.uint64)
            if hk is not None:
                hk[lo : lo + x.size, col] = t >> s_high
            t &= keep
            t <<= s_key
            t |= plus << s_side
            t |= el + _U64(col)
            pk[lo : lo + x.size, col] = t
    packed.sort()
    if side_bits < 31 and it == np.int32:
        # side and sign sit in the low 32 bits of each word (little-endian): one strided pass
        low32 = packed.view(np.uint32)[0 :: 2] if np.little_endian else packed.view(np.uint32)[1 :: 2]
        side = (low32 & np.uint32((1 << side_bits) - 1)).view(np.int32)
        plus = (low32 >> np.uint32(side_bits)).astype(np.uint8)
    else:
        side = (packed & _U64((1 << side_bits) - 1)).astype(it)
        plus = (packed >> s_side).astype(np.uint8)
    plus &= np.uint8(1)
    packed >>= s_key
    same = np.empty(m - 1, dtype=bool)
    np.equal(packed[1:], packed[:-1], out=same)
    del packed
    j = _pairs(same)
    a, b = side.take(j), side.take(j + 1)
    ok = plus.take(j) != plus.take(j + 1)  # joined: opposite signs (a palindromic (k-1)-mer has only +)
    three = np.flatnonzero(same[:-1] & same[1:])
    if high is not None:
        ok &= high.take(a) == high.take(b)
        # groups of three or more equal truncated keys may hide an exact pair
        if three.size:
            inside = np.zeros(m, dtype=bool)
            inside[three] = inside[three + 1] = inside[three + 2] = True
            cand = side[inside]
            full, sign = _side_keys(keys, k, cand)
            order = np.argsort(full, kind="stable")
            cand, full, sign = cand[order], full[order], sign[order]
            eq = full[1:] == full[:-1]
            jj = _pairs(eq)
            a = np.concatenate([a, cand[jj]])
            b = np.concatenate([b, cand[jj + 1]])
            ok = np.concatenate([ok, sign[jj] != sign[jj + 1]])
            if branches is not None:
                branches.append(_branch_joins(cand, sign, np.cumsum(np.concatenate(([True], ~eq)))))
    elif branches is not None and three.size:
        inside = np.zeros(m, dtype=bool)
        inside[three] = inside[three + 1] = inside[three + 2] = True
        at = np.flatnonzero(inside)
        # a new (k-1)-mer where the sorted positions skip or the key changes
        new = np.ones(at.size, dtype=bool)
        new[1:] = (at[1:] != at[:-1] + 1) | ~same.take(at[:-1])
        branches.append(_branch_joins(side.take(at), plus.take(at), np.cumsum(new)))
    del side, plus, same, high
    ok &= (a >> 1) != (b >> 1)  # not a node to itself
    a, b = a[ok], b[ok]
    nxt = np.full(m, -1, dtype=it)
    nxt[a] = b ^ 1
    nxt[b] = a ^ 1
    return nxt


def _side_keys(keys: np.ndarray, k: int, sides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full canonical (k-1)-mer key and sign of some sides (as in :func:`_links`)."""
    node = sides >> 1
    left = (sides & 1).astype(bool)
    x = keys[node]
    rx = reverse_complement(x, k)
    low = _U64((1 << (2 * (k - 1))) - 1)
    t = np.where(left, rx & low, x & low)
    rt = np.where(left, x >> _U64(2), rx >> _U64(2))
    sign = t <= rt
    key = np.minimum(t, rt)
    if k % 2 == 0:
        pal = left & (x == rx)
        key[pal] = (_U64(1) << _U64(62)) | node[pal].astype(np.uint64)
    return key, sign


def _list_rank(nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pointer jumping over a successor array whose chains are paths and cycles.

    Returns
    -------
    last : ndarray of int64
        For an element on a path, the path's last element.
    dist : ndarray of int64
        For an element on a path, its distance to the last element.
    low : ndarray of int64
        For an element on a cycle, the smallest element of the cycle.
    cyc : ndarray of int64
        The elements on cycles, ascending.
    """
    m = nxt.size
    end = nxt < 0
    last = np.where(end, np.arange(m), nxt)
    dist = (~end).astype(np.int64)
    low = np.arange(m)
    act = np.flatnonzero(~end)
    act = act[~end[last[act]]]
    step = 1  # every active element jumps exactly `step` ahead
    final = False
    while act.size:
        via = last[act]
        ahead = last[via]
        dist[act] += dist[via]
        low[act] = np.minimum(low[act], low[via])
        last[act] = ahead
        step *= 2
        act = act[~end[ahead]]
        if final:
            break
        # An active path element is at most step + |act| from its end, and a cycle has at
        # most |act| elements: once |act| <= step, one more round finishes every path and
        # makes `low` span whole cycles; whatever is still active is then on a cycle.
        final = act.size <= step
    return last, dist, low, act


def _rank_chains(nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unitigs of a successor array by pointer jumping (any chain lengths, cycles too).

    Returns
    -------
    first : ndarray of int64
        Node (element // 2) of each unitig's first element.
    lengths : ndarray of int64
        Nodes in each unitig.
    unitig, pos : ndarray of int64
        Per node: its unitig and its place in it.
    rev : ndarray of bool
        Per node: whether its unitig reads it reversed.
    """
    n = nxt.size // 2
    last, dist, low, cyc = _list_rank(nxt)
    m = 2 * n
    on_cycle = np.zeros(m, dtype=bool)
    on_cycle[cyc] = True
    v = np.arange(m)
    # paths: of the two walks (one per direction) keep the one starting at the smaller
    # element, as compact() does; the walk from v starts at the reverse of the other's end
    kept = np.flatnonzero(~on_cycle & ((last[v ^ 1] ^ 1) < (last ^ 1)))
    node = kept >> 1
    tail = np.empty(n, dtype=np.int64)
    depth = np.empty(n, dtype=np.int64)
    rev = np.empty(n, dtype=bool)
    head = np.zeros(n, dtype=bool)
    tail[node] = last[kept]
    depth[node] = dist[kept]
    rev[node] = (kept & 1).astype(bool)
    head[node] = nxt[kept ^ 1] < 0
    if cyc.size:
        # cycles: keep the walk holding the smaller element, cut it open before that element
        kc = cyc[low[cyc] < low[cyc ^ 1]]
        succ = nxt[kc]
        sub = np.searchsorted(kc, succ)
        sub[succ == low[kc]] = -1
        sub_last, sub_dist, _, rest = _list_rank(sub)
        if rest.size:
            raise AssertionError("a cycle cut open is still a cycle")
        node = kc >> 1
        tail[node] = kc[sub_last]
        depth[node] = sub_dist
        rev[node] = (kc & 1).astype(bool)
        head[node] = kc == low[kc]
    first = np.flatnonzero(head)
    lengths = depth[first] + 1
    unitig_at = np.empty(m, dtype=np.int64)
    unitig_at[tail[first]] = np.arange(first.size)
    unitig = unitig_at[tail]
    return first, lengths, unitig, lengths[unitig] - 1 - depth, rev


#: Chains are walked step by step from their first element for at most this many steps
#: (most unitigs of a partition are short); longer chains and cycles are then ranked by
#: pointer jumping, which costs O(log length) passes over their elements.
WALK_STEPS = 64


def compact(keys: np.ndarray, k: int, group: np.ndarray | None = None, branches: bool = False) -> Compaction:
    """Maximal unitigs of a set of canonical k-mers.

    Parameters
    ----------
    keys : ndarray of uint64
        Distinct canonical k-mers, sorted ascending.
    k : int
        k-mer length.
    group : ndarray of int, optional
        A number per key: unitigs are ordered by the number of their first k-mer, then by
        that k-mer (a colour-class encoding numbers them by class, so that a class's
        k-mers lie together in the sequence).
    branches : bool
        Also find :attr:`Compaction.branches` (empty otherwise).

    Returns
    -------
    Compaction
    """
    n = keys.size
    if n == 0:
        return Compaction(np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(1, np.int64))
    joins: list[np.ndarray] = []
    nxt = _links(keys, k, joins if branches else None)
    branch_pairs = joins[0] if joins else np.zeros((2, 0), dtype=np.int64)
    it = nxt.dtype
    # the walks start at the elements without a predecessor (the predecessor of v is
    # next[v ^ 1] ^ 1): two per path, one from each end
    starts = np.flatnonzero(nxt < 0).astype(it) ^ it.type(1)
    n_walks = starts.size
    ends = np.full(n_walks, -1, dtype=it)
    lengths = np.zeros(n_walks, dtype=it)
    # each walk marks the elements it reaches with walk * 64 + step
    mt = np.dtype(np.int32) if n_walks < 2**25 else np.dtype(np.int64)
    cur, mark = starts, np.arange(n_walks, dtype=mt) << 6
    elements, marks = [], []
    for t in range(WALK_STEPS):
        if not cur.size:
            break
        elements.append(cur)
        marks.append(mark)
        ahead = nxt.take(cur)
        stop = ahead < 0
        if stop.any():
            at = np.flatnonzero(stop)
            done = mark.take(at) >> 6
            ends[done] = cur.take(at)
            lengths[done] = t + 1
            go = np.flatnonzero(~stop)
            cur, mark = ahead.take(go), mark.take(go)
        else:
            cur = ahead
        mark = mark + 1
    # every finished path was walked twice, once from each end: keep the walk whose first
    # element is smaller than the other walk's (the reverse of this walk's last element)
    kept = (ends >= 0) & (starts < (ends ^ 1))
    el = np.concatenate(elements) if elements else np.zeros(0, dtype=it)
    mk = np.concatenate(marks) if marks else np.zeros(0, dtype=mt)
    del elements, marks, cur, mark
    sel = np.flatnonzero(kept.take(mk >> 6))
    el, mk = el.take(sel), mk.take(sel)
    walks = np.flatnonzero(kept)
    local = (np.cumsum(kept, dtype=it) - 1).astype(it)
    first_parts = [starts.take(walks) >> 1]
    len_parts = [lengths.take(walks)]
    node = [el]  # elements here; nodes and orientations are split after the scatter
    unitig = [local.take(mk >> 6)]
    pos = [mk & 63]
    # every element of a path lies on one walk: if the finished walks hold them all, no
    # node is left over (the usual case: no cycle, no chain longer than WALK_STEPS)
    if int(lengths.sum(dtype=np.int64)) < 2 * n or (ends < 0).any():
        # long chains and cycles: rank the elements of their nodes by pointer jumping
        covered = np.zeros(n, dtype=bool)
        covered[el >> 1] = True
        rest = np.flatnonzero(~covered)
        sub_el = np.empty(2 * rest.size, dtype=np.int64)
        sub_el[0::2] = 2 * rest
        sub_el[1::2] = 2 * rest + 1
        succ = nxt[sub_el]
        sub = np.where(succ < 0, -1, np.searchsorted(sub_el, succ))
        f2, l2, u2, p2, r2 = _rank_chains(sub)
        first_parts.append(rest[f2])
        len_parts.append(l2)
        node.append((2 * rest + r2).astype(it))
        unitig.append(u2 + walks.size)
        pos.append(p2)
    first = np.concatenate(first_parts).astype(np.int64)
    lens = np.concatenate(len_parts).astype(np.int64)
    # unitigs in the order of their first node (the sorted k-mer it reads), within groups
    perm = np.argsort(first) if group is None else np.lexsort((first, np.asarray(group).take(first)))
    renumber = np.empty(perm.size, dtype=np.int64)
    renumber[perm] = np.arange(perm.size)
    offsets = np.zeros(perm.size + 1, dtype=np.int64)
    np.cumsum(lens[perm], out=offsets[1:])
    if offsets[-1] != n or sum(x.size for x in node) != n:
        raise AssertionError("unitigs do not hold every k-mer exactly once")
    start_of = offsets.take(renumber).astype(it)
    order = np.empty(n, dtype=it)  # the element (2 * node + reversed) of every unitig order
    for el, u, p_ in zip(node, unitig, pos):
        np.put(order, start_of.take(u) + p_, el)
    reverse = (order & it.type(1)).astype(bool)
    order >>= it.type(1)
    return Compaction(order, reverse, offsets, branch_pairs)


#: The four 2-bit codes of every byte, first base first.
_BYTE_CODES = ((np.arange(256, dtype=np.uint8)[:, None] >> np.array([6, 4, 2, 0], dtype=np.uint8)) & 3).astype(
    np.uint8
)


def _kmer_starts(offsets: np.ndarray, k: int) -> np.ndarray:
    """Start base of every k-mer of unitig order r: ``r + u * (k - 1)`` for its unitig u."""
    n = int(offsets[-1])
    step = np.zeros(n, dtype=np.int64)
    step[offsets[1:-1]] = k - 1  # a new unitig starts k-1 bases further on
    np.cumsum(step, out=step)
    step += np.arange(n, dtype=np.int64)
    return step


def spell(keys: np.ndarray, k: int, comp: Compaction, starts: np.ndarray | None = None) -> np.ndarray:
    """Base codes (uint8, 0..3) of all unitigs back to back.

    ``starts`` (from :func:`_kmer_starts`) is computed when not given.
    """
    n, U = keys.size, comp.n_unitigs
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    if starts is None:
        starts = _kmer_starts(comp.offsets, k)
    kv = keys.take(comp.order)
    n_bases = n + U * (k - 1)
    codes = np.empty(n_bases, dtype=np.uint8)
    # Unitig u is the first k-1 bases of its first k-mer, then the last base of each of its
    # k-mers.  Mark where the last bases go; the first bases fill the rest, in order.
    last = np.zeros(n_bases, dtype=bool)
    last[starts + (k - 1)] = True
    # the last base of a k-mer read reversed is the complement of its first base
    tail = (kv & _U64(3)).astype(np.uint8)
    flipped = np.uint8(3) - (kv >> _U64(2 * (k - 1))).astype(np.uint8)
    flipped ^= tail
    flipped *= comp.reverse.view(np.uint8)  # a select by arithmetic: several times faster than where
    tail ^= flipped
    codes[last] = tail
    if k > 1:
        heads = kv.take(comp.offsets[:-1])
        flip = comp.reverse.take(comp.offsets[:-1])
        heads[flip] = reverse_complement(heads[flip], k)
        # big-endian bytes hold the bases first-to-last; a k-mer is the low 2k bits
        quads = _BYTE_CODES.take(heads.astype(">u8").view(np.uint8), axis=0).reshape(U, 32)
        np.logical_not(last, out=last)
        codes[last] = quads[:, 32 - k : 31].ravel()
    return codes


def build_unitigs(
    keys: np.ndarray, k: int, group: np.ndarray | None = None, branches: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Compact sorted canonical k-mers into the serialized unitig array.

    Parameters
    ----------
    keys : ndarray of uint64
        Distinct canonical k-mers, sorted ascending.
    k : int
    group : ndarray of int, optional
        Orders the unitigs by the group of their first k-mer (see :func:`compact`).
    branches : list, optional
        Receives :attr:`Compaction.branches` (indices in ``keys``).

    Returns
    -------
    array : ndarray of uint64
        The layout of the module docstring.
    ordinals : ndarray of int64
        For each key (in ``keys`` order), its unitig order: the rank of its k-mer in the
        sequence (:meth:`UnitigSet.base_of` gives the base where it starts).
    """
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    comp = compact(keys, k, group, branches is not None)
    if branches is not None:
        branches.append(comp.branches)
    n, U = keys.size, comp.n_unitigs
    codes = spell(keys, k, comp)
    ordinals = np.empty(n, dtype=np.int64)
    np.put(ordinals, comp.order, np.arange(n, dtype=np.int64))
    width = 1
    flags = np.zeros(n, dtype=bool)
    flags[comp.offsets[:-1]] = True
    off_words = bits.pack_flags(flags)
    del flags
    seq_words = bits.pack_codes(codes)
    off_start = HEADER_WORDS
    seq_start = off_start + off_words.size
    total = seq_start + seq_words.size
    out = np.empty(total, dtype="<u8")
    out[:HEADER_WORDS] = [MAGIC, VERSION, k, n, U, codes.size, width, off_start, seq_start, total]
    out[off_start:seq_start] = off_words
    out[seq_start:] = seq_words
    return out, ordinals


_NO_WORDS = np.zeros(1, dtype=np.uint64)
_NO_OFFSETS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class UnitigWalk:
    """What a compiled lookup (:func:`kmerdb.core.kernels.dictionary_find`) reads a unitig
    order's bases through.

    Attributes
    ----------
    seq : ndarray of uint64
        The 2-bit bases, unitigs back to back, with their padding word.
    flags : ndarray of uint64
        Unitig start flags in unitig order, most significant bit first (format 2).
    ranks : ndarray of uint64
        Flags set before each word of ``flags``, less one.
    offsets : ndarray of int64
        Unitig offsets in k-mers (format 1, whose ``flags`` and ``ranks`` are unused);
        empty for format 2.
    n_bases : int
        Bases of ``seq``: no k-mer read may end past them.
    """

    seq: np.ndarray
    flags: np.ndarray
    ranks: np.ndarray
    offsets: np.ndarray
    n_bases: int


class UnitigSet:
    """A serialized unitig array, read in place (views of a memory map are not copied).

    Parameters
    ----------
    array : ndarray of uint64
        The array made by :func:`build_unitigs`.
    source : str
        Name reported in errors.

    Raises
    ------
    CorruptDatabaseError
        If the header and the array disagree.
    """

    def __init__(self, array: np.ndarray, source: str = "<unitigs>") -> None:
        arr, head = bits.read_header(array, HEADER_WORDS, MAGIC, _READ_VERSIONS, source, "a unitig array")
        _, version, k, n, U, n_bases, width, off_start, seq_start, total = head
        offset_fields = (U + 1, width) if version == 1 else (n, width)
        bits.check_fields(arr.size, [offset_fields, (n_bases, 2)], source, "a unitig array")
        if (
            total != arr.size
            or not 1 <= k <= 32
            or (version == 2 and width != 1)
            or n < U
            or n_bases != n + U * (k - 1)
            or off_start != HEADER_WORDS
            or seq_start != off_start + bits.n_words(*offset_fields)
            or total != seq_start + bits.n_words(n_bases, 2)
            or (U == 0) != (n == 0)
        ):
            raise CorruptDatabaseError(source, "unitig array header and length disagree")
        self.source = source
        self.version = version
        self.k, self.n, self.n_unitigs, self.n_bases = k, n, U, n_bases
        self._width = width
        self._offsets = arr[off_start:seq_start]
        self._ranks: np.ndarray | None = None
        self._offsets_v1: np.ndarray | None = None
        self.seq = arr[seq_start:total]
        self.nbytes = int(arr.nbytes)

    def offsets(self) -> np.ndarray:
        """k-mer offsets of the unitigs (int64, U + 1 entries)."""
        if self.version == 1:
            out = bits.unpack(self._offsets, self.n_unitigs + 1, self._width).astype(np.int64)
        else:
            out = np.append(np.flatnonzero(bits.unpack_flags(self._offsets, self.n)), self.n).astype(np.int64)
            if out.size != self.n_unitigs + 1:
                raise CorruptDatabaseError(self.source, f"unitig starts: {out.size - 1}, the header says {self.n_unitigs}")
        if out.size and (out[0] != 0 or out[-1] != self.n or np.any(out[1:] <= out[:-1])):
            raise CorruptDatabaseError(self.source, "unitig offsets are not increasing from 0 to n")
        return out

    def lengths(self) -> np.ndarray:
        """Length of each unitig, in k-mers."""
        return np.diff(self.offsets())

    def positions(self) -> np.ndarray:
        """Start base of every k-mer, in unitig order (int64)."""
        return _kmer_starts(self.offsets(), self.k) if self.n else np.zeros(0, dtype=np.int64)

    def base_of(self, ordinals: np.ndarray) -> np.ndarray:
        """Start base (uint64) of the k-mers of unitig order ``ordinals``: ``r + u * (k - 1)``
        for the unitig u that holds r, found by a rank over the start flags (version 2) or a
        search of the offsets (version 1).

        Raises
        ------
        CorruptDatabaseError
            An ordinal is not below n.
        """
        r = np.asarray(ordinals).astype(np.uint64, copy=False)
        if r.size and int(r.max()) >= self.n:
            raise CorruptDatabaseError(self.source, f"k-mer {int(r.max())} of unitig order, of {self.n}")
        return r + self._unitig_of(r) * _U64(self.k - 1)

    def ordinal_of(self, positions: np.ndarray) -> np.ndarray:
        """Unitig order (int64) of the k-mers that start at base ``positions`` (the inverse of
        :meth:`base_of`; for evidence of format 1 and 2, which stored start bases)."""
        p = np.asarray(positions).astype(np.int64, copy=False)
        u = np.searchsorted(self.base_starts(), p, side="right") - 1
        return p - u * (self.k - 1)

    def _unitig_of(self, r: np.ndarray) -> np.ndarray:
        """Unitig (uint64) holding each k-mer of unitig order ``r`` (uint64, checked below n)."""
        if self.version == 1:
            return (np.searchsorted(self._offset_cache(), r, side="right") - 1).astype(np.uint64)
        ranks = self._flag_ranks()
        word = r >> _U64(6)
        # flags 0..j of a word (most significant first) are the word shifted right by 63 - j
        within = np.bitwise_count(self._offsets.take(word) >> (_U64(63) - (r & _U64(63))))
        return ranks.take(word) + within

    def _flag_ranks(self) -> np.ndarray:
        """Start flags set before each word of flags, less one (uint64, like the orders, so that
        no lookup converts it): a count per 64 k-mers, in memory only."""
        if self._ranks is None:
            before = np.zeros(self._offsets.size, dtype=np.uint64)
            np.cumsum(np.bitwise_count(self._offsets[:-1]), out=before[1:])
            self._ranks = before - _U64(1)  # the first word's flag 0 is set: no order wraps
        return self._ranks

    def walk(self) -> UnitigWalk:
        """The arrays a compiled lookup reads unitig orders through (:class:`UnitigWalk`)."""
        if self.version == 1:
            return UnitigWalk(self.seq, _NO_WORDS, _NO_WORDS, self._offset_cache(), self.n_bases)
        return UnitigWalk(self.seq, self._offsets, self._flag_ranks(), _NO_OFFSETS, self.n_bases)

    def _offset_cache(self) -> np.ndarray:
        if self._offsets_v1 is None:
            self._offsets_v1 = self.offsets()
        return self._offsets_v1

    def kmer_at(self, positions: np.ndarray) -> np.ndarray:
        """The k-mers (as read in their unitig, not canonicalized) starting at base ``positions``."""
        return bits.extract(self.seq, np.asarray(positions, dtype=np.uint64) * _U64(2), 2 * self.k)

    def kmers(self) -> np.ndarray:
        """Every canonical k-mer, in unitig order."""
        return canonical(self.kmer_at(self.positions()), self.k)

    def codes(self) -> np.ndarray:
        """All bases (uint8 codes 0..3), unitigs back to back."""
        raw = self.seq.astype(">u8").view(np.uint8)
        quad = np.empty((raw.size, 4), dtype=np.uint8)
        for j in range(4):  # four bases per byte
            quad[:, j] = (raw >> np.uint8(6 - 2 * j)) & np.uint8(3)
        return quad.ravel()[: self.n_bases]

    def base_starts(self) -> np.ndarray:
        """First base of each unitig, plus the total (int64, U + 1 entries)."""
        return self.offsets() + np.arange(self.n_unitigs + 1, dtype=np.int64) * (self.k - 1)


def fasta_records(
    letters: np.ndarray, starts: np.ndarray, first_id: int, kmer_counts: np.ndarray, tag: bytes = b""
) -> bytes:
    """FASTA text of sequences, one line each, built without a loop over records.

    Parameters
    ----------
    letters : ndarray of uint8
        ASCII bases of all sequences back to back.
    starts : ndarray of int64
        Start of each sequence in ``letters``, plus the total (R + 1 entries).
    first_id : int
        Number of the first record; records are numbered consecutively.
    kmer_counts : ndarray of int
        k-mers of each record (written as ``KN:i:``).
    tag : bytes
        Text appended to every header line.

    Returns
    -------
    bytes
        ``>ID LN:i:LENGTH KN:i:KMERS TAG`` then the sequence, per record.
    """
    R = starts.size - 1
    if R <= 0:
        return b""
    lengths = np.diff(starts)

    def number(values: npt.ArrayLike) -> np.ndarray:
        # NUL-padded fixed-width text; the NULs are dropped below
        return np.asarray(values, dtype=np.uint64).astype("S20").view(np.uint8).reshape(R, 20)

    def const(text: bytes) -> np.ndarray:
        return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (R, len(text)))

    fields = [
        const(b">"),
        number(np.arange(first_id, first_id + R)),
        const(b" LN:i:"),
        number(lengths),
        const(b" KN:i:"),
        number(kmer_counts),
    ]
    if tag:
        fields.append(const(b" " + tag))
    fields.append(const(b"\n"))
    head = np.concatenate(fields, axis=1)
    keep = head != 0
    head_len = keep.sum(axis=1)
    head_flat = head[keep]
    rec_len = head_len + lengths + 1
    rec_start = np.zeros(R, dtype=np.int64)
    np.cumsum(rec_len[:-1], out=rec_start[1:])
    out = np.empty(int(rec_len.sum()), dtype=np.uint8)
    head_start = np.cumsum(head_len) - head_len
    out[np.repeat(rec_start - head_start, head_len) + np.arange(head_flat.size)] = head_flat
    seq_at = rec_start + head_len
    out[np.repeat(seq_at - starts[:-1], lengths) + np.arange(int(starts[-1] - starts[0])) + starts[0]] = letters[
        starts[0] : starts[-1]
    ]
    out[seq_at + lengths] = ord("\n")
    return out.tobytes()


def write_fasta(
    unitig_sets: Iterable[tuple[UnitigSet, bytes]], out: BinaryIO, first_id: int = 0
) -> tuple[int, int]:
    """Write ``(unitig set, tag)`` pairs as FASTA; returns (records, bases) written."""
    records = bases = 0
    for ut, tag in unitig_sets:
        if ut.n_unitigs == 0:
            continue
        letters = _LETTERS.take(ut.codes())
        out.write(fasta_records(letters, ut.base_starts(), first_id + records, ut.lengths(), tag))
        records += ut.n_unitigs
        bases += ut.n_bases
    return records, bases


def write_unitigs(db: Database, out: BinaryIO, genome: str | None = None) -> tuple[int, int]:
    """Write the unitigs of every layer of a database as FASTA.

    Parameters
    ----------
    db : Database
        An opened handle.
    out : binary file
        Where the FASTA goes.
    genome : str, optional
        Only the k-mers of this genome: per layer, the maximal unitigs of the layer's
        k-mers that the genome holds (computed on the fly, like the layer's own).

    Returns
    -------
    (records, bases) : tuple of int

    Notes
    -----
    Records are numbered from 0 in partition and layer order; the header line is
    ``>ID LN:i:LENGTH KN:i:KMERS partition=P layer=L``.  Every unitig is one line.
    """
    column = None
    if genome is not None:
        db.genome(genome)  # raises GenomeNotFoundError
        column = db.genomes.index(genome)
    k = db.config.k
    records = bases = 0
    for p, layers in enumerate(db.layers):
        for layer in layers:
            if column is None:
                ut = layer.unitigs
            else:
                kmers = layer.unitig_kmers()
                held = _held_by(layer, layer.slots_of_unitig_kmers(), column) if kmers.size else np.zeros(0, dtype=bool)
                ut = UnitigSet(build_unitigs(np.sort(kmers[held]), k)[0])
            r, b = write_fasta([(ut, f"partition={p} layer={layer.record.id}".encode())], out, records)
            records += r
            bases += b
    return records, bases


#: Slots of a layer whose rows :func:`_held_by` reads at once from a dense group.
_HELD_SLOTS = 1 << 16


def _held_by(layer, slots: np.ndarray, column: int) -> np.ndarray:
    """Whether the genome of database column ``column`` holds the k-mer of each slot.

    A colour-class group answers per class (the classes used, decoded once); a dense group
    a block of rows at a time: never a (slots x genomes) matrix of the whole layer.
    """
    held = np.zeros(slots.size, dtype=bool)
    for group in layer.groups:
        if column not in group.cols:
            continue
        if group.family == "classes":
            ids = group.class_ids(slots)
            used = np.sort(ids)
            used = used[np.append(True, used[1:] != used[:-1])] if used.size else used
            members = group.members(used)
            has = np.zeros(used.size, dtype=bool)
            has[members.row_of()[members.columns == column]] = True
            held |= has[np.searchsorted(used, ids)]
            continue
        for lo in range(0, slots.size, _HELD_SLOTS):
            rows = group.rows(slots[lo : lo + _HELD_SLOTS])
            held[lo + rows.row_of()[rows.columns == column]] = True
    return held
