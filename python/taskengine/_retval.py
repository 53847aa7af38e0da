"""Result passing: a task's arguments may stand for the results of other tasks.

A :class:`~taskengine.task.Task` anywhere inside a function task's ``args`` or ``kwargs`` is
stored as the marker ``{"$retval": <task id>}``, and :func:`retval` writes that marker
explicitly. The dispatched task then depends on every task its arguments refer to, and when it
starts the worker receives each marker replaced by that task's result (``None`` if the task did
not complete and the dependent runs anyway, with ``allow_failure=True``). The stored payload
keeps the markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskengine._spec import INT64_MAX, check_id, is_int
from taskengine.errors import InvalidArgument
from taskengine.task import Task

__all__ = ["RETVAL_KEY", "extract_references", "retval"]

RETVAL_KEY = "$retval"
"""The key of the one-key object that stands for a task's result."""

_MAX_DEPTH = 200  # as deep as the JSON check looks; deeper values are left for it to report


def retval(task: Task | int) -> dict[str, int]:
    """Return ``{"$retval": id}``: a marker that stands for the result of ``task``.

    Put it anywhere inside the ``args`` or ``kwargs`` of a function task; ``dispatch`` adds
    the task to ``depends_on`` and the function receives the task's result in its place.
    Passing the :class:`~taskengine.task.Task` object itself does the same.
    """
    return {RETVAL_KEY: check_id(task, "retval's task")}


def _where(path: tuple[object, ...]) -> str:
    head, *rest = path
    return str(head) + "".join(f"[{part!r}]" for part in rest)


class _Collector:
    """Walks argument values, replacing Tasks by markers and noting every task referred to."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: dict[int, None] = {}

    def task(self, task: Task, path: tuple[object, ...]) -> dict[str, int]:
        other = task.engine.url
        if other != self.url:
            raise InvalidArgument(
                f"{_where(path)} is task {task.id} of another store ({other}); a task can "
                f"only use the results of tasks in its own store"
            )
        self.ids[task.id] = None
        return {RETVAL_KEY: task.id}

    def marker(self, value: dict[Any, Any], path: tuple[object, ...]) -> None:
        target = value[RETVAL_KEY]
        if not is_int(target) or not 0 < target <= INT64_MAX:
            raise InvalidArgument(
                f"{_where(path)} is {value!r}, which is not a task result marker: the "
                f"{RETVAL_KEY!r} of taskengine.retval() must be a positive task id"
            )
        self.ids[target] = None

    def walk(self, value: object, path: tuple[object, ...], depth: int = 0) -> Any:
        """Return ``value`` with every Task replaced (a copy only where something changed)."""
        if isinstance(value, Task):
            return self.task(value, path)
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, dict):
            if len(value) == 1 and RETVAL_KEY in value:
                self.marker(value, path)
                return value
            changed: dict[Any, Any] | None = None
            for key, item in value.items():
                new = self.walk(item, (*path, key), depth + 1)
                if new is not item:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = new
            return value if changed is None else changed
        if isinstance(value, list | tuple):
            items: list[Any] | None = None
            for index, item in enumerate(value):
                new = self.walk(item, (*path, index), depth + 1)
                if new is not item:
                    if items is None:
                        items = list(value)
                    items[index] = new
            if items is None:
                return value
            return tuple(items) if isinstance(value, tuple) else items
        return value


def extract_references(args: object, kwargs: object, url: str) -> tuple[Any, Any, list[int]]:
    """Replace Tasks in ``args`` and ``kwargs`` by result markers; find every marker.

    Returns ``(args, kwargs, task ids)``: the arguments (copied only where a Task was
    replaced; values of the wrong container type are returned as they are, for the JSON check
    to report) and the ids of the tasks they refer to, in order of first appearance. ``url``
    is the dispatching store's: a Task of another store raises InvalidArgument, as does a
    ``{"$retval": ...}`` marker that does not hold a positive task id.
    """
    collector = _Collector(url)
    if isinstance(args, list | tuple):
        args = collector.walk(args, ("args",))
    if isinstance(kwargs, Mapping):
        kwargs = collector.walk(dict(kwargs), ("kwargs",))
    return args, kwargs, list(collector.ids)
