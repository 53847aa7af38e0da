"""``Engine.create_work_request``: queuing a task class (debusine's work request).

The core drives the class through :class:`_ClassHooks`, a subclass of the core's
``TaskClass`` interface (a pybind11 trampoline): in one call it validates the data, builds
the dynamic data, reads the event reactions, checks ``can_run_on`` against the online
workers and stores the task. See docs/task-classes.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from taskengine import _spec
from taskengine._native import _core
from taskengine.errors import TaskConfigError
from taskengine.task import Task, TaskGroup
from taskengine.tasks import _registry
from taskengine.tasks._base import BaseTask, TaskDatabase
from taskengine.tasks._models import EventAction, TaskTypes
from taskengine.tasks._reactions import apply_reactions, collect_reactions, parse_reactions

if TYPE_CHECKING:
    from taskengine.engine import Engine

__all__ = ["TaskClassesMixin"]

_log = logging.getLogger("taskengine.tasks")


def _dumps(value: object) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class _ClassHooks(_core.TaskClass):
    """One task class, for one work request, as the core's TaskClass interface."""

    def __init__(self, cls: type[BaseTask[Any, Any]], task: BaseTask[Any, Any], engine: Engine):
        _core.TaskClass.__init__(self)  # pybind11: the C++ base must be initialized explicitly
        self._cls = cls
        self._task = task
        self._engine = engine

    def name(self) -> str:
        return self._cls.name

    def task_type(self) -> str:
        return TaskTypes(self._cls.TASK_TYPE).value

    def task_version(self) -> int | None:
        return self._cls.TASK_VERSION

    def _instance(self, task_data_json: str) -> BaseTask[Any, Any]:
        data = json.loads(task_data_json)
        if data == self._task.data.model_dump(mode="json"):
            return self._task
        return self._cls(data, None)

    def validate_data(self, task_data_json: str) -> str:
        task = self._instance(task_data_json)
        return _dumps(task.data.model_dump(mode="json"))

    def build_dynamic_data(self, task_data_json: str) -> str:
        task = self._instance(task_data_json)
        dynamic = task.compute_dynamic_data(TaskDatabase(self._engine))
        task.dynamic_data = dynamic
        return _dumps(dynamic.model_dump(mode="json"))

    def can_run_on(self, task_data_json: str, worker_metadata_json: str) -> bool:
        metadata = json.loads(worker_metadata_json)
        return bool(self._instance(task_data_json).can_run_on(metadata))

    def event_reactions(self, task_data_json: str) -> str:
        reactions = collect_reactions(self._instance(task_data_json))
        for action in reactions["on_failure"]:  # the core takes delays in seconds
            if action["action"] == "retry_with_delays":
                action["delays"] = [float(d) for d in _seconds(action["delays"])]
        return _dumps(reactions)


def _seconds(delays: list[Any]) -> list[float]:
    from taskengine.tasks._models import parse_delay

    return [parse_delay(delay) for delay in delays]


class TaskClassesMixin:
    """The task-class methods of :class:`taskengine.Engine`."""

    _core: _core.Engine

    def create_work_request(
        self,
        task_name: str,
        task_data: dict[str, Any],
        task_type: TaskTypes | str = TaskTypes.WORKER,
        *,
        exclusive_resources: Iterable[str] = (),
        shared_resources: Iterable[str] = (),
        task_group: TaskGroup | int | None = None,
        depends_on: Iterable[Task | int] = (),
        priority: int = 0,
        not_before: datetime | timedelta | float | None = None,
        timeout: float | timedelta | None = None,
        retries: int | list[float] | tuple[float, ...] | _spec.Backoff = 0,
        retry_backoff: float | None = None,
        allow_failure: bool = False,
        unique_key: str | None = None,
    ) -> Task:
        """Queue a task of the task class registered as ``task_name`` (case-insensitive) of
        ``task_type``, with ``task_data``; return it.

        In this process: the data is validated with the class's model (TaskConfigError
        naming the field, nothing stored), the dynamic data built
        (``compute_dynamic_data``), the event reactions read (``on_creation`` ones run now,
        ``retry_with_delays`` becomes the retry policy, ``on_unblock`` ones are left to the
        store, which applies them when it unblocks the task), and the online workers whose
        metadata ``can_run_on`` refuses are excluded. The task waits for a worker of the
        class's TASK_TYPE reporting its TASK_VERSION. The other options are
        :meth:`Engine.dispatch`'s.
        """
        try:
            kind = TaskTypes(task_type)
        except ValueError:
            raise TaskConfigError(
                f"task_type must be one of {', '.join(t.value for t in TaskTypes)}, "
                f"not {task_type!r}"
            ) from None
        cls = _registry.lookup(kind, task_name)
        task = cls(task_data, None)  # validates: TaskConfigError naming the field
        options = _spec.spec_options(
            exclusive_resources=exclusive_resources,
            shared_resources=shared_resources,
            task_group=task_group,
            depends_on=depends_on,
            immediate=False,
            deferred=True,
            versions=None,
            priority=priority,
            not_before=not_before,
            timeout=timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            allow_failure=allow_failure,
            unique_key=unique_key,
            worker_type=kind.value,
        )
        engine: Engine = self  # type: ignore[assignment]
        hooks = _ClassHooks(cls, task, engine)
        data_json = _dumps(task.data.model_dump(mode="json"))
        spec = {"kind": "task", "name": cls.name, **options}
        architecture = task.host_architecture()
        if architecture is not None:  # matched against the worker's system:architectures
            spec["requirements"] = {**spec["requirements"], "architecture": architecture}
        task_id = _core.create_work_request(self._core, hooks, data_json, _dumps(spec))
        created = Task(engine, task_id)
        self._notify_creation(created, task)
        return created

    def _notify_creation(self, created: Task, task: BaseTask[Any, Any]) -> None:
        actions = parse_reactions(created.payload.get("event_reactions"), "on_creation")
        notifications: list[EventAction] = [
            action for action in actions if action.action == "send_notification"
        ]
        if not notifications:
            return
        try:
            label = task.get_label()
        except Exception:
            label = task.name
        for entry in apply_reactions(
            notifications, "on_creation", task_id=created.id, task_name=task.name, label=label
        ):
            _log.warning("task %s on_creation: %s", created.id, entry.get("error"))
