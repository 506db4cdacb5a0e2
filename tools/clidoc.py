"""Write the console reference (docs/commands.md) from the argument parser itself.

    python tools/clidoc.py            # rewrite docs/commands.md
    python tools/clidoc.py --check    # exit 1 if docs/commands.md is out of date
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import docgen

from kmerdb.console import make_parser

OUT = ROOT / "docs" / "commands.md"

HEADER = """# Console reference

Generated from the parser by `python tools/clidoc.py`; do not edit by hand. Every command
also answers `kmerdb COMMAND --help`. Exit codes: 0 ok, 1 failure (one line on stderr,
`kmerdb: error: ...`), 2 usage error. The [user guide](guide.md) shows them at work.
"""


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Name -> parser of every subcommand, in registration order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices.items())
    return {}


def _flags(action: argparse.Action) -> str:
    if action.option_strings:
        flags = ", ".join(action.option_strings)
        if action.nargs != 0:
            flags += f" {action.metavar or action.dest.upper()}"
        return flags
    return action.metavar or action.dest


def render() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps usage to the terminal: make it reproducible
    parser = make_parser()
    parts = [HEADER]
    cmds = subcommands(parser)
    parts.append("| command | what it does |\n|---|---|")
    helps = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
    for name in cmds:
        parts.append(f"| [`{name}`](#kmerdb-{name}) | {helps.get(name, '')} |")
    parts.append("")
    for name, sub in cmds.items():
        parts.append(f"## kmerdb {name}\n")
        parts.append(f"```text\n{sub.format_usage().strip()}\n```\n")
        if sub.description:
            parts.append(sub.description.strip() + "\n")
        rows = [
            (_flags(a), (a.help or "").replace("|", "\\|"))
            for a in sub._actions
            if not isinstance(a, argparse._HelpAction)
        ]
        if rows:
            parts.append("| argument | meaning |\n|---|---|")
            parts.extend(f"| `{flag}` | {text} |" for flag, text in rows)
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    return docgen.run(__doc__.splitlines()[0], OUT, render)


if __name__ == "__main__":
    sys.exit(main())
