"""Functions docs/concepts.md dispatches from ``myapp.sign``."""

from __future__ import annotations


def sign(path: str) -> str:
    """Sign ``path``."""
    return f"signed {path}"
