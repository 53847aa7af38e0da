"""Typed task data and event reactions: the pydantic models of task classes.

As in debusine, a task class names its task data model (a :class:`BaseTaskData` subclass)
and its dynamic data model (a :class:`BaseDynamicTaskData` subclass) as its type parameters.
Unknown fields are refused, so a misspelt option is an error naming it, not a silent default.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "EVENT_NAMES",
    "ActionRecordInTaskHistory",
    "ActionRetryWithDelays",
    "ActionSendNotification",
    "BaseDynamicTaskData",
    "BaseTaskData",
    "EventAction",
    "EventName",
    "TaskTypes",
    "parse_delay",
]


class TaskTypes(StrEnum):
    """The kinds of worker a task class needs; the values are taskengine's worker types."""

    WORKER = "worker"
    """An external worker (``taskengine-worker --type worker``, the default)."""
    SERVER = "server"
    """A server-side worker (``--type server``)."""
    SIGNING = "signing"
    """A signing worker (``--type signing``)."""


class BaseTaskData(BaseModel):
    """Base of a task class's task data: what the caller passes to ``create_work_request``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BaseDynamicTaskData(BaseModel):
    """Base of a task class's dynamic data, built on the scheduler side at creation."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = None
    """What the task is about (debusine's ``subject``), shown with the task."""


EventName = Literal["on_creation", "on_unblock", "on_success", "on_failure"]
EVENT_NAMES: tuple[EventName, ...] = ("on_creation", "on_unblock", "on_success", "on_failure")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_delay(value: float | str) -> float:
    """Seconds of a delay: a number of seconds, or debusine's ``"30s"``, ``"5m"``, ``"2h"``,
    ``"1d"``, ``"1w"``. Raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"a delay must be seconds or a string like '5m', not {value!r}")
    if isinstance(value, int | float):
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"a delay must be a finite number of seconds >= 0, not {value!r}")
        return float(value)
    match = _DELAY.match(value)
    if match is None:
        raise ValueError(f"a delay must look like 30s, 5m, 2h, 1d or 1w, not {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


class ActionRecordInTaskHistory(BaseModel):
    """Append an entry (the event, and ``data``) to the task's history."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["record_in_task_history"] = "record_in_task_history"
    data: dict[str, Any] | None = None


class ActionRetryWithDelays(BaseModel):
    """On failure, retry once per delay (seconds, or ``"30s"``/``"5m"``/``"2h"``...)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["retry_with_delays"] = "retry_with_delays"
    delays: list[float | str] = Field(min_length=1)

    @field_validator("delays")
    @classmethod
    def _check_delays(cls, delays: list[float | str]) -> list[float | str]:
        for delay in delays:
            parse_delay(delay)
        return delays

    def seconds(self) -> list[float]:
        """The delays in seconds."""
        return [parse_delay(delay) for delay in self.delays]


class ActionSendNotification(BaseModel):
    """Call the notification hook registered as ``channel`` with the event and ``data``."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["send_notification"] = "send_notification"
    channel: str = Field(min_length=1)
    data: dict[str, Any] | None = None


EventAction = Annotated[
    ActionRecordInTaskHistory | ActionRetryWithDelays | ActionSendNotification,
    Field(discriminator="action"),
]
"""One event reaction; ``action`` says which."""
