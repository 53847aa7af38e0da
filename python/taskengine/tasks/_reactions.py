"""Applying a task class's event reactions (debusine's ``event_reactions``).

Reactions are asked of the class once, at creation, and stored with the task
(``payload["event_reactions"]``), so every process handles the ones decided then:

- ``record_in_task_history``: an entry ``{"event", "data", "at"}`` in the task's history,
  written with the creation (on_creation), by the store in the transaction that unblocks
  the task (on_unblock), or with the attempt's result (on_success, on_failure);
- ``retry_with_delays`` (on_failure): becomes the task's retry policy at creation;
- ``send_notification``: calls the hook registered for its channel (see
  :mod:`taskengine.tasks._notifications`; on_unblock ones from the delivery task of
  :mod:`taskengine.tasks._unblock`); a missing or failing hook is recorded in the history
  rather than failing the task.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import TypeAdapter, ValidationError

from taskengine._traceback import safe_repr
from taskengine.errors import TaskConfigError
from taskengine.tasks._models import EVENT_NAMES, EventAction, EventName
from taskengine.tasks._notifications import Notification, get_hook
from taskengine.tasks._validation import validation_message

__all__ = ["apply_reactions", "collect_reactions", "parse_reactions"]

_actions: TypeAdapter[list[EventAction]] = TypeAdapter(list[EventAction])


def collect_reactions(task: Any) -> dict[str, list[dict[str, Any]]]:
    """Every event's reactions of ``task`` as JSON, checked."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in EVENT_NAMES:
        try:
            actions = _actions.validate_python(task.get_event_reactions(event))
        except ValidationError as exc:
            raise TaskConfigError(
                f"{task.name}: invalid {event} reactions: {validation_message(exc)}", exc
            ) from None
        if event != "on_failure" and any(a.action == "retry_with_delays" for a in actions):
            raise TaskConfigError(f"{task.name}: retry_with_delays only applies to on_failure")
        out[event] = [action.model_dump(mode="json") for action in actions]
    return out


def parse_reactions(stored: object, event: EventName) -> list[EventAction]:
    """The reactions to ``event`` stored with a task."""
    if not isinstance(stored, dict):
        return []
    return _actions.validate_python(stored.get(event) or [])


def apply_reactions(
    actions: list[EventAction],
    event: str,
    *,
    task_id: int | None,
    task_name: str,
    label: str,
) -> list[dict[str, Any]]:
    """Run the notifications among ``actions``; return the history entries to record."""
    history: list[dict[str, Any]] = []
    at = int(time.time() * 1_000_000)
    for action in actions:
        if action.action == "record_in_task_history":
            history.append({"event": event, "data": action.data or {}, "at": at})
        elif action.action == "send_notification":
            hook = get_hook(action.channel)
            if hook is None:
                history.append(
                    {
                        "event": event,
                        "at": at,
                        "error": f"no notification hook registered for {action.channel!r}",
                    }
                )
                continue
            try:
                hook(Notification(event, task_id, task_name, label, dict(action.data or {})))
            except Exception as exc:
                history.append(
                    {
                        "event": event,
                        "at": at,
                        "error": f"notification hook {action.channel!r} raised "
                        f"{type(exc).__name__}: {safe_repr(exc)}",
                    }
                )
    return history
