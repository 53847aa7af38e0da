"""Write the Python API reference (docs/api.md) from the package's own signatures and docstrings.

    .venv/bin/python scripts/api_reference.py > docs/api.md

tests/py/test_api_reference.py fails when a public name, or a public member of a public class,
is missing from docs/api.md or has no docstring. (It does not demand byte equality: signatures
render differently across Python and pydantic versions.)
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from typing import Any

import taskengine

HEADER = """# Python API reference

Every public name of the `taskengine` package (its `__all__`), with its signature and docstring,
and the public members that taskengine itself defines on each public class. Generated from the
code by `.venv/bin/python scripts/api_reference.py > docs/api.md`;
`tests/py/test_api_reference.py` checks that every name is here and documented. The guides
explain how the pieces fit: [quickstart](quickstart.md), [concepts](concepts.md) (dispatch),
[task classes](task-classes.md), [jobs and builds](jobs.md), [running tasks](running-tasks.md),
[command line](cli.md).
"""


def _ours(obj: Any) -> bool:
    """Whether ``obj`` (a function, property or class) is defined by taskengine."""
    target = obj.fget if isinstance(obj, property) else obj
    target = getattr(target, "__func__", target)
    return str(getattr(target, "__module__", "") or "").startswith("taskengine")


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def public_members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties taskengine defines on ``cls`` (or its taskengine
    bases), in name order."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not str(klass.__module__).startswith("taskengine"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            if _ours(member):
                seen.add(name)
                yield name, member


def _doc(obj: Any) -> str:
    return inspect.getdoc(obj) or ""


def render() -> str:
    out = [HEADER]
    for name in sorted(taskengine.__all__, key=str.lower):
        obj = getattr(taskengine, name)
        if inspect.isclass(obj):
            out.append(f"## `taskengine.{name}`\n")
            bases = [b.__name__ for b in obj.__bases__ if b is not object]
            base_list = f" ({', '.join(bases)})" if bases else ""
            out.append(f"class `{name}{_signature(obj)}`{base_list}\n")
            out.append(_doc(obj) + "\n")
            for member_name, member in sorted(public_members(obj), key=lambda item: item[0]):
                first = _doc(member).split("\n\n")[0].replace("\n", " ")
                if isinstance(member, property):
                    out.append(f"- property `{member_name}`: {first}")
                else:
                    out.append(f"- `{member_name}{_signature(member)}`: {first}")
            out.append("")
        elif callable(obj):
            out.append(f"## `taskengine.{name}{_signature(obj)}`\n")
            out.append(_doc(obj) + "\n")
        else:
            out.append(f"## `taskengine.{name}`\n")
            out.append(f"Constant: `{obj!r}`.\n")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
