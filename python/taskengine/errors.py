"""The exceptions taskengine raises.

The native core raises these classes too: its exception translator imports this module and
raises ``getattr(taskengine.errors, name)(message)``, so the names below are part of the
contract with the C++ side and must not change. This module imports nothing from the native
module, so it is always importable.
"""

from __future__ import annotations

__all__ = [
    "ArtifactTooLarge",
    "FunctionNotFound",
    "InvalidArgument",
    "InvalidUrl",
    "JobConfigError",
    "NoCurrentTask",
    "NotFound",
    "NotSerializable",
    "SchemaError",
    "StaleAttempt",
    "StoreError",
    "StoreUnavailable",
    "TaskCanceled",
    "TaskConfigError",
    "TaskEngineError",
]


class TaskEngineError(Exception):
    """Base class of every error taskengine raises on purpose."""


class InvalidArgument(TaskEngineError, ValueError):
    """The caller passed something invalid; the message names the argument or option."""


class InvalidUrl(InvalidArgument):
    """A store URL that names no supported backend or is malformed."""


class JobConfigError(InvalidArgument):
    """A job file or job definition that is invalid; the message names the job and the field."""


class ArtifactTooLarge(InvalidArgument):
    """An artifact bigger than the store accepts (16 MiB; see docs/running-tasks.md)."""


class NoCurrentTask(TaskEngineError, RuntimeError):
    """``taskengine.current()`` was called outside a running task."""


class NotFound(TaskEngineError, LookupError):
    """A task, task group or worker id that does not exist."""


class StoreUnavailable(TaskEngineError, ConnectionError):
    """The store could not be reached or refused the connection."""


class StoreError(TaskEngineError):
    """The store answered with an error (constraint, I/O, SQL)."""


class SchemaError(StoreError):
    """The schema is missing, or newer than this version of taskengine understands."""


class StaleAttempt(TaskEngineError):
    """A write carried an attempt's fencing token that is no longer current."""


class FunctionNotFound(InvalidArgument):
    """A task function that cannot be named, imported or called by a worker."""


class NotSerializable(InvalidArgument, TypeError):
    """A task argument or result that cannot be stored as JSON."""


class TaskConfigError(InvalidArgument):
    """Invalid task data for a task class, or an unknown task class (debusine's name).

    The message names the class and the field at fault. ``original_exception`` is the error
    that triggered it (a pydantic ``ValidationError``, say), when there is one.
    """

    def __init__(self, message: str | None, original_exception: Exception | None = None) -> None:
        """Keep the message and the exception that caused it."""
        super().__init__(message)
        self.message = message
        self.original_exception = original_exception

    def add_parent_message(self, msg: str) -> None:
        """Prepend the message of the containing scope: ``"<msg>: <message>"``."""
        self.message = f"{msg}: {self.message}" if self.message else msg
        self.args = (self.message,)

    def __str__(self) -> str:
        """The message, with the original exception's when there is one."""
        text = self.message or ""
        if self.original_exception is not None and not text:
            return str(self.original_exception)
        return text


class TaskCanceled(BaseException):
    """Raised inside a running function task when it is canceled or times out.

    The worker sends SIGTERM to the task's process group; the executor turns it into this
    exception in the task, so ``finally`` blocks and context managers run as the task's cleanup
    before the grace period ends and what is left of the group is killed. It derives from
    BaseException, like ``asyncio.CancelledError``, so ``except Exception`` does not swallow it.
    """
