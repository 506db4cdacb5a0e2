"""Console: --scheduler runs build, merge, append, compact, reindex, verify and distance on a Dask cluster."""

from __future__ import annotations

import json
import shutil

from conftest import GENOMES
from conftest import run_console as run

K = 21


def _dump(capsys, db) -> str:
    code, out, _ = run(capsys, "dump", str(db))
    assert code == 0
    return out


def test_every_parallel_command_on_a_cluster_answers_as_locally(dask_client, tmp_path, capsys):
    address = dask_client.scheduler.address
    outputs = {}
    for where, opts in (("local", ["--threads", "2"]), ("dask", ["--scheduler", address])):
        d = tmp_path / where
        d.mkdir()
        ab, c, abc = d / "ab", d / "c", d / "abc"
        steps = [
            ["build", str(ab), *GENOMES["A"], *GENOMES["B"], "--k", str(K), "--partitions", "4", "--counts"],
            ["build", str(c), *GENOMES["C"], "--k", str(K), "--partitions", "4", "--counts"],
            ["merge", str(abc), str(ab), str(c), "--mode", "count"],
        ]
        for argv in steps:
            code, _, err = run(capsys, *argv, *opts, "--quiet")
            assert code == 0, err
        shutil.copytree(ab, d / "ab+c")
        for argv in (
            ["append", str(d / "ab+c"), *GENOMES["C"]],
            ["compact", str(d / "ab+c")],
            ["reindex", str(d / "ab+c"), "--evidence", "approx", "--fp-bits", "12"],
            ["reindex", str(d / "ab+c"), "--evidence", "exact"],
        ):
            code, _, err = run(capsys, *argv, *opts, "--quiet")
            assert code == 0, err
        code, out, err = run(capsys, "verify", str(d / "ab+c"), *opts, "--json")
        assert code == 0 and json.loads(out)["ok"], err
        code, matrix, err = run(capsys, "distance", str(abc), *opts)
        assert code == 0, err
        outputs[where] = {name: _dump(capsys, d / name) for name in ("ab", "c", "abc", "ab+c")} | {"distance": matrix}
    assert outputs["dask"] == outputs["local"]
    # the merged and the appended index hold the same rows (in their own slot orders)
    merged, appended = (sorted(outputs["local"][name].splitlines()) for name in ("abc", "ab+c"))
    assert merged == appended and len(merged) > 1000
