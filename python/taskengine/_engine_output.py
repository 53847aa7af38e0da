"""Engine methods for what running tasks produce: log messages, progress, artifacts.

:class:`TaskOutputMixin` is one of :class:`~taskengine.engine.Engine`'s bases. Besides
taskengine's own names it offers jobcontrol's, where a *build id is a task id*:
``report_build_progress``, ``get_build_progress_info``, ``iter_log_messages`` and
``prune_log_messages``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskengine import _spec
from taskengine._context import check_artifact, progress_entry
from taskengine.errors import InvalidArgument
from taskengine.task_output import ArtifactInfo, LogMessage, ProgressInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from taskengine import _core
    from taskengine.task import Task

__all__ = ["TaskOutputMixin"]

_PAGE = 1000
_Level = int | str


def _level(value: object, option: str) -> int:
    """A logging level: an int >= 0 or a name such as ``"INFO"``."""
    if isinstance(value, str):
        number = logging.getLevelName(value.upper())
        if isinstance(number, int):
            return number
        raise InvalidArgument(f"{option} {value!r} is not a logging level name")
    if not _spec.is_int(value) or value < 0:
        raise InvalidArgument(f"{option} must be a logging level (int >= 0 or name), not {value!r}")
    return value


def _date(value: object, option: str) -> int:
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{option} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"{option} must be an aware datetime (e.g. tzinfo=UTC)")
    return _spec.to_micros(value)


def _job(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"job_id must be a non-empty string, not {value!r}")
    return value


def _seconds(value: object, option: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
        raise InvalidArgument(f"{option} must be seconds >= 0 or a timedelta, not {value!r}")
    return float(seconds)


class TaskOutputMixin:
    """Reading and writing task output (mixed into :class:`~taskengine.engine.Engine`)."""

    _core: _core.Engine

    # -- log messages ---------------------------------------------------------------------

    def _log_page(self, query: dict[str, Any]) -> list[LogMessage]:
        from taskengine import _core

        rows = json.loads(_core.list_log_records(self._core, json.dumps(query)))
        return [LogMessage.from_json(row) for row in rows]

    def _log_query(
        self,
        task_id: Task | int | None,
        job_id: str | None,
        min_date: datetime | None,
        max_date: datetime | None,
        min_level: _Level | None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if task_id is not None:
            query["task_ids"] = [_spec.check_id(task_id, "task_id")]
        if job_id is not None:
            query["job_id"] = _job(job_id)
        if min_date is not None:
            query["min_date"] = _date(min_date, "min_date")
        if max_date is not None:
            query["max_date"] = _date(max_date, "max_date")
        if min_level is not None:
            query["min_level"] = _level(min_level, "min_level")
        return query

    def task_logs(
        self,
        task_id: Task | int,
        *,
        min_level: _Level | None = None,
        min_date: datetime | None = None,
        max_date: datetime | None = None,
        after_id: int | None = None,
        limit: int = _PAGE,
    ) -> list[LogMessage]:
        """Return up to ``limit`` log messages of a task, in the order they were stored.

        Filters: level at least ``min_level`` (a number or a name like ``"WARNING"``),
        ``min_date <= created_at < max_date`` (aware datetimes), and ``id > after_id`` (to
        follow a running task: pass the last id seen)."""
        query = self._log_query(task_id, None, min_date, max_date, min_level)
        if after_id is not None:
            if not _spec.is_int(after_id) or after_id < 0:
                raise InvalidArgument(f"after_id must be an integer >= 0, not {after_id!r}")
            query["after_id"] = after_id
        if not _spec.is_int(limit) or limit < 1:
            raise InvalidArgument(f"limit must be a positive integer, not {limit!r}")
        query["limit"] = limit
        return self._log_page(query)

    def iter_log_messages(
        self,
        build_id: Task | int | None = None,
        max_date: datetime | None = None,
        min_date: datetime | None = None,
        min_level: _Level | None = None,
        *,
        job_id: str | None = None,
    ) -> Iterator[LogMessage]:
        """Iterate over stored log messages, oldest first (jobcontrol's name).

        ``build_id`` is a task id; ``job_id`` takes the messages of every task of that job.
        ``min_date <= created_at < max_date``; level at least ``min_level``. Reads in
        pages, so any number of messages can be iterated over."""
        query = self._log_query(build_id, job_id, min_date, max_date, min_level)
        query["limit"] = _PAGE
        while True:
            page = self._log_page(query)
            yield from page
            if len(page) < _PAGE:
                return
            query["after_id"] = page[-1].id

    def prune_log_messages(
        self,
        job_id: str | None = None,
        build_id: Task | int | None = None,
        max_age: float | timedelta | None = None,
        level: _Level | None = None,
    ) -> int:
        """Delete log messages; return how many (jobcontrol's name and semantics).

        Only those of job ``job_id`` / task ``build_id`` when given, only those older than
        ``max_age`` seconds when given, only those with a level equal to or below ``level``
        when given. With no filter at all, every message goes."""
        from taskengine import _core

        query: dict[str, Any] = {}
        if job_id is not None:
            query["job_id"] = _job(job_id)
        if build_id is not None:
            query["task_id"] = _spec.check_id(build_id, "build_id")
        if max_age is not None:
            age = _seconds(max_age, "max_age")
            query["older_than"] = _spec.to_micros(datetime.now(UTC)) - int(age * 1e6)
        if level is not None:
            query["max_level"] = _level(level, "level")
        return _core.prune_log_records(self._core, json.dumps(query))

    # -- progress -------------------------------------------------------------------------

    def get_progress(self, task_id: Task | int) -> list[ProgressInfo]:
        """Return a task's progress groups by name (``""``, the task's own, first).

        Raises NotFound for an unknown task."""
        from taskengine import _core

        rows = json.loads(_core.get_progress(self._core, _spec.check_id(task_id, "task_id")))
        return [ProgressInfo.from_json(row) for row in rows]

    def report_build_progress(
        self,
        build_id: Task | int,
        current: int,
        total: int,
        group_name: str | Sequence[str] = "",
        status_line: str = "",
    ) -> None:
        """Report progress of task ``build_id`` from outside it (jobcontrol's name).

        Groups nest as ``"a::b"`` or ``("a", "b")``; a report replaces the group's last one.
        Raises InvalidArgument for negative numbers and NotFound for an unknown task."""
        from taskengine import _core

        tid = _spec.check_id(build_id, "build_id")
        entry = progress_entry(current, total, group_name, status_line)
        output = [{"task_id": tid, "records": [], "progress": [entry]}]
        _core.write_task_output(self._core, json.dumps(output))

    def get_build_progress_info(
        self, build_id: Task | int
    ) -> list[tuple[tuple[str, ...], int, int, str]]:
        """Return ``[(name, current, total, status_line)]`` for a task (jobcontrol's name).

        ``name`` is the group as a tuple of nesting levels, ``()`` for the task's own."""
        return [(p.name, p.current, p.total, p.status_line) for p in self.get_progress(build_id)]

    # -- artifacts ------------------------------------------------------------------------

    def list_artifacts(self, task_id: Task | int) -> list[ArtifactInfo]:
        """Return the artifacts of a task, by name. Raises NotFound for an unknown task."""
        from taskengine import _core

        rows = json.loads(_core.list_artifacts(self._core, _spec.check_id(task_id, "task_id")))
        return [ArtifactInfo.from_json(row) for row in rows]

    def read_artifact(self, task_id: Task | int, name: str) -> bytes:
        """Return the contents of a task's artifact; NotFound when there is none."""
        from taskengine import _core

        if not isinstance(name, str):
            raise InvalidArgument(f"name must be a string, not {type(name).__name__}")
        _info, content = _core.read_artifact(self._core, _spec.check_id(task_id, "task_id"), name)
        return content

    def download_artifact(
        self, task_id: Task | int, name: str, dest: str | os.PathLike[str]
    ) -> Path:
        """Write a task's artifact to ``dest`` (a file, or a directory to put ``name`` in);
        return the file's path."""
        content = self.read_artifact(task_id, name)
        target = Path(dest)
        if target.is_dir():
            target = target / Path(name).name
        target.write_bytes(content)
        return target

    def add_artifact(
        self, task_id: Task | int, path: str | os.PathLike[str], name: str | None = None
    ) -> str:
        """Store the file at ``path`` as an artifact of a task, from outside the task.

        ``name`` defaults to the file's name; one of the same name is replaced. Returns the
        name. Raises ArtifactTooLarge over the size limit, NotFound for an unknown task."""
        from taskengine import _core

        tid = _spec.check_id(task_id, "task_id")
        file, checked_name, _size = check_artifact(path, name)
        content = file.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        _core.add_artifact(self._core, tid, None, checked_name, content, digest)
        return checked_name
