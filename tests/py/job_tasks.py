"""Functions the job tests run as builds on real workers."""

from __future__ import annotations

from typing import Any


def fetch(count: int) -> dict[str, Any]:
    """Return ``count`` numbers, as a first job's "data"."""
    return {"numbers": list(range(1, count + 1))}


def total(data: dict[str, Any], factor: int = 1) -> int:
    """Sum the numbers ``fetch`` returned, times ``factor``."""
    return int(sum(data["numbers"])) * factor


def report(first: int, second: int, label: str = "sum") -> str:
    """Combine two dependencies' return values into one line."""
    return f"{label}: {first} + {second} = {first + second}"


def explode(threshold: int) -> None:
    """Fail with a ValueError; ``threshold`` and ``limit`` show in the traceback's locals."""
    limit = threshold * 2
    raise ValueError(f"over the limit {limit}")


def size(data: dict[str, Any]) -> int:
    """How many numbers ``fetch`` returned."""
    return len(data["numbers"])
