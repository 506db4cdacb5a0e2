"""Write the Python API reference (docs/api.md) from the docstrings of ``kmerdb.__all__``.

    python tools/apidoc.py            # rewrite docs/api.md
    python tools/apidoc.py --check    # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import docgen

import kmerdb

OUT = ROOT / "docs" / "api.md"

HEADER = """# Python API reference

Generated from the docstrings by `python tools/apidoc.py`; do not edit by hand.
Everything here is exported by `kmerdb` (`kmerdb.__all__`); anything else is internal.
"""


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj, eval_str=True))
    except (NameError, TypeError, ValueError, SyntaxError):
        try:
            return str(inspect.signature(obj)).replace("'", "")
        except (TypeError, ValueError):
            return "(...)"


def _doc(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _members(cls) -> list[tuple[str, object]]:
    out = []
    for name, member in cls.__dict__.items():
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if (isinstance(member, property) or inspect.isfunction(member)) and (member.__doc__ or "").strip():
            out.append((name, member))
    return out


def render() -> str:
    parts = [HEADER]
    functions, classes, errors, constants = [], [], [], []
    for name in kmerdb.__all__:
        obj = getattr(kmerdb, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            errors.append((name, obj))
        elif inspect.isclass(obj):
            classes.append((name, obj))
        elif callable(obj):
            functions.append((name, obj))
        else:
            constants.append((name, obj))
    parts.append("## Functions\n")
    for name, fn in functions:
        parts.append(f"### `kmerdb.{name}{_signature(fn)}`\n\n```text\n{_doc(fn)}\n```\n")
    parts.append("## Classes\n")
    for name, cls in classes:
        parts.append(f"### `kmerdb.{name}`\n\n```text\n{_doc(cls)}\n```\n")
        for mname, member in _members(cls):
            if isinstance(member, property):
                parts.append(f"- `{mname}` (property): {_doc(member).splitlines()[0]}\n")
            else:
                parts.append(f"#### `{name}.{mname}{_signature(member)}`\n\n```text\n{_doc(member)}\n```\n")
    parts.append("## Errors\n\nAll derive from `KmerDBError`.\n")
    for name, cls in errors:
        bases = ", ".join(b.__name__ for b in cls.__bases__)
        parts.append(f"- `{name}({bases})`: {_doc(cls).splitlines()[0] if _doc(cls) else ''}")
    parts.append("\n## Constants\n")
    for name, value in constants:
        parts.append(f"- `{name}` = `{value!r}`")
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    return docgen.run(__doc__.splitlines()[0], OUT, render)


if __name__ == "__main__":
    sys.exit(main())
