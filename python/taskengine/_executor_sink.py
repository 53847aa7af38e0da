"""The executor's output pipe for ``taskengine.current()``: a task's records, progress and
artifacts as protocol lines to the worker.

Log records and progress go out as ``{"id": 7, "records": [...], "progress": [...]}``
batches (:class:`~taskengine._context.BatchingSink`); an artifact is copied to a staging file
the worker reads, stores and removes (``{"id": 7, "artifacts": [{"name", "path",
"sha256"}]}``), so it may change or go once ``add_artifact`` returns.

Lines may come from a timer thread as well as the task's, so each is written whole under a
lock, with SIGTERM held off meanwhile: a cancel must not cut a line in half.

Imported only when a task first asks for its context, so executors whose tasks never do
start without it. This module imports nothing from the native core.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskengine._context import BatchingSink

__all__ = ["PipeSink"]

_write_lock = threading.Lock()


class PipeSink(BatchingSink):
    """Sends a task's output to the worker as protocol lines; artifacts go through
    ``staging``, a directory of the executor's own."""

    def __init__(self, task_id: int, send: Callable[[dict[str, Any]], None], staging: str):
        """Send task ``task_id``'s output with ``send``."""
        self._task_id = task_id
        self._send_line = send
        self._staging = staging
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
        """Copy the file to a staging file and tell the worker to store it."""
        staged = os.path.join(self._staging, os.urandom(16).hex())
        digest = hashlib.sha256()
        with path.open("rb") as source, open(staged, "wb") as target:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                target.write(chunk)
        artifact = {"name": name, "path": staged, "sha256": digest.hexdigest()}
        self._send({"artifacts": [artifact]})
