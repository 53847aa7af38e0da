"""The executor's side of ``taskengine.current()``: working directories and the context.

Each task attempt starts in an empty working directory under the executor's own temporary
directory, as its cwd; whatever it leaves there is removed when it ends. The directory's path
stays the same from task to task: creating and removing a directory per task costs
milliseconds of I/O wait on some file systems (ext4 mounted with ``discard``), while emptying
one only when a task left something costs nothing for the tasks that did not. Whether it did
is told by the directory's mtime, without listing it: once the directory is known to be
empty its mtime is set to a mark (:data:`_EMPTY_MARK_NS`), and creating, removing or renaming
an entry in it sets the mtime to the current time (POSIX), which is never the mark. So after
a task one ``stat`` says "untouched", and only otherwise is the directory listed (and emptied
if it holds something). On a file system that does not keep the mark as set, the directory
is listed after every task, as before.

A task enters the directory with one ``chdir``, and the executor stays there after the task:
it goes back to its own starting directory (:func:`go_home`) only before work that may depend
on it (importing a module, rendering a traceback), so a no-op task costs one ``chdir``, not
two.

The context itself and its output pipe (:mod:`taskengine._executor_sink`) are built only when
a task asks for them. This module is imported by every executor before it reports ready, so
it imports only what is already loaded or cheap: executors start fast, and a task is running
(and can clean up when canceled) as soon as possible after its claim. It imports nothing from
the native core.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taskengine import _current

if TYPE_CHECKING:
    from taskengine._context import TaskContext

__all__ = ["TaskRun", "go_home"]

_home = os.getcwd()
_base = ""  # the executor's own temporary directory, made on first use
_workdir = ""
_staging = ""
_look_next = False  # list _workdir after the next task whatever its mtime says
# The mtime of a working directory known to be empty: 2000-01-01 UTC, a whole even second,
# which every file system stores exactly (FAT: 2 s steps from 1980).
_EMPTY_MARK_NS = 946_684_800 * 1_000_000_000


def go_home() -> None:
    """Go back to the directory the executor started in (tasks leave it in theirs)."""
    with contextlib.suppress(OSError):  # it is gone: stay, as a task would have found it
        os.chdir(_home)


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
    _mark_new_workdir()


def _mark_new_workdir() -> None:
    """Mark the (new, empty) working directory."""
    global _look_next
    _mark_empty(_workdir)
    # Something may have landed between mkdir and the mark (a task's stray child).
    _look_next = True


def _mark_empty(path: str) -> None:
    """Set ``path``'s mtime to the mark (best effort: no mark means listing every time)."""
    with contextlib.suppress(OSError):
        os.utime(path, ns=(_EMPTY_MARK_NS, _EMPTY_MARK_NS))


def _untouched(path: str) -> bool:
    """Whether no entry was created, removed or renamed in ``path`` since it was marked."""
    try:
        return os.stat(path).st_mtime_ns == _EMPTY_MARK_NS
    except OSError:  # the task removed it
        return False


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
    _mark_new_workdir()


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
        """Send the last output and empty the working directory if the task left something.

        The process stays in the directory (see :func:`go_home`): it is renamed away, not
        removed, when emptied, so that is no obstacle.
        """
        global _look_next
        try:
            if self.context is not None:
                self.context.close()
        finally:
            _current.activate_process(None)
            if _look_next or not _untouched(_workdir):
                _look_next = False
                _mark_empty(_workdir)  # first: an entry added from now on changes the mtime
                try:
                    with os.scandir(_workdir) as entries:
                        left_something = next(entries, None) is not None
                except OSError:  # the task removed or replaced it
                    left_something = True
                if left_something:
                    _clear()
