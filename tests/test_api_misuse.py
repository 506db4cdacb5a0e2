"""Misuse of the public API: every wrong argument is one KmerDBError naming it.

Each public entry point of ``kmerdb.__all__`` is called with None and with wrong types;
nothing but a :class:`~kmerdb.errors.KmerDBError` subclass may cross the boundary (a wrong
type is an :class:`~kmerdb.errors.InvalidTypeError`, also a ``TypeError``), and a call that
fails creates nothing.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import kmerdb
from kmerdb.errors import InvalidParameterError, InvalidTypeError, KmerDBError

A = os.path.join(os.path.dirname(__file__), "..", "fixtures", "genome_a.fa")


@pytest.fixture(scope="module")
def db(built):
    with kmerdb.open(built(k=21, counts=False, partitions=4)) as handle:
        yield handle


# (case id, call(db, tmp), expected error class, argument it must name)
CASES = [
    ("open(None)", lambda db, t: kmerdb.open(None), InvalidTypeError, "path"),
    ("open(5)", lambda db, t: kmerdb.open(5), InvalidTypeError, "path"),
    ("open('')", lambda db, t: kmerdb.open(""), InvalidParameterError, "path"),
    ("open(mode=None)", lambda db, t: kmerdb.open(db.path, mode=None), InvalidParameterError, "mode"),
    ("build(None)", lambda db, t: kmerdb.build(None, {"a": A}), InvalidTypeError, "path"),
    ("build('')", lambda db, t: kmerdb.build("", {"a": A}), InvalidParameterError, "path"),
    ("build(genomes=None)", lambda db, t: kmerdb.build(t, None), InvalidTypeError, "genomes"),
    ("build(genomes=5)", lambda db, t: kmerdb.build(t, 5), InvalidTypeError, "genomes"),
    ("build(genomes=str)", lambda db, t: kmerdb.build(t, A), InvalidTypeError, "genomes"),
    ("build(genomes=[1])", lambda db, t: kmerdb.build(t, [1]), InvalidTypeError, "genomes"),
    ("build({'a': None})", lambda db, t: kmerdb.build(t, {"a": None}), InvalidTypeError, "genomes['a']"),
    ("build({'a': 5})", lambda db, t: kmerdb.build(t, {"a": 5}), InvalidTypeError, "genomes['a']"),
    ("build({'a': [None]})", lambda db, t: kmerdb.build(t, {"a": [None]}), InvalidTypeError, "genomes['a']"),
    ("build({'a': ''})", lambda db, t: kmerdb.build(t, {"a": ""}), InvalidParameterError, "genomes['a']"),
    ("build({None: A})", lambda db, t: kmerdb.build(t, {None: A}), InvalidParameterError, "label"),
    (
        "build(GenomeInput(paths=(None,)))",
        lambda db, t: kmerdb.build(t, [kmerdb.GenomeInput("a", (None,))]),
        InvalidTypeError,
        "genomes['a']",
    ),
    ("build(k=None)", lambda db, t: kmerdb.build(t, {"a": A}, k=None), InvalidParameterError, "k"),
    ("build(counts='no')", lambda db, t: kmerdb.build(t, {"a": A}, counts="no"), InvalidTypeError, "counts"),
    ("build(progress=5)", lambda db, t: kmerdb.build(t, {"a": A}, progress=5), InvalidTypeError, "progress"),
    ("build(threads='x')", lambda db, t: kmerdb.build(t, {"a": A}, threads="x"), InvalidParameterError, "threads"),
    ("query(None)", lambda db, t: db.query(None), InvalidTypeError, "sequences"),
    ("query(5)", lambda db, t: db.query(5), InvalidTypeError, "sequences"),
    ("query([5])", lambda db, t: db.query([5]), InvalidTypeError, "sequences"),
    ("query([None])", lambda db, t: db.query([None]), InvalidTypeError, "sequences"),
    ("query(names=5)", lambda db, t: db.query(["ACGT"], names=5), InvalidTypeError, "names"),
    ("query(threads=None)", lambda db, t: db.query(["ACGT"], threads=None), InvalidParameterError, "threads"),
    ("query(z='x')", lambda db, t: db.query(["ACGT"], z="x"), InvalidParameterError, "z"),
    ("lookup(None)", lambda db, t: db.lookup(None), InvalidTypeError, "kmers"),
    ("lookup(5)", lambda db, t: db.lookup(5), InvalidTypeError, "kmers"),
    ("lookup([5])", lambda db, t: db.lookup([5]), InvalidTypeError, "kmers"),
    ("lookup([None])", lambda db, t: db.lookup([None]), InvalidTypeError, "kmers"),
    ("lookup(float array)", lambda db, t: db.lookup(np.zeros(3)), InvalidTypeError, "kmers"),
    ("lookup(counts='x')", lambda db, t: db.lookup(["A" * 21], counts="x"), InvalidTypeError, "counts"),
    ("iter_rows(counts=5)", lambda db, t: list(db.iter_rows(counts=5)), InvalidTypeError, "counts"),
    ("export_unitigs(None)", lambda db, t: db.export_unitigs(None), InvalidTypeError, "out"),
    ("export_unitigs(5)", lambda db, t: db.export_unitigs(5), InvalidTypeError, "out"),
    ("distance(None)", lambda db, t: db.distance(None), InvalidParameterError, "metric"),
    ("col_weights(threads='x')", lambda db, t: db.col_weights(threads="x"), InvalidParameterError, "threads"),
    ("setop(op=None)", lambda db, t: db.setop(None, t), InvalidParameterError, "op"),
    ("setop(out=None)", lambda db, t: db.setop("union", None), InvalidTypeError, "out"),
    ("kmerdb.setop(None)", lambda db, t: kmerdb.setop(None, "union", t), InvalidTypeError, "source"),
    ("kmerdb.setop(force=1)", lambda db, t: kmerdb.setop(db.path, "union", t, force=1), InvalidTypeError, "force"),
    ("query_batches(None)", lambda db, t: list(kmerdb.query_batches(None, [])), InvalidTypeError, "query"),
    ("query_batches(q, None)", lambda db, t: list(kmerdb.query_batches(db.query, None)), InvalidTypeError, "records"),
    (
        "query_batches(batch_bases=0)",
        lambda db, t: list(kmerdb.query_batches(db.query, [("r", b"ACGT")], batch_bases=0)),
        InvalidParameterError,
        "batch_bases",
    ),
    ("merge(None)", lambda db, t: kmerdb.merge(None, [db.path]), InvalidTypeError, "out"),
    ("merge(out, None)", lambda db, t: kmerdb.merge(t, None), InvalidTypeError, "sources"),
    ("merge(out, 5)", lambda db, t: kmerdb.merge(t, 5), InvalidTypeError, "sources"),
    ("merge(out, [None])", lambda db, t: kmerdb.merge(t, [None]), InvalidTypeError, "sources"),
    ("verify(None)", lambda db, t: kmerdb.verify(None), InvalidTypeError, "path"),
    ("verify(5)", lambda db, t: kmerdb.verify(5), InvalidTypeError, "path"),
    ("vacuum(None)", lambda db, t: kmerdb.vacuum(None), InvalidTypeError, "path"),
    ("reindex(None)", lambda db, t: kmerdb.reindex(None, "exact"), InvalidTypeError, "path"),
    ("reindex(evidence=None)", lambda db, t: kmerdb.reindex(db.path, None), InvalidParameterError, "evidence"),
    ("parse_input_args(None)", lambda db, t: kmerdb.parse_input_args(None), InvalidTypeError, "inputs"),
    ("parse_input_args([None])", lambda db, t: kmerdb.parse_input_args([None]), InvalidTypeError, "inputs"),
    ("parse_input_args([''])", lambda db, t: kmerdb.parse_input_args([""]), InvalidParameterError, "inputs"),
    ("Config.create(k=None)", lambda db, t: kmerdb.Config.create(k=None), InvalidParameterError, "k"),
]


@pytest.mark.parametrize("call,expected,argument", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_misuse_raises_one_kmerdb_error_naming_the_argument(db, tmp_path, call, expected, argument):
    target = tmp_path / "new.kmerdb"
    with pytest.raises(KmerDBError) as info:
        call(db, target)
    err = info.value
    assert isinstance(err, expected), f"{type(err).__name__}: {err}"
    assert err.argument == argument
    assert str(err).startswith(argument)
    if isinstance(err, InvalidTypeError):
        assert isinstance(err, TypeError)  # Python's convention for a wrong type
    assert not target.exists()  # a refused call creates nothing


def test_writable_handle_misuse(db, tmp_path):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(db.path, path)
    with kmerdb.open(path, mode="a") as handle:
        with pytest.raises(InvalidParameterError) as info:
            handle.transaction(wait="x")
        assert info.value.argument == "wait"
        with pytest.raises(KmerDBError), handle.transaction() as txn:
            txn.append_genomes({"b": None})


def test_every_public_callable_is_covered():
    # a new public function must get its misuse cases here
    names = {c[0].split("(")[0].replace("kmerdb.", "") for c in CASES}
    callables = {n for n in kmerdb.__all__ if inspect.isfunction(getattr(kmerdb, n))}
    assert callables <= names, callables - names


def test_a_single_kmer_string_is_one_kmer(db):
    # before: a str was iterated base by base ("kmers='A': length is not k=21")
    import oracle

    seq = oracle.read_sequences(A)[0][1]
    kmer = seq[:21]
    assert np.array_equal(db.lookup(kmer), db.lookup([kmer]))
    assert db.lookup(kmer).shape == (1, len(db.genomes)) and db.lookup(kmer)[0, db.genomes.index("A")]
