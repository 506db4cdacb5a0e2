"""The documentation tells the truth: README examples run and print what they say, every
command has --help and is documented, the site builds strictly, the library is silent."""

import ast
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT

import kmerdb
from kmerdb.console import make_parser

sys.path.insert(0, str(ROOT / "docs"))
import reference_hook

COMMANDS = [name for name, _, _ in reference_hook.subcommands(make_parser())]


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
    proc = subprocess.run([sys.executable, "-m", "kmerdb", *command.split(), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: kmerdb {command}")
    assert f"## kmerdb {command}\n" in reference_hook.console_reference()
    top = command.split()[0]  # the guide tours the commands; nested ones are in the reference
    assert re.search(rf"`{top}`|kmerdb {top}\b", (ROOT / "docs" / "guide.md").read_text())


def test_the_issue_commands_all_exist():
    wanted = ["build", "info", "genomes", "query", "lookup", "dump", "export", "merge", "append", "remove", "reindex", "verify", "vacuum", "compact", "distance", "tree", "setop", "spectrum", "stats", "history"]
    assert set(wanted) <= set(COMMANDS)


def test_console_reference_shows_what_help_shows():
    text = reference_hook.console_reference()
    assert "Exit codes: 0 ok, 1 failure" in text
    for command in COMMANDS:  # the summary table links every section
        assert f"(#kmerdb-{command.replace(' ', '-')})" in text
    # help is plain text: '<TAB>' stays text in a Markdown table, not an HTML tag
    assert "'label&lt;TAB&gt;path' lines" in text
    assert "`--evidence {exact,approx}`" in text


def test_console_reference_expands_argparse_defaults():
    import argparse

    parser = argparse.ArgumentParser(prog="kmerdb")
    sub = parser.add_subparsers(metavar="COMMAND")
    p = sub.add_parser("demo", help="a | b")
    p.add_argument("--n", type=int, default=7, help="how many (default %(default)s)")
    nested = p.add_subparsers().add_parser("inner", help="nested")
    assert [name for name, _, _ in reference_hook.subcommands(parser)] == ["demo", "demo inner"]
    assert reference_hook._arguments(p)[2] == "| `--n N` | how many (default 7) |"
    assert reference_hook._markdown("a | b") == "a \\| b"
    assert nested.prog == "kmerdb demo inner"


def test_api_reference_renders_every_exported_name():
    text = reference_hook.api_reference()
    for name in kmerdb.__all__:
        assert f"::: kmerdb.{name}\n" in text or f"| `kmerdb.{name}` |" in text, name
    assert "- [`KmerDBError`][kmerdb.KmerDBError]" in text
    assert "    - [`InputError`][kmerdb.InputError] (also `ValueError`)" in text


def test_sphinx_roles_become_markdown():
    convert = reference_hook.sphinx_roles_to_markdown
    assert convert("Use :func:`kmerdb.open`.") == "Use [`kmerdb.open`][kmerdb.open]."
    assert convert("see :meth:`refresh` and :class:`~kmerdb.store.catalog.Snapshot`") == (
        "see `refresh` and `Snapshot`"
    )
    assert convert(":class:`kmerdb.store.catalog.Snapshot`") == "`kmerdb.store.catalog.Snapshot`"


def test_home_page_is_the_readme_with_site_links():
    text = reference_hook.home_page()
    assert text.startswith((ROOT / "README.md").read_text().splitlines()[0])
    assert "](docs/" not in text and "](guide.md)" in text


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the docs extra is not installed")
def test_site_builds_strictly_with_every_command_and_name(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    commands = (site / "commands.html").read_text()
    for command in COMMANDS:
        anchor = "kmerdb-" + command.replace(" ", "-")
        assert f'id="{anchor}"' in commands, command
    api = (site / "api.html").read_text()
    for name in kmerdb.__all__:
        if callable(getattr(kmerdb, name)):
            assert f'id="kmerdb.{name}"' in api, name
    assert ":meth:" not in api and ":func:" not in api
    index = (site / "index.html").read_text()
    assert 'href="guide.html"' in index
    # nothing but the pages: the hook file is not published
    assert not (site / "reference_hook.py").exists()


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
