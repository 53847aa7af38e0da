"""The executor's side of ``taskengine.current()``: working directories and the context.

Each task attempt starts in an empty working directory under the executor's own temporary
directory, as its cwd; whatever it leaves there is removed when it ends. The directory's path
stays the same from task to task: creating and removing a directory per task costs
milliseconds of I/O wait on some file systems (ext4 mounted with ``discard``), while emptying
one only when a task left something costs nothing for the tasks that did not.

The context itself and its output pipe (:mod:`taskengine._executor_sink`) are built only when
a task asks for them. This module is imported by every executor before it reports ready, so
it imports only what is already loaded or cheap: executors start fast, and a task is running
(and can clean up when canceled) as soon as possible after its claim. It imports nothing from
the native core.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskengine import _current

if TYPE_CHECKING:
    from taskengine._context import TaskContext

__all__ = ["TaskRun"]

_home = os.getcwd()
_base = ""  # the executor's own temporary directory, made on first use
_workdir = ""
_staging = ""


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _make_base() -> None:
    """Create the executor's directory (private, removed at exit) with work/ and staged/."""
    global _base, _workdir, _staging
    parent = os.environ.get("TMPDIR") or "/tmp"
    while True:
        base = os.path.join(parent, f"taskengine-executor-{os.urandom(6).hex()}")
        try:
            os.mkdir(base, 0o700)
            break
        except FileExistsError:
            continue
    atexit.register(_remove_tree, base)
    _workdir = os.path.join(base, "work")
    _staging = os.path.join(base, "staged")
    os.mkdir(_workdir)
    os.mkdir(_staging)
    _base = base


def _clear() -> None:
    """Empty the working directory (the task left files): move it aside, remove it in the
    background, and make a new one."""
    import threading

    trash = os.path.join(_base, f"trash-{os.urandom(8).hex()}")
    try:
        os.rename(_workdir, trash)
    except FileNotFoundError:  # the task removed it itself
        pass
    else:
        threading.Thread(target=_remove_tree, args=(trash,), daemon=True).start()
    os.mkdir(_workdir)


class TaskRun:
    """One attempt's working directory, and its context and output once asked for."""

    def __init__(self, task_id: int, attempt: int, send: Callable[[dict[str, Any]], None]):
        """Enter the (empty) working directory and make the context current."""
        if not _base:
            _make_base()
        self._task_id = task_id
        self._attempt = attempt
        self._send = send
        self._aborted = False
        self.context: TaskContext | None = None
        os.chdir(_workdir)
        _current.activate_process(self._context)

    def _context(self) -> TaskContext:
        if self.context is None:
            from pathlib import Path

            from taskengine._context import TaskContext
            from taskengine._executor_sink import PipeSink

            sink = PipeSink(self._task_id, self._send, _staging)
            context = TaskContext(self._task_id, self._attempt, Path(_workdir), sink)
            if self._aborted:
                context.abort()
            self.context = context
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
            _current.activate_process(None)
            os.chdir(_home)
            try:
                with os.scandir(_workdir) as entries:
                    left_something = next(entries, None) is not None
            except OSError:  # the task removed or replaced it
                left_something = True
            if left_something:
                _clear()
