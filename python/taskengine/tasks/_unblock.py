"""Delivering a task class's ``on_unblock`` notifications (``send_notification`` reactions).

The store unblocks a task (blocked -> waiting, because its dependencies finished) inside its
own transaction, where no Python runs. For a task whose on_unblock reactions send
notifications, it dispatches in that same transaction a function task,
``taskengine.tasks._unblock:deliver_unblock(task_id=...)``, on the task's worker type. The
delivery is then a task like any other: it survives crashes (an attempt lost with its worker or
executor is retried) and starts as soon as a worker of that type has a free slot, whatever the
task itself still waits for (resources, a capable worker, its ``not_before``). It exists only
if the task was unblocked, so a task skipped or canceled while blocked never notifies.

A hook that is missing or raises is recorded in the task's own history as
``{"event": "on_unblock", "error", "at"}``; the delivery task still completes, so a
notification that went out is not sent again.
"""

from __future__ import annotations

import json
from typing import Any

from taskengine.engine import connect
from taskengine.errors import NotFound, TaskEngineError
from taskengine.tasks import _registry
from taskengine.tasks._models import EventAction, TaskTypes
from taskengine.tasks._reactions import apply_reactions, parse_reactions

__all__ = ["deliver_unblock"]


def deliver_unblock(task_id: int) -> dict[str, Any]:
    """Call the hooks of task ``task_id``'s on_unblock ``send_notification`` reactions.

    Runs in a worker's executor, which has the store's URL in ``$TASKENGINE_URL``. Returns
    how many notifications it sent and the errors it recorded."""
    _registry.load_entry_points()  # hooks may live in an entry point's module
    engine = connect()
    try:
        task = engine.get_task(task_id)
    except NotFound:
        return {"task_id": task_id, "sent": 0, "errors": [f"task {task_id} does not exist"]}
    payload = task.payload if isinstance(task.payload, dict) else {}
    actions: list[EventAction] = [
        action
        for action in parse_reactions(payload.get("event_reactions"), "on_unblock")
        if action.action == "send_notification"
    ]
    name = str(payload.get("task_name") or task.name)
    errors = apply_reactions(
        actions, "on_unblock", task_id=task_id, task_name=name, label=_label(payload, name)
    )
    result: dict[str, Any] = {
        "task_id": task_id,
        "sent": len(actions) - len(errors),
        "errors": [entry["error"] for entry in errors],
    }
    if errors:
        try:
            engine._core.append_history(task_id, json.dumps(errors))
        except TaskEngineError as exc:
            # The notifications went out: raising would retry, and send them again.
            result["history_error"] = f"{type(exc).__name__}: {exc}"
    return result


def _label(payload: dict[str, Any], name: str) -> str:
    """The task's label, as its class computes it; its name if the class is not here."""
    try:
        cls = _registry.lookup(TaskTypes(payload.get("task_type", "worker")), name)
        return str(cls(payload.get("task_data") or {}, payload.get("dynamic_data")).get_label())
    except Exception:
        return name
