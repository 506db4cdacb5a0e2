"""Wall time and peak resident memory of a whole process tree, from /proc.

A sampler thread polls, every ``interval`` seconds (20 ms by default), the resident set size
(``VmRSS`` in ``/proc/<pid>/status``) of a root process and of all its descendants, and keeps the
largest sum seen. Descendants come from ``/proc/<pid>/task/<tid>/children`` when the kernel provides
it (CONFIG_PROC_CHILDREN), otherwise from one scan of ``/proc/*/stat`` parent ids per sample.

Each sample also reads every process's own high-water mark (``VmHWM``), so a spike of one process
between two samples is not missed (a per-process maximum: a lower bound for the tree's peak). The
kernel's ``ru_maxrss`` of a reaped child is not used: after fork/vfork + exec it can carry the
parent's high-water mark, which would charge this interpreter's memory to the child.

Linux only; no third-party dependency.

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
_PROC = "/proc"


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


def _rss_hwm_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of one process in bytes; zeros if it is gone, a zombie or a kernel thread."""
    rss = hwm = 0
    try:
        with open(f"{_PROC}/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024  # reported in kB
                elif line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                    break  # VmRSS follows VmHWM
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return rss, hwm


def _children_file_supported() -> bool:
    return os.path.exists(f"{_PROC}/self/task/{os.getpid()}/children")


_HAS_CHILDREN_FILE = _children_file_supported()


def _children_via_task(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"{_PROC}/{pid}/task")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return out
    for tid in tids:
        try:
            with open(f"{_PROC}/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(x) for x in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return out


def _parent_map() -> dict[int, list[int]]:
    """ppid -> [pid] for every process visible in /proc."""
    children: dict[int, list[int]] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        try:
            with open(f"{_PROC}/{name}/stat", "rb") as fh:
                stat = fh.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # the command name (field 2) may contain spaces and parentheses: split after the last ')'
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) < 2:
            continue
        children.setdefault(int(rest[1]), []).append(int(name))
    return children


def tree_pids(root: int) -> list[int]:
    """The root pid and all its live descendants."""
    pids = [root]
    if _HAS_CHILDREN_FILE:
        frontier = [root]
        while frontier:
            nxt: list[int] = []
            for pid in frontier:
                nxt.extend(_children_via_task(pid))
            pids.extend(nxt)
            frontier = nxt
        return pids
    children = _parent_map()
    frontier = [root]
    while frontier:
        nxt = []
        for pid in frontier:
            nxt.extend(children.get(pid, ()))
        pids.extend(nxt)
        frontier = nxt
    return pids


def tree_rss(root: int) -> int:
    """Sum of VmRSS, in bytes, of a process and all its descendants right now."""
    return sum(_rss_hwm_bytes(pid)[0] for pid in tree_pids(root))


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
        """Sum the tree's RSS now; also fold in each process's own high-water mark (VmHWM), a lower
        bound of the tree's peak that catches a spike between two samples."""
        total = 0
        for pid in tree_pids(self.root):
            rss, hwm = _rss_hwm_bytes(pid)
            total += rss
            if hwm > self.peak:
                self.peak = hwm
        self.samples += 1
        if total > self.peak:
            self.peak = total
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
