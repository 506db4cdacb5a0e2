"""The exception hierarchy: one root, structured fields, picklable across processes."""

import inspect
import pickle

import kmerdb
from kmerdb import errors


def test_every_error_derives_from_the_root_and_is_exported():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert classes
    for cls in classes:
        assert issubclass(cls, kmerdb.KmerDBError)
        assert cls.__name__ in kmerdb.__all__


def test_errors_survive_pickling_with_their_fields():
    samples = [
        errors.InputError("a.fa", "bad", line=3),
        errors.InvalidParameterError("k", 40, "too big"),
        errors.MemoryBudgetError(10, 20, "small"),
        errors.DatabaseExistsError("db"),
        errors.LockedError("db", 123),
        errors.GenomeNotFoundError("x"),
        errors.IncompleteDatabaseError("db", "building"),
        errors.FormatVersionError("db", 9, 1),
        errors.FencedError("db/data/p00000/L0000001.mphf.npy"),
    ]
    for exc in samples:
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.__dict__ == exc.__dict__
