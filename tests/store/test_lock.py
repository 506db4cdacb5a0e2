"""Lock files: a forked child that forgets its copies leaves the parent's locks to the parent."""

import multiprocessing

import pytest

import kmerdb
from kmerdb.store.lock import ReaderRegistration, WriterLock, forget_inherited


def _child(forget, ready, release):
    if forget:
        forget_inherited()
    ready.set()
    release.wait(30)


@pytest.mark.parametrize("forget", [True, False])
def test_a_child_that_forgets_does_not_keep_the_writer_lock(tmp_path, forget):
    ctx = multiprocessing.get_context("fork")
    lock = WriterLock(str(tmp_path)).acquire()
    registration = ReaderRegistration(str(tmp_path))
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_child, args=(forget, ready, release))
    child.start()
    try:
        assert ready.wait(30)
        assert lock.held and registration.fd is not None  # the parent's locks are untouched
        lock.release()
        other = WriterLock(str(tmp_path))
        if forget:
            other.acquire()  # free as soon as the parent released it
            other.release()
        else:  # the child's copy of the open file still holds the flock
            with pytest.raises(kmerdb.LockedError):
                other.acquire()
    finally:
        release.set()
        child.join()
        registration.close()
    WriterLock(str(tmp_path)).acquire().release()  # free once the child is gone, either way
