"""Wall time and peak resident memory of a whole process tree.

A sampler thread polls, every ``interval`` seconds (20 ms by default), the resident set size of a
root process and of all its descendants (psutil: the process tree and each process's RSS), and
keeps the largest sum seen.

Per-process high-water marks (``VmHWM``) are not read: measured on a kmerdb build and a KMC3
run of the three genomes of ../shared/data, the largest of them never exceeded the sampled sum
(kmerdb: 98 MiB against 219-223 MiB; KMC3: equal, 254-263 MiB). The kernel's ``ru_maxrss`` of a
reaped child is not used either: after fork/vfork + exec it can carry the parent's high-water
mark, which would charge this interpreter's memory to the child.

Needs psutil (the ``bench`` extra).

    from procmem import measure_call, measure_subprocess
    wall, peak = measure_call(fn, *args)                  # this process and its children
    wall, peak = measure_subprocess(["kmc", "-k31", ...])  # a command and its descendants
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import psutil

__all__ = [
    "Measurement",
    "ProcessFailed",
    "TreeSampler",
    "tree_rss",
    "measure_call",
    "measure_subprocess",
    "format_bytes",
]

DEFAULT_INTERVAL = 0.02


class Measurement(NamedTuple):
    """Wall-clock seconds and peak resident bytes of a process tree."""

    wall: float
    peak: int


class ProcessFailed(RuntimeError):
    """A measured subprocess exited with a non-zero status."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, measurement: Measurement):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.measurement = measurement
        tail = stderr.strip().splitlines()[-5:]
        super().__init__(
            f"{os.path.basename(str(argv[0]))} exited with status {returncode}"
            + (": " + " | ".join(tail) if tail else "")
        )


def tree_processes(root: int) -> list[psutil.Process]:
    """The root process and all its live descendants."""
    try:
        proc = psutil.Process(root)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def tree_pids(root: int) -> list[int]:
    """The root pid and all its live descendants."""
    return [p.pid for p in tree_processes(root)]


def _rss_bytes(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except psutil.Error:  # gone, a zombie, or not ours to read
        return 0


def tree_rss(root: int) -> int:
    """Sum of the resident set sizes, in bytes, of a process and all its descendants right now."""
    return sum(_rss_bytes(p) for p in tree_processes(root))


class TreeSampler:
    """Background thread keeping the peak of :func:`tree_rss` for one root pid.

    Use as a context manager; ``peak`` holds the largest sum seen (sampled once more at exit).
    """

    def __init__(self, root: int, interval: float = DEFAULT_INTERVAL):
        self.root = root
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procmem-sampler", daemon=True)

    def sample(self) -> int:
        """Sum the tree's RSS now, and keep the largest sum seen."""
        total = sum(_rss_bytes(proc) for proc in tree_processes(self.root))
        self.samples += 1
        self.peak = max(self.peak, total)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def measure_call(fn: Callable[..., Any], *args: Any, interval: float = DEFAULT_INTERVAL, **kwargs: Any) -> Measurement:
    """Run ``fn(*args, **kwargs)`` in this thread; return its wall time and the peak RSS of this
    process plus its descendants while it ran (the interpreter's baseline is included).

    The return value of ``fn`` is discarded: capture it with a closure if needed. Exceptions from
    ``fn`` propagate after the sampler has stopped.
    """
    with TreeSampler(os.getpid(), interval) as sampler:
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        wall = time.perf_counter() - t0
        sampler.sample()
    return Measurement(wall, sampler.peak)


def measure_subprocess(
    argv: Sequence[str],
    *,
    interval: float = DEFAULT_INTERVAL,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    stdin: Any = subprocess.DEVNULL,
    stdout: Any = subprocess.DEVNULL,
    stderr_path: str | os.PathLike[str] | None = None,
    check: bool = True,
) -> Measurement:
    """Run a command; return its wall time and the peak summed RSS of its process tree.

    stderr goes to ``stderr_path`` when given (and is quoted in :class:`ProcessFailed`), otherwise it
    is captured to a temporary file. The wall time runs from just before ``fork/exec`` to the reaping
    of the root process, so it includes interpreter start-up for Python commands.
    """
    import tempfile

    own_tmp = stderr_path is None
    if own_tmp:
        fd, stderr_name = tempfile.mkstemp(prefix="procmem-", suffix=".err")
        os.close(fd)
    else:
        stderr_name = os.fspath(stderr_path)
    try:
        with open(stderr_name, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=err)
            sampler = TreeSampler(proc.pid, interval)
            with sampler:
                proc.wait()
                wall = time.perf_counter() - t0
        m = Measurement(wall, sampler.peak)
        if check and proc.returncode != 0:
            with open(stderr_name, errors="replace") as fh:
                text = fh.read()
            raise ProcessFailed(argv, proc.returncode, text, m)
        return m
    finally:
        if own_tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stderr_name)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


if __name__ == "__main__":  # python tools/procmem.py CMD ARGS...
    import sys

    if len(sys.argv) < 2:
        sys.exit("usage: python tools/procmem.py COMMAND [ARGS...]")
    res = measure_subprocess(sys.argv[1:], stdout=None, check=False)
    print(f"wall {res.wall:.3f} s  peak RSS {format_bytes(res.peak)} ({res.peak} bytes)", file=sys.stderr)
