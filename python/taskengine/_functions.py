"""Naming task functions as ``"package.module:function"`` and finding them again.

A worker runs a function task by importing its module by name, so only functions reachable
that way can be dispatched: module-level functions (and attributes of module-level classes,
such as static and class methods). Shared by ``dispatch`` (which checks the name before storing
the task) and the executor (which resolves it to run the task). Imports nothing native.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import MethodType
from typing import Any

from taskengine.errors import FunctionNotFound

__all__ = ["function_path", "normalize_path", "resolve"]


def _is_dotted_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


_NORMALIZED: dict[str, str] = {}
"""normalize_path's answers for valid names: dispatch asks for the same few names again and
again. Cleared when it grows past _MAX_NORMALIZED names."""
_MAX_NORMALIZED = 4096


def normalize_path(path: str) -> str:
    """Return ``path`` as ``"module:qualname"``.

    Accepts ``"pkg.mod:fn"`` (jobcontrol), ``"pkg.mod.fn"`` (pulpcore: the last dot splits
    module and function) and ``"pkg.mod:Class.method"``. Raises :class:`FunctionNotFound` for
    anything else.
    """
    if type(path) is str:  # a subclass may hash or compare as it likes: not cached
        cached = _NORMALIZED.get(path)
        if cached is not None:
            return cached
    elif not isinstance(path, str):
        raise FunctionNotFound(
            f"a function must be given as a callable or a 'module:function' string, "
            f"not {type(path).__name__}"
        )
    text = path.strip()
    if ":" in text:
        module, _, attribute = text.partition(":")
    else:
        module, _, attribute = text.rpartition(".")
    if not (_is_dotted_name(module) and _is_dotted_name(attribute)):
        raise FunctionNotFound(
            f"{path!r} is not a function name: expected 'package.module:function'"
        )
    normalized = f"{module}:{attribute}"
    if type(path) is str:
        if len(_NORMALIZED) >= _MAX_NORMALIZED:
            _NORMALIZED.clear()
        _NORMALIZED[path] = normalized
    return normalized


def function_path(func: Callable[..., Any]) -> str:
    """Return the ``"module:qualname"`` a worker can import ``func`` by.

    Raises :class:`FunctionNotFound` explaining why for callables a worker could not find by
    name: lambdas, nested functions, functions defined in ``__main__``, bound methods,
    ``functools.partial`` objects and other callable instances.
    """
    if isinstance(func, MethodType) and not isinstance(func.__self__, type):
        raise FunctionNotFound(
            f"cannot dispatch the bound method {func.__qualname__}: a worker cannot recreate "
            f"its instance; dispatch a module-level function and pass the data it needs as "
            f"arguments"
        )
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise FunctionNotFound(
            f"cannot dispatch {type(func).__name__} object {func!r}: it has no importable name; "
            f"dispatch a module-level function (pass arguments with args=/kwargs=)"
        )
    if qualname == "<lambda>" or qualname.endswith(".<lambda>"):
        raise FunctionNotFound(
            f"cannot dispatch a lambda (defined in {module}): a worker imports functions by "
            f"name; define it with def at module level"
        )
    if "<locals>" in qualname:
        raise FunctionNotFound(
            f"cannot dispatch {module}.{qualname}: it is defined inside another function, so a "
            f"worker cannot import it; move it to module level (a decorator that hides it "
            f"should use functools.wraps)"
        )
    if module == "__main__":
        raise FunctionNotFound(
            f"cannot dispatch {qualname} from __main__: a worker imports functions by module "
            f"name and your script is not importable as __main__ there; move it into a module "
            f"(or pass 'yourmodule:{qualname}')"
        )
    return normalize_path(f"{module}:{qualname}")


def _module_missing(exc: ModuleNotFoundError, module: str) -> bool:
    """Whether ``exc`` says ``module`` itself (or a parent package) does not exist."""
    missing = exc.name
    return missing is not None and (module == missing or module.startswith(missing + "."))


def resolve(path: str) -> Callable[..., Any]:
    """Import and return the callable named ``"module:qualname"``.

    Raises :class:`FunctionNotFound` when the module does not exist, the attribute is missing
    or not callable. Any other exception raised while importing the module (a bug in it, a
    missing dependency of it) propagates unchanged.
    """
    module_name, _, qualname = normalize_path(path).partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _module_missing(exc, module_name):
            raise FunctionNotFound(
                f"cannot import module {module_name!r} for {path!r}: {exc}"
            ) from exc
        raise
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise FunctionNotFound(
                f"module {module_name!r} has no attribute {qualname!r} (looking for {path!r})"
            ) from None
    if not callable(target):
        raise FunctionNotFound(f"{path!r} is a {type(target).__name__}, not a callable")
    return target  # type: ignore[no-any-return]
