"""The executor's side of ``taskengine.current()``: working directories and the output pipe.

Each task attempt starts in an empty working directory under the executor's own temporary
directory, as its cwd; whatever it leaves there is removed when it ends. The directory's
path stays the same from task to task: creating and removing a directory per task costs
milliseconds of I/O wait on some file systems (ext4 mounted with ``discard``), emptying one
only when a task left something costs nothing for the tasks that did not. Log records and progress
go to the worker as protocol lines (``{"id": 7, "records": [...], "progress": [...]}``),
batched by :class:`~taskengine._context.BatchingSink`; an artifact is copied to a staging
file the worker reads, stores and removes (``{"id": 7, "artifacts": [{"name", "path",
"sha256"}]}``), so it may change or go once ``add_artifact`` returns.

Lines may come from a timer thread as well as the task's, so each is written whole under a
lock, with SIGTERM held off meanwhile: a cancel must not cut a line in half.

This module imports nothing from the native core.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskengine._context import BatchingSink, TaskContext, activate_process

__all__ = ["TaskRun"]

_write_lock = threading.Lock()
_base: Path | None = None
_home = os.getcwd()


def _base_dir() -> Path:
    """The executor's own temporary directory (created on first use, removed at exit)."""
    global _base
    if _base is None:
        _base = Path(tempfile.mkdtemp(prefix="taskengine-executor-"))
        (_base / "staged").mkdir()
        (_base / "work").mkdir()
        atexit.register(shutil.rmtree, _base, True)
    return _base


_workdir_path: Path | None = None
_workdir_text = ""


def _workdir() -> Path:
    global _workdir_path, _workdir_text
    if _workdir_path is None:
        _workdir_path = _base_dir() / "work"
        _workdir_text = str(_workdir_path)
    return _workdir_path


class _PipeSink(BatchingSink):
    """Sends a task's output to the worker as protocol lines."""

    def __init__(self, task_id: int, send: Callable[[dict[str, Any]], None]) -> None:
        self._task_id = task_id
        self._send_line = send
        super().__init__(self._send_batch, timer=True)

    def _send(self, message: dict[str, Any]) -> None:
        # Whole lines only: one writer at a time, and no SIGTERM (which raises TaskCanceled
        # in the main thread) in the middle of a line.
        with _write_lock:
            blocked = threading.current_thread() is threading.main_thread()
            if blocked:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                self._send_line({**message, "id": self._task_id})
            finally:
                if blocked:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def _send_batch(self, records: list[dict[str, Any]], progress: list[dict[str, Any]]) -> None:
        message: dict[str, Any] = {}
        if records:
            message["records"] = records
        if progress:
            message["progress"] = progress
        self._send(message)

    def add_artifact(self, path: Path, name: str, size: int) -> None:
        staged = _base_dir() / "staged" / uuid.uuid4().hex
        digest = hashlib.sha256()
        with path.open("rb") as source, staged.open("wb") as target:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                target.write(chunk)
        artifact = {"name": name, "path": str(staged), "sha256": digest.hexdigest()}
        self._send({"artifacts": [artifact]})


def _clear(workdir: Path) -> None:
    """Empty ``workdir`` (the task left files): move it aside and remove it in the background."""
    trash = workdir.with_name(f"trash-{uuid.uuid4().hex}")
    try:
        workdir.rename(trash)
    except FileNotFoundError:  # the task removed it itself
        pass
    else:
        threading.Thread(target=shutil.rmtree, args=(trash, True), daemon=True).start()
    workdir.mkdir()


class TaskRun:
    """One attempt's working directory, and its context and output once asked for."""

    def __init__(self, task_id: int, attempt: int, send: Callable[[dict[str, Any]], None]):
        """Enter the (empty) working directory and make the context current."""
        self._task_id = task_id
        self._attempt = attempt
        self._send = send
        self._aborted = False
        self.context: TaskContext | None = None
        self.workdir = _workdir()
        os.chdir(_workdir_text)
        activate_process(self._context)

    def _context(self) -> TaskContext:
        if self.context is None:
            sink = _PipeSink(self._task_id, self._send)
            self.context = TaskContext(self._task_id, self._attempt, self.workdir, sink)
            if self._aborted:
                self.context.abort()
        return self.context

    def abort(self) -> None:
        """The task is being stopped: say so to the code that asks."""
        self._aborted = True
        if self.context is not None:
            self.context.abort()

    def finish(self) -> None:
        """Send the last output, leave the working directory and empty it."""
        try:
            if self.context is not None:
                self.context.close()
        finally:
            activate_process(None)
            os.chdir(_home)
            try:
                with os.scandir(_workdir_text) as entries:
                    left_something = next(entries, None) is not None
            except OSError:  # the task removed or replaced it
                left_something = True
            if left_something:
                _clear(self.workdir)
