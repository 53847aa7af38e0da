"""The running task's context (what ``taskengine.current()`` returns) and where its output goes.

A :class:`TaskContext` is what code inside a running function task sees: the task's id and
attempt, a :class:`logging.Logger` whose records are stored with the task, progress
reports, an ``aborted`` flag, a fresh working directory and artifacts. Its output goes to an
:class:`OutputSink`: the native worker's executor sends it over the protocol pipe
(:mod:`taskengine._executor_context`), the in-process immediate worker writes it to the store
(:mod:`taskengine._immediate`). Both batch, so a task that logs a lot costs few writes.

This module imports nothing from the native core, so the executor can use it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from taskengine._traceback import serialize_exception
from taskengine.errors import ArtifactTooLarge, InvalidArgument

__all__ = [
    "FLUSH_INTERVAL",
    "MAX_ARTIFACT_BYTES",
    "MAX_BATCH",
    "BatchingSink",
    "OutputSink",
    "TaskContext",
    "TaskLogHandler",
    "check_artifact",
    "group_name",
    "progress_entry",
    "record_to_json",
]

MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
"""The largest artifact the store accepts (the core's ``kMaxArtifactBytes``)."""

FLUSH_INTERVAL = 0.15
"""Seconds a log record or progress report waits at most before it is sent on."""

MAX_BATCH = 500
"""Records sent in one batch at most; a full batch is sent at once."""

LOGGER_NAME = "taskengine.task"


class OutputSink(Protocol):
    """Where a task's log records, progress and artifacts go."""

    def add_record(self, record: dict[str, Any]) -> None:
        """Take one log record (see :func:`record_to_json`)."""

    def set_progress(self, entry: dict[str, Any]) -> None:
        """Take one progress report (see :func:`progress_entry`)."""

    def add_artifact(self, path: Path, name: str, size: int) -> None:
        """Store the file at ``path`` as artifact ``name`` (checked: a file of ``size``)."""

    def flush(self) -> None:
        """Send on everything taken so far."""

    def close(self) -> None:
        """Send on what is left; nothing is taken afterwards."""


def record_to_json(record: logging.LogRecord) -> dict[str, Any]:
    """A log record as the store keeps it: time, level, logger, message and extras."""
    extra: dict[str, Any] = {"file": record.pathname, "lineno": record.lineno}
    if record.funcName:
        extra["function"] = record.funcName
    if record.exc_info and record.exc_info[1] is not None:
        extra["exception"] = serialize_exception(record.exc_info[1])
    if record.stack_info:
        extra["stack"] = record.stack_info
    return {
        "created_at": int(record.created * 1_000_000),
        "level": record.levelno,
        "logger": record.name,
        "message": record.getMessage(),
        "extra": extra,
    }


def group_name(group: str | Sequence[str]) -> str:
    """A progress group as stored: ``"a::b"`` from ``"a::b"`` or ``("a", "b")``."""
    if isinstance(group, str):
        return group
    if isinstance(group, Sequence) and all(isinstance(part, str) for part in group):
        return "::".join(group)
    raise InvalidArgument(
        f"group_name must be a string or a tuple of strings, not {type(group).__name__}"
    )


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, not {type(value).__name__}")
    if value < 0:
        raise InvalidArgument(f"{name} must not be negative (got {value})")
    return value


def progress_entry(
    current: int, total: int, group: str | Sequence[str] = "", status_line: str = ""
) -> dict[str, Any]:
    """A checked progress report; InvalidArgument names what is wrong."""
    if not isinstance(status_line, str):
        raise InvalidArgument(f"status_line must be a string, not {type(status_line).__name__}")
    return {
        "group_name": group_name(group),
        "current": _count(current, "current"),
        "total": _count(total, "total"),
        "status_line": status_line,
    }


def check_artifact(
    path: str | os.PathLike[str], name: str | None, base: Path | None = None
) -> tuple[Path, str, int]:
    """Check a file to store as an artifact; return its path, name and size.

    A relative ``path`` is taken relative to ``base`` when given. Raises InvalidArgument for a
    missing file or a bad name and ArtifactTooLarge for a file over
    :data:`MAX_ARTIFACT_BYTES`.
    """
    file = Path(path)
    if base is not None and not file.is_absolute():
        file = base / file
    if not file.is_file():
        raise InvalidArgument(f"artifact {str(file)!r} is not a file")
    if name is None:
        name = file.name
    if not isinstance(name, str) or not name or "\0" in name or len(name) > 1024:
        raise InvalidArgument(f"bad artifact name {name!r}: a non-empty string is needed")
    size = file.stat().st_size
    if size > MAX_ARTIFACT_BYTES:
        raise ArtifactTooLarge(
            f"artifact {name!r} is {size} bytes; the limit is {MAX_ARTIFACT_BYTES} bytes"
        )
    return file, name, size


class TaskLogHandler(logging.Handler):
    """Hands log records to a task's sink. Attach it to other loggers to store theirs too."""

    def __init__(self, sink: OutputSink) -> None:
        """Send records to ``sink``."""
        super().__init__(logging.NOTSET)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        """Pass ``record`` on as JSON."""
        try:
            self._sink.add_record(record_to_json(record))
        except Exception:
            self.handleError(record)


class BatchingSink:
    """Collects records and progress and hands them to ``write`` in batches.

    A batch goes out when it is full (:data:`MAX_BATCH` records), when its oldest entry has
    waited :data:`FLUSH_INTERVAL`, and on :meth:`flush`. With ``timer`` a background timer
    sends a batch that nothing else would (a task that logs once, then computes for an hour);
    without it (the caller's connection is not thread-safe) only the next entry or
    :meth:`flush` does. Progress is coalesced: the latest report per group.
    """

    def __init__(
        self,
        write: Callable[[list[dict[str, Any]], list[dict[str, Any]]], None],
        *,
        timer: bool,
    ) -> None:
        """Send batches to ``write(records, progress)``."""
        self._write = write
        self._use_timer = timer
        self._lock = threading.RLock()
        self._records: list[dict[str, Any]] = []
        self._progress: dict[str, dict[str, Any]] = {}
        self._since = 0.0
        self._timer: threading.Timer | None = None
        self._closed = False

    def add_record(self, record: dict[str, Any]) -> None:
        """Buffer one log record."""
        with self._lock:
            self._take(lambda: self._records.append(record))

    def set_progress(self, entry: dict[str, Any]) -> None:
        """Buffer one progress report (replacing an unsent one of the same group)."""
        with self._lock:
            self._take(lambda: self._progress.__setitem__(entry["group_name"], entry))

    def _take(self, put: Callable[[], None]) -> None:
        if self._closed:  # the task ended: a handler left on some logger sends nothing
            return
        now = time.monotonic()
        if not self._records and not self._progress:
            self._since = now
        put()
        if len(self._records) >= MAX_BATCH or now - self._since >= FLUSH_INTERVAL:
            self.flush()
        elif self._use_timer and self._timer is None and not self._closed:
            self._timer = threading.Timer(FLUSH_INTERVAL, self.flush)
            self._timer.daemon = True
            self._timer.start()

    def flush(self) -> None:
        """Send everything buffered now."""
        with self._lock:
            if self._timer is not None and self._timer is not threading.current_thread():
                self._timer.cancel()
            self._timer = None
            if not self._records and not self._progress:
                return
            records, self._records = self._records, []
            progress, self._progress = list(self._progress.values()), {}
            self._write(records, progress)

    def close(self) -> None:
        """Send what is left; nothing is sent afterwards."""
        with self._lock:
            self.flush()
            self._closed = True


class TaskContext:
    """The running task, as ``taskengine.current()`` returns it."""

    def __init__(self, task_id: int, attempt: int, workdir: Path, sink: OutputSink) -> None:
        """A context for attempt ``attempt`` of task ``task_id``."""
        self._id = task_id
        self._attempt = attempt
        self._workdir = workdir
        self._sink = sink
        self._aborted = False
        self._handler = TaskLogHandler(sink)
        self._logger = logging.Logger(LOGGER_NAME, logging.DEBUG)
        self._logger.addHandler(self._handler)

    def __repr__(self) -> str:
        """``<TaskContext task 7 attempt 1>``."""
        return f"<TaskContext task {self._id} attempt {self._attempt}>"

    @property
    def id(self) -> int:
        """The task's id."""
        return self._id

    @property
    def attempt(self) -> int:
        """Which try this is: 1 for the first."""
        return self._attempt

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records (all levels) are stored with the task."""
        return self._logger

    @property
    def log_handler(self) -> logging.Handler:
        """The handler behind :attr:`logger`; add it to other loggers to store theirs too."""
        return self._handler

    @property
    def workdir(self) -> Path:
        """A fresh directory for this attempt, its working directory; removed afterwards."""
        return self._workdir

    @property
    def aborted(self) -> bool:
        """True once the task was asked to stop (canceled or timed out)."""
        return self._aborted

    def abort(self) -> None:
        """Mark the task aborted (the executor does this when asked to stop it)."""
        self._aborted = True

    def report_progress(
        self,
        current: int,
        total: int,
        group_name: str | Sequence[str] = "",
        status_line: str = "",
    ) -> None:
        """Report ``current`` of ``total`` steps done, for the task or one progress group.

        Groups nest: ``"download::file a"`` or ``("download", "file a")``. A report replaces
        the group's previous one. Negative numbers raise InvalidArgument.
        """
        self._sink.set_progress(progress_entry(current, total, group_name, status_line))

    def add_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Store the file at ``path`` (relative to :attr:`workdir`) as an artifact of the task.

        ``name`` defaults to the file's name; one of the same name is replaced. The file is
        copied at once, so it may change or go afterwards. Returns the name. Raises
        InvalidArgument for a missing file and ArtifactTooLarge over
        :data:`MAX_ARTIFACT_BYTES`.
        """
        file, checked_name, size = check_artifact(path, name, self._workdir)
        self._sink.flush()  # records logged before it stay before it
        self._sink.add_artifact(file, checked_name, size)
        return checked_name

    def flush(self) -> None:
        """Send buffered log records and progress on now (done anyway when the task ends)."""
        self._sink.flush()

    def close(self) -> None:
        """The task ended: send what is left; later output is not sent."""
        self._sink.close()
