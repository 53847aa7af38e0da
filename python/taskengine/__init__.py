"""taskengine: a durable task engine with a native C++ core.

Dispatch Python functions and commands to a store (SQLite or PostgreSQL) and run them on
native workers::

    import taskengine

    engine = taskengine.connect("sqlite:///tasks.db")
    engine.install()
    task = engine.dispatch("mypackage.jobs:resize", args=("photo.jpg", 640))
    task.wait(timeout=60).result

    # a Task in the arguments stands for its result; retries with explicit delays
    thumb = engine.dispatch("mypackage.jobs:upload", args=(task,), retries=[1, 5, 30])

Importing the package never needs the native module ``taskengine._core``: the Python
executor (``python -m taskengine._executor``, which imports this package first) runs without
it. Public names are loaded on first use; those that need the core, :func:`connect` and
:class:`Engine`, raise an ImportError saying how to build it when it is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taskengine.errors import (
    ArtifactTooLarge,
    FunctionNotFound,
    InvalidArgument,
    InvalidUrl,
    JobConfigError,
    NoCurrentTask,
    NotFound,
    NotSerializable,
    SchemaError,
    StaleAttempt,
    StoreError,
    StoreUnavailable,
    TaskCanceled,
    TaskConfigError,
    TaskEngineError,
)

if TYPE_CHECKING:
    from taskengine._context import TaskContext
    from taskengine._current import current, current_or_none
    from taskengine._retval import retval
    from taskengine._spec import Backoff
    from taskengine.command import Command
    from taskengine.engine import DEFAULT_URL, Engine, connect
    from taskengine.jobs import Build, Job
    from taskengine.task import Task, TaskGroup, WorkerRecord
    from taskengine.task_output import ArtifactInfo, LogMessage, ProgressInfo
    from taskengine.tasks import (
        BaseDynamicTaskData,
        BaseExternalTask,
        BaseTask,
        BaseTaskData,
        DefaultDynamicData,
        Notification,
        RunCommandTask,
        TaskDatabase,
        TaskTypes,
        register_notification_hook,
    )

__all__ = [
    "DEFAULT_URL",
    "ArtifactInfo",
    "ArtifactTooLarge",
    "Backoff",
    "BaseDynamicTaskData",
    "BaseExternalTask",
    "BaseTask",
    "BaseTaskData",
    "Build",
    "Command",
    "DefaultDynamicData",
    "Engine",
    "FunctionNotFound",
    "InvalidArgument",
    "InvalidUrl",
    "Job",
    "JobConfigError",
    "LogMessage",
    "NoCurrentTask",
    "NotFound",
    "NotSerializable",
    "Notification",
    "ProgressInfo",
    "RunCommandTask",
    "SchemaError",
    "StaleAttempt",
    "StoreError",
    "StoreUnavailable",
    "Task",
    "TaskCanceled",
    "TaskConfigError",
    "TaskContext",
    "TaskDatabase",
    "TaskEngineError",
    "TaskGroup",
    "TaskTypes",
    "WorkerRecord",
    "__version__",
    "connect",
    "current",
    "current_or_none",
    "register_notification_hook",
    "retval",
]

__version__ = "0.1.0"

# Loaded on first access (PEP 562): the executor, which imports this package first, then
# pays only for what it uses, and nothing here needs the native core until it is used.
_LAZY = {
    "ArtifactInfo": "taskengine.task_output",
    "LogMessage": "taskengine.task_output",
    "ProgressInfo": "taskengine.task_output",
    "TaskContext": "taskengine._context",
    "current": "taskengine._current",
    "current_or_none": "taskengine._current",
    "Backoff": "taskengine._spec",
    "Build": "taskengine.jobs",
    "Command": "taskengine.command",
    "DEFAULT_URL": "taskengine.engine",
    "Engine": "taskengine.engine",
    "Job": "taskengine.jobs",
    "Task": "taskengine.task",
    "TaskGroup": "taskengine.task",
    "WorkerRecord": "taskengine.task",
    "connect": "taskengine.engine",
    "retval": "taskengine._retval",
    **{
        name: "taskengine.tasks"
        for name in (
            "BaseDynamicTaskData",
            "BaseExternalTask",
            "BaseTask",
            "BaseTaskData",
            "DefaultDynamicData",
            "Notification",
            "RunCommandTask",
            "TaskDatabase",
            "TaskTypes",
            "register_notification_hook",
        )
    },
}


def __getattr__(name: str) -> Any:
    """Load the lazily imported public names on first use."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'taskengine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Include the lazily loaded names."""
    return sorted(set(globals()) | set(__all__))
