"""Neighbour joining and UPGMA: Newick that parses, every label once, known trees recovered."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

import kmerdb
from kmerdb.analysis import phylo


# -- a small Newick parser, independent of the writer ---------------------------------------
class Node:
    def __init__(self, name=None, length=None, children=()):
        self.name, self.length, self.children = name, length, list(children)

    def leaves(self):
        if not self.children:
            return [self]
        return [leaf for c in self.children for leaf in c.leaves()]


def parse_newick(text: str) -> Node:
    text = text.strip()
    assert text.endswith(";"), "Newick ends with ';'"
    pos = 0

    def label():
        nonlocal pos
        if pos < len(text) and text[pos] == "'":
            out = []
            pos += 1
            while True:
                ch = text[pos]
                if ch == "'":
                    if text[pos + 1 : pos + 2] == "'":
                        out.append("'")
                        pos += 2
                        continue
                    pos += 1
                    return "".join(out)
                out.append(ch)
                pos += 1
        start = pos
        while pos < len(text) and text[pos] not in ",():;":
            pos += 1
        return text[start:pos] or None

    def node():
        nonlocal pos
        children = []
        if text[pos] == "(":
            pos += 1
            children.append(node())
            while text[pos] == ",":
                pos += 1
                children.append(node())
            assert text[pos] == ")", f"expected ')' at {pos}"
            pos += 1
        name = label()
        length = None
        if pos < len(text) and text[pos] == ":":
            pos += 1
            start = pos
            while text[pos] not in ",);":
                pos += 1
            length = float(text[start:pos])
        return Node(name, length, children)

    root = node()
    assert text[pos:] == ";", f"trailing text {text[pos:]!r}"
    return root


def path_lengths(root: Node) -> dict[tuple[str, str], float]:
    """Leaf-to-leaf path lengths of a parsed tree."""
    parent, length = {}, {}

    def walk(n):
        for c in n.children:
            parent[id(c)] = n
            length[id(c)] = c.length or 0.0
            walk(c)

    walk(root)

    def ancestors(n):
        out, d = [], 0.0
        while True:
            out.append((n, d))
            if id(n) not in parent:
                return out
            d += length[id(n)]
            n = parent[id(n)]

    leaves = root.leaves()
    dist = {}
    for a, b in itertools.combinations(leaves, 2):
        up = {id(n): d for n, d in ancestors(a)}
        for n, d in ancestors(b):
            if id(n) in up:
                dist[(a.name, b.name)] = dist[(b.name, a.name)] = up[id(n)] + d
                break
    return dist


def splits(root: Node) -> set[frozenset]:
    """Leaf sets below each internal node (normalized to not contain the first leaf name)."""
    names = sorted(leaf.name for leaf in root.leaves())
    out = set()

    def walk(n):
        below = frozenset(leaf.name for leaf in n.leaves())
        if 1 < len(below) < len(names) - 1:
            out.add(below if names[0] not in below else frozenset(names) - below)
        for c in n.children:
            walk(c)

    walk(root)
    return out


def additive_matrix(seed: int, n: int):
    """Distances of a random binary tree with positive branch lengths (an additive metric)."""
    rng = random.Random(seed)
    nodes = [Node(f"t{i}") for i in range(n)]
    while len(nodes) > 1:
        a, b = rng.sample(range(len(nodes)), 2)
        x, y = nodes[a], nodes[b]
        x.length, y.length = rng.uniform(0.1, 1.0), rng.uniform(0.1, 1.0)
        nodes = [m for i, m in enumerate(nodes) if i not in (a, b)] + [Node(None, None, [x, y])]
    root = nodes[0]
    labels = [f"t{i}" for i in range(n)]
    dist = path_lengths(root)
    d = np.array([[0.0 if a == b else dist[(a, b)] for b in labels] for a in labels])
    return root, labels, d


@pytest.mark.parametrize("seed", range(5))
def test_nj_recovers_additive_trees(seed):
    truth, labels, d = additive_matrix(seed, 9)
    tree = parse_newick(phylo.neighbor_joining(d, labels))
    assert sorted(leaf.name for leaf in tree.leaves()) == sorted(labels)
    assert splits(tree) == splits(truth)
    got = path_lengths(tree)
    for a, b in itertools.combinations(labels, 2):
        assert got[(a, b)] == pytest.approx(d[labels.index(a), labels.index(b)], abs=1e-6)


def test_upgma_on_ultrametric_distances():
    # ((a,b):1,(c,(d,e):0.5):0.5) heights: a-b 2, d-e 2, c-(d,e) 4, root 6
    labels = ["a", "b", "c", "d", "e"]
    d = np.array(
        [
            [0, 2, 6, 6, 6],
            [2, 0, 6, 6, 6],
            [6, 6, 0, 4, 4],
            [6, 6, 4, 0, 2],
            [6, 6, 4, 2, 0],
        ],
        dtype=float,
    )
    tree = parse_newick(phylo.upgma(d, labels))
    assert splits(tree) == splits(parse_newick("((a,b),(c,(d,e)));"))
    got = path_lengths(tree)
    for i, j in itertools.combinations(range(5), 2):
        assert got[(labels[i], labels[j])] == pytest.approx(d[i, j])
    assert len(tree.children) == 2  # rooted


def test_small_and_degenerate_inputs():
    assert phylo.neighbor_joining(np.zeros((0, 0)), []) == ";"
    assert phylo.neighbor_joining([[0.0]], ["x"]) == "x;"
    assert parse_newick(phylo.neighbor_joining([[0, 1], [1, 0]], ["x", "y"])).children[0].length == 0.5
    three = parse_newick(phylo.neighbor_joining([[0, 2, 3], [2, 0, 3], [3, 3, 0]], ["x", "y", "z"]))
    assert len(three.children) == 3
    assert phylo.upgma([[0.0]], ["x"]) == "x;"
    ties = parse_newick(phylo.upgma(np.ones((4, 4)) - np.eye(4), list("abcd")))
    assert sorted(leaf.name for leaf in ties.leaves()) == list("abcd")
    with pytest.raises(kmerdb.InvalidParameterError):
        phylo.neighbor_joining([[0, 1], [1, 0]], ["x"])
    with pytest.raises(kmerdb.InvalidParameterError):
        phylo.upgma([[0, 1], [1, 0]], ["x", "x"])
    with pytest.raises(kmerdb.InvalidParameterError):
        phylo.tree_from_matrix([[0.0]], ["x"], "ml")


def test_labels_are_quoted_when_needed():
    labels = ["plain_1", "with space", "it's", "a:b", "(x)", "semi;colon"]
    d = np.ones((6, 6)) - np.eye(6)
    for method in phylo.METHODS:
        text = phylo.tree_from_matrix(d, labels, method)
        tree = parse_newick(text)
        assert sorted(leaf.name for leaf in tree.leaves()) == sorted(labels)
    assert phylo.newick_label("plain_1") == "plain_1"
    assert phylo.newick_label("it's") == "'it''s'"


def test_nj_never_writes_negative_lengths():
    rng = np.random.default_rng(4)
    x = rng.random((12, 12))
    d = x + x.T
    np.fill_diagonal(d, 0)
    text = phylo.neighbor_joining(d, [f"g{i}" for i in range(12)])
    tree = parse_newick(text)

    def lengths(n):
        return ([n.length] if n.length is not None else []) + [v for c in n.children for v in lengths(c)]

    assert min(lengths(tree)) >= 0 and len(tree.leaves()) == 12


@pytest.mark.parametrize("method", phylo.METHODS)
@pytest.mark.parametrize("metric", ["mash", "jaccard", "bray-curtis"])
def test_trees_of_an_index(built, method, metric):
    with kmerdb.open(built(k=21, counts=True)) as db:
        text = db.distance(metric).tree(method)
    tree = parse_newick(text)
    assert sorted(leaf.name for leaf in tree.leaves()) == ["A", "B", "C"]
