"""``taskengine.current()``: which task's context is current.

Kept apart from :mod:`taskengine._context` (the context itself, with logging and the output
sinks) because every executor imports it before it reports ready: it must cost next to
nothing to import. It imports nothing from the native core.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskengine.errors import NoCurrentTask

if TYPE_CHECKING:
    from taskengine._context import TaskContext

__all__ = [
    "activate",
    "activate_process",
    "current",
    "current_or_none",
    "deactivate",
]

_context_var: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "taskengine_current_task", default=None
)
_process_context: TaskContext | None = None  # the executor's: every thread of it sees it
_process_factory: Callable[[], TaskContext] | None = None


def activate(context: TaskContext) -> contextvars.Token[Any]:
    """Make ``context`` current in this context (and the tasks and coroutines it starts)."""
    return _context_var.set(context)


def deactivate(token: contextvars.Token[Any]) -> None:
    """Undo :func:`activate`."""
    _context_var.reset(token)


def activate_process(factory: Callable[[], TaskContext] | None) -> None:
    """Make the context ``factory`` builds (on first use) current for the whole process.

    The executor runs one task at a time, and every thread of it works for that task. The
    context is built only when asked for, so tasks that never use it pay nothing. None ends
    it.
    """
    global _process_context, _process_factory
    _process_context = None
    _process_factory = factory


def current_or_none() -> TaskContext | None:
    """The running task's context, or None outside a task."""
    global _process_context
    context = _context_var.get()
    if context is not None:
        return context
    if _process_context is None and _process_factory is not None:
        _process_context = _process_factory()
    return _process_context


def current() -> TaskContext:
    """The running task's context; raises NoCurrentTask outside a task.

    Use :func:`current_or_none` for code that also runs outside tasks.
    """
    context = current_or_none()
    if context is None:
        raise NoCurrentTask(
            "taskengine.current() was called outside a running task "
            "(use taskengine.current_or_none() for code that may run outside one)"
        )
    return context
