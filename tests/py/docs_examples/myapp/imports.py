"""Functions docs/concepts.md dispatches from ``myapp.imports``."""

from __future__ import annotations


def run(source: str) -> str:
    """Import ``source``."""
    return f"imported {source}"
