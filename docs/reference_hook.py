"""Pages of the documentation site made at build time: the ``hooks:`` file of mkdocs.yml.

Three pages are never checked in, so they cannot go stale:

- ``index.md``: the README, its ``docs/`` links made relative to the site;
- ``commands.md``: the console reference, rendered from ``kmerdb.console.make_parser()``;
- ``api.md``: the Python API reference, one mkdocstrings directive per name of
  ``kmerdb.__all__``; mkdocstrings renders each from its numpydoc docstring.

It is also a griffe extension (``SphinxRoles``, named in mkdocs.yml) that turns the Sphinx
roles of the docstrings (``:meth:`refresh` ``) into Markdown that mkdocstrings can render.

The renderers are plain functions of nothing, so the tests call them without mkdocs.
"""

from __future__ import annotations

import argparse
import html
import inspect
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the checkout's kmerdb, also when mkdocs runs from elsewhere
    sys.path.insert(0, str(ROOT))

import kmerdb  # noqa: E402
from kmerdb.console import make_parser  # noqa: E402

CONSOLE_HEADER = """# Console reference

Generated from the argument parser when the site is built. Every command also answers
`kmerdb COMMAND --help`. Exit codes: 0 ok, 1 failure (one line on stderr,
`kmerdb: error: ...`), 2 usage error. The [user guide](guide.md) shows the commands at work.
"""

API_HEADER = """# Python API reference

Generated from the docstrings when the site is built. Everything here is exported by
`kmerdb` (`kmerdb.__all__`); anything else is internal and may change without notice.
"""


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every command, nested commands as ``"plot spectrum"``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser whose subcommands are listed, in registration order.
    prefix : str
        Names of the enclosing commands, for nested subparsers.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if name not in helps:  # an alias of a command already listed
                    continue
                full = f"{prefix}{name}"
                yield full, helps[name], sub
                yield from subcommands(sub, f"{full} ")


def _markdown(text: str) -> str:
    # argparse help is plain text: '<TAB>' must not become an HTML tag, '|' must not end a cell
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    flags = ", ".join(action.option_strings)
    if action.nargs != 0:
        metavar = action.metavar
        if metavar is None:
            metavar = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
        flags += f" {metavar if isinstance(metavar, str) else ' '.join(metavar)}"
    return flags


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        # _expand_help fills in %(default)s and friends, as --help shows them
        text = formatter._expand_help(action) if action.help else ""
        rows.append(f"| `{_flags(action)}` | {_markdown(text)} |")
    return ["| argument | meaning |", "|---|---|", *rows, ""] if rows else []


def console_reference() -> str:
    """The console reference page: a table of commands, then usage and arguments of each.

    Returns
    -------
    str
        Markdown with one ``## kmerdb COMMAND`` section per command.
    """
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps usage to the terminal: make the page reproducible
    try:
        parser = make_parser()
        commands = list(subcommands(parser))
        parts = [CONSOLE_HEADER, "| command | what it does |", "|---|---|"]
        for name, help_text, _ in commands:
            anchor = "kmerdb-" + name.replace(" ", "-")
            parts.append(f"| [`{name}`](#{anchor}) | {_markdown(help_text)} |")
        parts += ["", "## kmerdb\n", f"```text\n{parser.format_usage().strip()}\n```\n"]
        if parser.description:
            parts.append(_markdown(parser.description) + "\n")
        parts += _arguments(parser)
        if parser.epilog:
            parts.append(_markdown(parser.epilog) + "\n")
        for name, _, sub in commands:
            parts.append(f"## kmerdb {name}\n")
            parts.append(f"```text\n{sub.format_usage().strip()}\n```\n")
            if sub.description:
                parts.append(_markdown(sub.description) + "\n")
            parts += _arguments(sub)
            if sub.epilog:
                parts.append(_markdown(sub.epilog) + "\n")
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(parts).rstrip() + "\n"


