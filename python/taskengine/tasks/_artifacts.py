"""Storing a running task's files as its artifacts.

The artifact store is ``taskengine.current().add_artifact(path, name=None)`` (module
``taskengine._current``). This is the one place task classes reach it; where it is not
available (no artifact store in this build, or not inside a running task) nothing is stored
and the caller learns so.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

__all__ = ["store_artifact"]

_log = logging.getLogger("taskengine.tasks")


def store_artifact(path: Path, name: str | None = None) -> bool:
    """Store ``path`` as an artifact of the running task; return whether it was stored."""
    try:
        context_module = importlib.import_module("taskengine._current")
    except ImportError:
        return False
    current = getattr(context_module, "current", None)
    try:
        context = current() if callable(current) else None
    except Exception:  # outside a running task there is no context
        return False
    add_artifact = getattr(context, "add_artifact", None)
    if add_artifact is None:
        return False
    add_artifact(str(path), name=name)
    _log.debug("stored %s as artifact %s", path, name or path.name)
    return True
