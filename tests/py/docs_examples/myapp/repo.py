"""Functions docs/concepts.md dispatches from ``myapp.repo``."""

from __future__ import annotations


def publish(branch: str) -> str:
    """Publish ``branch`` (needs the repository alone)."""
    return f"published {branch}"


def read(branch: str) -> str:
    """Read ``branch`` (may share the repository with other readers)."""
    return f"read {branch}"
