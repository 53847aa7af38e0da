"""``Task``, ``TaskGroup`` and ``WorkerRecord``: Python views of the store's rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from taskengine._spec import FINAL_STATES
from taskengine._traceback import ErrorInfo

if TYPE_CHECKING:
    from taskengine.engine import Engine
    from taskengine.task_output import ArtifactInfo, LogMessage, ProgressInfo

__all__ = ["Task", "TaskGroup", "WorkerRecord", "from_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WAIT_FIRST_DELAY = 0.001
_WAIT_MAX_DELAY = 0.05


def from_micros(value: int | None) -> datetime | None:
    """Return microseconds since the Unix epoch as an aware UTC datetime (None stays None)."""
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


class Task:
    """A view of one task row.

    The row is read from the store on first access to anything but :attr:`id` and kept until
    :meth:`refresh` (or :meth:`wait`, :meth:`cancel`) reads it again: a ``Task`` never changes
    behind your back. Tasks returned by ``dispatch`` are not read until you look at them, so
    dispatching many costs no extra round trips.
    """

    __slots__ = ("_data", "_engine", "_id")

    def __init__(self, engine: Engine, task_id: int, data: dict[str, Any] | None = None) -> None:
        """Make a view of task ``task_id`` in ``engine``, from ``data`` if already read."""
        self._engine = engine
        self._id = task_id
        self._data = data

    @property
    def engine(self) -> Engine:
        """The engine the task lives in."""
        return self._engine

    @property
    def id(self) -> int:
        """The task's id."""
        return self._id

    def _row(self) -> dict[str, Any]:
        if self._data is None:
            self._data = self._engine._task_data(self._id)
        return self._data

    def as_dict(self) -> dict[str, Any]:
        """Return a copy of the row as the core stores it (timestamps in microseconds)."""
        return dict(self._row())

    @property
    def state(self) -> str:
        """``blocked``, ``waiting``, ``running``, ``completed``, ``failed``, ``skipped``,
        ``canceling`` or ``canceled``."""
        return cast(str, self._row()["state"])

    @property
    def done(self) -> bool:
        """Whether the task reached a final state (completed, failed, skipped, canceled)."""
        return self.state in FINAL_STATES

    @property
    def kind(self) -> str:
        """``function``, ``task`` or ``command``."""
        return cast(str, self._row()["kind"])

    @property
    def name(self) -> str:
        """The function's ``module:function``, the task class's name or the command's argv[0]."""
        return cast(str, self._row()["name"])

    @property
    def payload(self) -> dict[str, Any]:
        """What the task runs: function, args and kwargs; argv, env and cwd; or task data."""
        return cast(dict[str, Any], self._row().get("payload") or {})

    @property
    def result(self) -> Any:
        """The JSON value the task returned (None until it completed)."""
        return self._row().get("result")

    @property
    def history(self) -> list[dict[str, Any]]:
        """Entries the task's event reactions recorded (task classes), oldest first."""
        return cast(list[dict[str, Any]], self._row().get("history") or [])

    @property
    def error(self) -> ErrorInfo | None:
        """``{"type", "message", "traceback": [frames]}`` when the attempt failed, else None."""
        return cast("ErrorInfo | None", self._row().get("error"))

    @property
    def reason(self) -> str | None:
        """Why the task waits, failed or was canceled, when the engine knows."""
        return cast("str | None", self._row().get("reason"))

    @property
    def created_at(self) -> datetime:
        """When the task was dispatched (UTC)."""
        created = from_micros(self._row()["created_at"])
        assert created is not None
        return created

    @property
    def started_at(self) -> datetime | None:
        """When the latest attempt started (UTC), or None."""
        return from_micros(self._row().get("started_at"))

    @property
    def finished_at(self) -> datetime | None:
        """When the task reached its final state (UTC), or None."""
        return from_micros(self._row().get("finished_at"))

    @property
    def duration(self) -> timedelta | None:
        """``finished_at - started_at`` once both are known, else None."""
        started, finished = self.started_at, self.finished_at
        return finished - started if started is not None and finished is not None else None

    @property
    def worker(self) -> str | None:
        """The name of the worker that ran (or runs) the latest attempt."""
        return cast("str | None", self._row().get("worker"))

    @property
    def attempt(self) -> int:
        """The latest attempt's number (0 before the first one started)."""
        return cast(int, self._row().get("attempt") or 0)

    @property
    def task_group(self) -> int | None:
        """The id of the task's group, or None."""
        return cast("int | None", self._row().get("task_group"))

    @property
    def depends_on(self) -> list[int]:
        """The ids of the tasks this one waits for."""
        return list(self._row().get("depends_on") or [])

    @property
    def priority(self) -> int:
        """Higher runs first among waiting tasks."""
        return cast(int, self._row().get("priority") or 0)

    def refresh(self) -> Task:
        """Read the row again; return ``self``. Raises NotFound if the task is gone."""
        self._data = self._engine._task_data(self._id)
        return self

    def wait(self, timeout: float | None = None) -> Task:
        """Wait until the task is in a final state; return ``self``, refreshed.

        Polls the store, backing off from 1 ms to 50 ms. Raises the builtin
        :class:`TimeoutError` when ``timeout`` seconds pass first (``None``: wait forever).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _WAIT_FIRST_DELAY
        while True:
            self.refresh()
            if self.done:
                return self
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"task {self._id} is still {self.state} after {timeout} seconds"
                    )
                time.sleep(min(delay, left))
            else:
                time.sleep(delay)
            delay = min(delay * 2, _WAIT_MAX_DELAY)

    def cancel(self) -> Task:
        """Cancel the task (see :meth:`Engine.cancel_task`); return ``self``, refreshed."""
        self._engine.cancel_task(self._id)
        return self.refresh()

    # What the task produced (read now, from the store): see docs/running-tasks.md.

    def logs(self, **filters: Any) -> list[LogMessage]:
        """Its log messages: ``engine.task_logs(self, **filters)``."""
        return self._engine.task_logs(self, **filters)

    @property
    def progress(self) -> list[ProgressInfo]:
        """Its progress groups: ``engine.get_progress(self)``."""
        return self._engine.get_progress(self)

    @property
    def artifacts(self) -> list[ArtifactInfo]:
        """Its artifacts: ``engine.list_artifacts(self)``."""
        return self._engine.list_artifacts(self)

    def __eq__(self, other: object) -> bool:
        """Tasks are equal when they are the same task of the same engine."""
        if not isinstance(other, Task):
            return NotImplemented
        return self._id == other._id and self._engine is other._engine

    def __hash__(self) -> int:
        """Hash by id."""
        return hash(self._id)

    def __repr__(self) -> str:
        """``<Task 12 function 'mod:fn' completed>`` (the state as last read)."""
        if self._data is None:
            return f"<Task {self._id} (not read yet)>"
        return f"<Task {self._id} {self._data.get('kind')} {self._data.get('name')!r} " + (
            f"{self._data.get('state')}>"
        )


@dataclass(frozen=True)
class TaskGroup:
    """A group of tasks, canceled together with :meth:`Engine.cancel_task_group`."""

    id: int
    description: str = ""


@dataclass(frozen=True)
class WorkerRecord:
    """A worker as registered in the store."""

    id: int
    name: str
    worker_type: str
    hostname: str
    pid: int
    metadata: dict[str, Any]
    started_at: datetime
    last_heartbeat: datetime
    online: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerRecord:
        """Build a record from the core's JSON object."""
        started = from_micros(data["started_at"])
        heartbeat = from_micros(data["last_heartbeat"])
        assert started is not None and heartbeat is not None
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            worker_type=str(data["worker_type"]),
            hostname=str(data["hostname"]),
            pid=int(data["pid"]),
            metadata=dict(data.get("metadata") or {}),
            started_at=started,
            last_heartbeat=heartbeat,
            online=bool(data["online"]),
        )
