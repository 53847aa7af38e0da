"""Functions docs/concepts.md dispatches from ``myapp.tasks``."""

from __future__ import annotations


def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


def urgent() -> str:
    """A task dispatched with a high priority."""
    return "urgent"


def nightly() -> str:
    """A task dispatched for a later time."""
    return "nightly"


def later() -> str:
    """A task dispatched with a delay."""
    return "later"


def measure(path: str) -> int:
    """Return the length of ``path``, standing in for a file's size."""
    return len(path)


def report(size: int) -> str:
    """Describe a size measured by ``measure``."""
    return f"{size} bytes"


def fetch() -> str:
    """A task dispatched with retries."""
    return "fetched"


def touch(row: int) -> int:
    """Return ``row``; the example holds ``row:<row>`` exclusively while it runs."""
    return row
