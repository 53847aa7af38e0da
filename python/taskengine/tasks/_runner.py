"""The worker side of task classes: what the native worker asks its Python executor.

The executor runs ``module:function`` requests; for a task of kind ``task`` the worker sends
``taskengine.tasks._runner:run_work_request`` with the task's id, attempt and payload, and
reads back an outcome object (never an exception, except a cancel):

``{"outcome": "completed" | "failed" | "declined", "result", "error", "reason", "history"}``

- ``declined``: the class's ``can_run_on`` refused this worker's metadata; the worker hands
  the task back without counting the attempt and never claims it again.
- ``history``: entries the event reactions recorded, written with the result.

At start the worker also calls :func:`analyze_worker` once and adds what it returns to the
metadata it registers with.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from taskengine._traceback import error_info, serialize_exception
from taskengine.errors import TaskConfigError
from taskengine.tasks import _registry
from taskengine.tasks._base import BaseTask
from taskengine.tasks._models import EventName, TaskTypes
from taskengine.tasks._reactions import apply_reactions, parse_reactions

__all__ = ["METADATA_ENV", "analyze_worker", "run_work_request"]

METADATA_ENV = "TASKENGINE_WORKER_METADATA"
"""The environment variable the worker passes its registered metadata in (JSON)."""


def analyze_worker() -> dict[str, Any]:
    """:meth:`BaseTask.analyze_worker_all_tasks`, after loading the entry points."""
    _registry.load_entry_points()
    return BaseTask.analyze_worker_all_tasks()


@cache
def _worker_metadata() -> dict[str, Any]:
    text = os.environ.get(METADATA_ENV)
    if not text:
        return {}
    data = json.loads(text)
    return data if isinstance(data, dict) else {}


def _outcome(
    outcome: str,
    *,
    result: Any = None,
    error: Any = None,
    reason: str | None = None,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "result": result,
        "error": error,
        "reason": reason,
        "history": history or [],
    }


def run_work_request(task_id: int, attempt: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Instantiate the task's class with its stored data and execute it (see the module)."""
    name = str(payload.get("task_name", ""))
    try:
        cls = _registry.lookup(TaskTypes(payload.get("task_type", "worker")), name)
        task = cls(payload.get("task_data") or {}, payload.get("dynamic_data"))
    except (TaskConfigError, ValueError) as exc:
        return _outcome(
            "failed",
            error=error_info("TaskConfigError", str(exc)),
            reason=f"raised TaskConfigError: {exc}",
        )
    task.work_request_id = task_id
    metadata = _worker_metadata()
    task.worker_metadata = metadata
    if metadata and not task.can_run_on(metadata):
        worker = metadata.get("system:worker_name") or os.environ.get("TASKENGINE_WORKER", "")
        return _outcome("declined", reason=f"can_run_on of {name} refused worker {worker}")

    reactions = payload.get("event_reactions")
    label = _label(task)
    error: Any = None
    try:
        success = task.execute()
    except Exception as exc:
        success = False
        error = serialize_exception(exc, skip=1)
    event: EventName = "on_success" if success else "on_failure"
    # on_unblock is not handled here: the store applies it when it unblocks the task
    # (see taskengine.tasks._unblock).
    history = apply_reactions(
        parse_reactions(reactions, event), event, task_id=task_id, task_name=name, label=label
    )
    if success:
        return _outcome("completed", result={"success": True, "label": label}, history=history)
    if error is None:
        error = error_info("TaskFailed", f"{label}: the task reported failure")
        reason = "task reported failure"
    else:
        reason = f"raised {error['type']}: {error['message']}"
    return _outcome(
        "failed",
        result={"success": False, "label": label},
        error=error,
        reason=reason,
        history=history,
    )


def _label(task: BaseTask[Any, Any]) -> str:
    try:
        return str(task.get_label())
    except Exception:
        return task.name
