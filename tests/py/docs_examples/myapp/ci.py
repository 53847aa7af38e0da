"""Functions docs/concepts.md dispatches from ``myapp.ci``."""

from __future__ import annotations


def build(version: str) -> str:
    """Build ``version``."""
    return f"built {version}"


def test() -> bool:
    """Test the build."""
    return True


def notify() -> None:
    """Tell someone how it went."""
