"""tools/bench.py: argument handling and KMC3's list file only (no timing, no benchmark run)."""

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

pytest.importorskip("psutil")
pytest.importorskip("rich")
pytest.importorskip("bbhash")
if not (shutil.which("kmc") and shutil.which("kmc_tools")):
    pytest.skip("KMC3 (kmc, kmc_tools) is not installed", allow_module_level=True)

import bench


def test_list_file_has_one_absolute_path_per_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = [Path("a.fna.gz"), tmp_path / "b.fa", Path("sub/c.fasta")]
    dest = bench.write_kmc_list(inputs, tmp_path / "list.txt")
    assert dest.read_text() == "".join(f"{(tmp_path / p).resolve()}\n" for p in inputs)


def test_list_file_refuses_no_inputs_and_line_breaks(tmp_path):
    with pytest.raises(ValueError):
        bench.write_kmc_list([], tmp_path / "list.txt")
    with pytest.raises(ValueError, match="line break"):
        bench.write_kmc_list([tmp_path / "a\nb.fa"], tmp_path / "list.txt")
    assert not (tmp_path / "list.txt").exists()


def test_kmc_format_is_one_per_run():
    assert bench.kmc_input_format([Path("a.fna.gz"), Path("b.fa")]) == "-fm"
    assert bench.kmc_input_format([Path("a.fq.gz"), Path("b.fastq")]) == "-fq"
    with pytest.raises(ValueError, match="mix"):
        bench.kmc_input_format([Path("a.fa"), Path("b.fq")])


@pytest.mark.parametrize("argv", [["--repeat", "0"], ["--threads", "0"], ["--rounds", "0"], ["--k", "32"],
                                  ["--sections", "kmc,nope"], ["--max-memory", "lots"],
                                  ["--read-length", "20", "--k", "31"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2


def test_missing_input_is_reported_before_any_work(tmp_path, capsys):
    assert bench.main([str(tmp_path / "absent.fa"), "--workdir", str(tmp_path / "w")]) == 2
    assert "absent.fa" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
