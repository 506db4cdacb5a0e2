"""Immutable data files: atomic writes, checksums, read-only maps."""

import numpy as np
import pytest

from kmerdb.errors import CorruptDatabaseError
from kmerdb.store.storage import FileRef, file_checksum, load_array, save_array


def test_save_load_round_trip_and_checksum(tmp_path):
    arr = np.arange(1000, dtype=np.uint64)
    ref = save_array(str(tmp_path), "data/p00000/x.npy", arr)
    assert ref.path == "data/p00000/x.npy"
    assert (ref.nbytes, ref.checksum) == file_checksum(str(tmp_path / ref.path))
    loaded = load_array(str(tmp_path), ref)
    assert np.array_equal(loaded, arr) and not loaded.flags.writeable
    assert not list((tmp_path / "data" / "p00000").glob("*.tmp-*"))
    assert FileRef.from_record(ref.to_record()) == ref


def test_files_are_never_rewritten(tmp_path):
    save_array(str(tmp_path), "data/a.npy", np.zeros(3))
    with pytest.raises(CorruptDatabaseError, match="never rewritten"):
        save_array(str(tmp_path), "data/a.npy", np.ones(3))


def test_empty_arrays_and_missing_files(tmp_path):
    ref = save_array(str(tmp_path), "data/e.npy", np.zeros((0, 2), dtype=np.uint8))
    assert load_array(str(tmp_path), ref).shape == (0, 2)
    with pytest.raises(CorruptDatabaseError, match="missing"):
        load_array(str(tmp_path), FileRef("data/nope.npy", 0, ""))


def test_pickles_are_refused(tmp_path):
    ref = save_array(str(tmp_path), "data/ok.npy", np.zeros(1))
    np.save(tmp_path / "data" / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CorruptDatabaseError):
        load_array(str(tmp_path), FileRef("data/obj.npy", ref.nbytes, ref.checksum))
