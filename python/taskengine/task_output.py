"""What running tasks produce, as read back from the store: log messages, progress, artifacts.

This module imports nothing from the native core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskengine.task import from_micros

__all__ = ["ArtifactInfo", "LogMessage", "ProgressInfo"]


def _moment(value: Any) -> datetime:
    moment = from_micros(int(value))
    assert moment is not None
    return moment


@dataclass(frozen=True)
class LogMessage:
    """One stored log record of a task.

    ``extra`` holds what the record carried besides its message: ``file``, ``lineno``,
    ``function``, and ``exception`` (type, message and structured traceback) when it was
    logged with one."""

    id: int
    task_id: int
    created_at: datetime
    stored_at: datetime
    level: int
    logger: str
    message: str
    extra: dict[str, Any] | None

    @property
    def level_name(self) -> str:
        """``"INFO"``, ``"WARNING"``... (``"Level 25"`` for a level without a name)."""
        return logging.getLevelName(self.level)

    @property
    def build_id(self) -> int:
        """The task's id, in jobcontrol's words."""
        return self.task_id

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> LogMessage:
        """Build one from the core's JSON."""
        return cls(
            id=int(row["id"]),
            task_id=int(row["task_id"]),
            created_at=_moment(row["created_at"]),
            stored_at=_moment(row["stored_at"]),
            level=int(row["level"]),
            logger=str(row["logger"]),
            message=str(row["message"]),
            extra=row.get("extra"),
        )


@dataclass(frozen=True)
class ProgressInfo:
    """The latest progress report of one group of a task (``""`` is the task's own)."""

    group_name: str
    current: int
    total: int
    status_line: str
    updated_at: datetime

    @property
    def name(self) -> tuple[str, ...]:
        """The group as a tuple of nesting levels: ``()`` for the task's own, ``("a", "b")``
        for ``"a::b"``."""
        return tuple(self.group_name.split("::")) if self.group_name else ()

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ProgressInfo:
        """Build one from the core's JSON."""
        return cls(
            group_name=str(row["group_name"]),
            current=int(row["current"]),
            total=int(row["total"]),
            status_line=str(row["status_line"]),
            updated_at=_moment(row["updated_at"]),
        )


@dataclass(frozen=True)
class ArtifactInfo:
    """A file stored with a task (its contents come from ``engine.read_artifact``)."""

    id: int
    task_id: int
    name: str
    size: int
    sha256: str
    created_at: datetime

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ArtifactInfo:
        """Build one from the core's JSON."""
        return cls(
            id=int(row["id"]),
            task_id=int(row["task_id"]),
            name=str(row["name"]),
            size=int(row["size"]),
            sha256=str(row["sha256"]),
            created_at=_moment(row["created_at"]),
        )