def api_reference() -> str:
    """The Python API reference page: mkdocstrings directives for ``kmerdb.__all__``, by kind.

    Returns
    -------
    str
        Markdown: functions, classes, errors (with their hierarchy) and constants.
    """
    functions, classes, errors, constants = [], [], [], []
    for name in kmerdb.__all__:
        obj: Any = getattr(kmerdb, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            errors.append((name, obj))
        elif inspect.isclass(obj):
            classes.append(name)
        elif callable(obj):
            functions.append(name)
        else:
            constants.append((name, obj))
    parts = [API_HEADER]
    for title, names in (("Functions", functions), ("Classes", classes)):
        parts.append(f"## {title}\n")
        parts += [f"::: kmerdb.{name}\n" for name in names]
    parts.append("## Errors\n")
    parts.append("Every error derives from `KmerDBError`; catching it catches them all.\n")
    parts += _hierarchy(errors)
    parts.append("")
    parts += [f"::: kmerdb.{name}\n" for name, _ in errors]
    parts.append("## Constants\n")
    parts += ["| name | value |", "|---|---|"]
    parts += [f"| `kmerdb.{name}` | `{value!r}` |" for name, value in constants]
    return "\n".join(parts).rstrip() + "\n"


def _hierarchy(errors: list[tuple[str, type]]) -> list[str]:
    """A nested list of the exported errors, each under its nearest exported base."""
    exported = {cls: name for name, cls in errors}
    children: dict[type | None, list[type]] = {}
    for _, cls in errors:
        parent = next((base for base in cls.__mro__[1:] if base in exported), None)
        children.setdefault(parent, []).append(cls)

    def walk(parent: type | None, depth: int) -> Iterator[str]:
        for cls in children.get(parent, []):
            others = [b.__name__ for b in cls.__bases__ if b not in exported and b is not Exception]
            also = f" (also `{'`, `'.join(others)}`)" if others else ""
            name = exported[cls]
            yield f"{'    ' * depth}- [`{name}`][kmerdb.{name}]{also}"
            yield from walk(cls, depth + 1)

    return list(walk(None, 0))


def home_page() -> str:
    """The README as the site's home page, its ``docs/`` links made relative to the site."""
    text = (ROOT / "README.md").read_text()
    return re.sub(r"\]\(docs/", "](", text)


PAGES = {"index.md": home_page, "commands.md": console_reference, "api.md": api_reference}


_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|attr|exc|mod|data|obj):`(~?)([^`]+)`")


def sphinx_roles_to_markdown(text: str) -> str:
    """Replace Sphinx cross-reference roles by code spans; names of ``kmerdb.__all__`` become links.

    Parameters
    ----------
    text : str
        A docstring.
    """

    def replace(match: re.Match[str]) -> str:
        short, target = match.group(1), match.group(2)
        name = target.removeprefix("kmerdb.")
        if target.startswith("kmerdb.") and name in kmerdb.__all__:
            return f"[`{target}`][{target}]"  # an autorefs link: the page renders this name
        return f"`{target.rsplit('.', 1)[-1] if short else target}`"  # '~' shows the last part only

    return _ROLE.sub(replace, text)


try:  # griffe comes with mkdocstrings; the page renderers above do not need it
    from griffe import Extension
except ImportError:  # pragma: no cover
    Extension = object  # type: ignore[assignment,misc]


class SphinxRoles(Extension):  # type: ignore[misc,valid-type]
    """griffe extension: docstrings with Sphinx roles rendered as Markdown."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = sphinx_roles_to_markdown(obj.docstring.value)


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated pages to the site (mkdocs >= 1.6)."""
    from mkdocs.structure.files import File

    for path, render in PAGES.items():
        stale = files.get_file_from_path(path)
        if stale is not None:  # a hand-written copy never shadows the generated page
            files.remove(stale)
        files.append(File.generated(config, path, content=render()))
    return files
