"""The native module ``taskengine._core``, imported once with an error that says how to build it.

Modules that need the core import it from here, so a missing build fails the same clear way
wherever it is first noticed.
"""

from __future__ import annotations

try:
    from taskengine import _core
except ImportError as _exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "taskengine's native module taskengine._core is not available "
        f"({_exc}); build and install the package first, e.g. `pip install "
        "--no-build-isolation -ve .` in the source tree (see docs/development.md)"
    ) from _exc

__all__ = ["_core"]
