"""The documentation tells the truth: README examples run and print what they say, every
command has --help and is documented, generated references are current, the library is silent."""

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT

from kmerdb.console import make_parser

sys.path.insert(0, str(ROOT / "tools"))
import apidoc
import clidoc

COMMANDS = list(clidoc.subcommands(make_parser()))


def _workdir(tmp_path: Path) -> Path:
    (tmp_path / "fixtures").symlink_to(FIXTURES)
    return tmp_path


def console_examples(text: str):
    """(command, expected lines, elided) for every `$ ` line of the console blocks."""
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        current = None
        for line in block.splitlines():
            if line.startswith("$ "):
                if current:
                    yield current
                current = (line[2:], [], False)
            elif current is not None:
                if line.strip() == "...":
                    current = (current[0], current[1], True)
                else:
                    current[1].append(line)
        if current:
            yield current


def test_readme_console_examples_run_and_print_what_they_say(tmp_path):
    work = _workdir(tmp_path)
    examples = list(console_examples((ROOT / "README.md").read_text()))
    assert len(examples) >= 8
    for command, expected, elided in examples:
        argv = shlex.split(command)
        assert argv[0] == "kmerdb"
        proc = subprocess.run([sys.executable, "-m", "kmerdb", *argv[1:]], cwd=work, capture_output=True, text=True)
        assert proc.returncode == 0, f"{command}: {proc.stderr}"
        got = proc.stdout.splitlines()
        if expected and not elided:
            assert got == expected, command
        else:
            it = iter(got)  # the shown lines appear in order
            assert all(any(line == g for g in it) for line in expected), command


def test_readme_python_example_runs(tmp_path):
    work = _workdir(tmp_path)
    code = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[0]
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_embedding_example_runs(tmp_path):
    work = _workdir(tmp_path)
    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "embedding.md").read_text(), re.S)[0]
    script = work / "screen.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"\d+ of 52 reads assigned", proc.stdout)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_documented(command):
    proc = subprocess.run([sys.executable, "-m", "kmerdb", command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: kmerdb {command}")
    assert f"## kmerdb {command}\n" in (ROOT / "docs" / "commands.md").read_text()
    assert re.search(rf"`{command}`|kmerdb {command}\b", (ROOT / "docs" / "guide.md").read_text())


def test_the_issue_commands_all_exist():
    wanted = ["build", "info", "genomes", "query", "lookup", "dump", "export", "merge", "append", "remove", "reindex", "verify", "vacuum", "compact", "distance", "tree", "setop", "spectrum", "stats", "history"]
    assert set(wanted) <= set(COMMANDS)


def test_generated_references_are_current():
    assert (ROOT / "docs" / "commands.md").read_text() == clidoc.render(), "run python tools/clidoc.py"
    assert (ROOT / "docs" / "api.md").read_text() == apidoc.render(), "run python tools/apidoc.py"


def test_library_never_prints():
    """Outside the console, the library speaks only through logging and progress callbacks."""
    offenders = []
    for path in (ROOT / "kmerdb").rglob("*.py"):
        if "console" in path.parts or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name) and fn.id in ("print", "input"):
                    offenders.append(f"{path.name}:{node.lineno}")
                if isinstance(fn, ast.Attribute) and ast.unparse(fn.value) in ("sys.stdout", "sys.stderr"):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders


def test_version_and_exit_codes_documented():
    proc = subprocess.run([sys.executable, "-m", "kmerdb", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and re.fullmatch(r"kmerdb \d+\.\d+\.\d+\n", proc.stdout)
    proc = subprocess.run([sys.executable, "-m", "kmerdb", "--help"], capture_output=True, text=True)
    assert "Exit codes: 0 ok, 1 failure, 2 usage error." in proc.stdout.replace("\n", " ").replace("  ", " ")
