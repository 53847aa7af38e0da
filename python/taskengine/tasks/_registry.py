"""Where task classes are found: subclasses register themselves; the entry-point group
``taskengine.tasks`` names modules (or classes) to import so that they do.

A worker's executors and ``create_work_request`` both call :func:`load_entry_points` before
looking a name up, so a class installed by a distribution needs no ``--import``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from typing import TYPE_CHECKING, Any

from taskengine.errors import TaskConfigError
from taskengine.tasks._models import TaskTypes

if TYPE_CHECKING:
    from taskengine.tasks._base import BaseTask

__all__ = ["ENTRY_POINT_GROUP", "load_entry_points", "lookup", "register", "registered"]

ENTRY_POINT_GROUP = "taskengine.tasks"
"""The entry-point group whose entries are imported to register task classes."""

_log = logging.getLogger("taskengine.tasks")
_lock = threading.Lock()
_classes: dict[TaskTypes, dict[str, type[BaseTask[Any, Any]]]] = {t: {} for t in TaskTypes}
_loaded_entry_points: set[str] = set()


def register(cls: type[BaseTask[Any, Any]]) -> None:
    """Record ``cls`` under its type and lower-case name.

    The same class imported again (a reload) replaces itself; another class with a name
    already taken raises TaskConfigError naming both."""
    name = cls.name
    with _lock:
        for classes in _classes.values():
            other = classes.get(name)
            if other is None:
                continue
            same = (other.__module__, other.__qualname__) == (cls.__module__, cls.__qualname__)
            if not same:
                raise TaskConfigError(
                    f"task name {name!r} of {cls.__module__}.{cls.__qualname__} is already "
                    f"used by {other.__module__}.{other.__qualname__}"
                )
            del classes[name]
        _classes[TaskTypes(cls.TASK_TYPE)][name] = cls


def load_entry_points() -> None:
    """Import every entry of the ``taskengine.tasks`` group not imported yet.

    An entry that fails to import is logged and skipped: one broken distribution must not
    hide every other task class."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"{entry.name}={entry.value}"
        if key in _loaded_entry_points:
            continue
        _loaded_entry_points.add(key)
        try:
            entry.load()
        except Exception:
            _log.exception("could not load task classes from entry point %s", key)


def registered(task_type: TaskTypes | None = None) -> dict[str, type[BaseTask[Any, Any]]]:
    """A copy of the registered classes by name, of one type or of all types."""
    load_entry_points()
    with _lock:
        if task_type is not None:
            return dict(_classes[TaskTypes(task_type)])
        merged: dict[str, type[BaseTask[Any, Any]]] = {}
        for classes in _classes.values():
            merged.update(classes)
        return merged


def lookup(task_type: TaskTypes | None, task_name: str) -> type[BaseTask[Any, Any]]:
    """The class registered as ``task_name`` (case-insensitive), of ``task_type`` if given.

    Raises TaskConfigError naming the registered ones when there is none."""
    if not isinstance(task_name, str):
        raise TaskConfigError(f"a task name must be a string, not {type(task_name).__name__}")
    classes = registered(task_type)
    cls = classes.get(task_name.lower())
    if cls is None:
        kind = f"{TaskTypes(task_type).value} " if task_type is not None else ""
        known = ", ".join(sorted(classes)) or "none"
        raise TaskConfigError(
            f"no {kind}task class named {task_name!r} is registered (registered: {known}); "
            f"import its module or install it under the entry-point group {ENTRY_POINT_GROUP!r}"
        )
    return cls
