"""Notification hooks: Python callables registered by name, called by ``send_notification``
event reactions.

A hook runs where its event is handled: ``on_creation`` in the process that called
``create_work_request``; ``on_unblock`` in the executor of a worker of the task's type that
runs the delivery task the store dispatched when it unblocked the task
(:mod:`taskengine.tasks._unblock`); ``on_success`` and ``on_failure`` in the executor that
ran the task. Register hooks in a module all of them import (the worker's ``--import`` or an
entry point of the ``taskengine.tasks`` group).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Notification", "NotificationHook", "get_hook", "register_notification_hook"]


@dataclass(frozen=True)
class Notification:
    """What a hook receives: the event, the task, and the reaction's ``data``."""

    event: str
    task_id: int | None
    task_name: str
    label: str
    data: dict[str, Any]


NotificationHook = Callable[[Notification], None]

_lock = threading.Lock()
_hooks: dict[str, NotificationHook] = {}


def register_notification_hook(channel: str, hook: NotificationHook) -> None:
    """Call ``hook(notification)`` for ``send_notification`` reactions naming ``channel``."""
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"a notification channel must be a non-empty string, not {channel!r}")
    if not callable(hook):
        raise TypeError(f"a notification hook must be callable, not {type(hook).__name__}")
    with _lock:
        _hooks[channel] = hook


def get_hook(channel: str) -> NotificationHook | None:
    """The hook registered for ``channel``, or None."""
    with _lock:
        return _hooks.get(channel)
