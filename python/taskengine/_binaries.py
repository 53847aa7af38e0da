"""Finding the native ``taskengine-worker`` executable."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = [
    "WORKER_BINARY_ENV",
    "find_worker_binary",
    "python_path_for_workers",
    "worker_environment",
]

WORKER_BINARY = "taskengine-worker"
WORKER_BINARY_ENV = "TASKENGINE_WORKER_BINARY"
"""Environment variable naming the worker executable explicitly (checked first)."""


def _executable(path: str | Path) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _from_core() -> str:
    try:
        from taskengine import _core
    except ImportError:
        return ""
    return _core.worker_binary()


def find_worker_binary() -> str:
    """Return the path of ``taskengine-worker``.

    Looks, in order: at ``$TASKENGINE_WORKER_BINARY``; where the native module says it was
    installed; next to the running Python (a virtualenv's ``bin/``); on ``$PATH``. Raises
    :class:`FileNotFoundError` listing where it looked.
    """
    explicit = os.environ.get(WORKER_BINARY_ENV)
    if explicit:
        if _executable(explicit):
            return os.path.abspath(explicit)
        raise FileNotFoundError(f"${WORKER_BINARY_ENV} names {explicit!r}, which is no executable")
    looked: list[str] = []
    core = _from_core()
    if core:
        if _executable(core):
            return core
        looked.append(core)
    for directory in dict.fromkeys(
        [Path(sys.executable).parent, Path(sys.executable).resolve().parent]
    ):
        candidate = directory / WORKER_BINARY
        if _executable(candidate):
            return str(candidate)
        looked.append(str(candidate))
    on_path = shutil.which(WORKER_BINARY)
    if on_path:
        return on_path
    looked.append("$PATH")
    raise FileNotFoundError(
        f"cannot find {WORKER_BINARY} (looked at {', '.join(looked)}); build and install "
        f"taskengine, or set ${WORKER_BINARY_ENV}"
    )


def python_path_for_workers(*extra: str | os.PathLike[str]) -> str:
    """Return a ``PYTHONPATH`` value that lets a worker's executors import this taskengine.

    Puts ``extra`` first, then the directory holding this ``taskengine`` package when it is a
    source tree (not an installed ``site-packages``, which must not go ahead of the standard
    library), then the current ``$PYTHONPATH``.
    """
    package_parent = Path(__file__).resolve().parent.parent
    parts = [os.fspath(p) for p in extra]
    if package_parent.name not in ("site-packages", "dist-packages"):
        parts.append(str(package_parent))
    current = os.environ.get("PYTHONPATH")
    if current:
        parts.extend(current.split(os.pathsep))
    return os.pathsep.join(dict.fromkeys(p for p in parts if p))


def worker_environment(*extra_path: str | os.PathLike[str]) -> dict[str, str]:
    """Return the environment for a ``taskengine-worker`` started from this Python.

    Its executors run this interpreter (``$TASKENGINE_PYTHON``, unless already set) with
    :func:`python_path_for_workers` as ``PYTHONPATH``, so they import the same taskengine and
    the modules in ``extra_path``.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = python_path_for_workers(*extra_path)
    if not env.get("TASKENGINE_PYTHON") and sys.executable:
        env["TASKENGINE_PYTHON"] = sys.executable
    return env
