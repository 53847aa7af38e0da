"""Task classes in debusine's vocabulary: typed task data, worker analysis, matching, stages.

::

    import taskengine
    from pathlib import Path

    class GreetData(taskengine.BaseTaskData):
        name: str

    class Greet(taskengine.RunCommandTask[GreetData, taskengine.BaseDynamicTaskData]):
        TASK_VERSION = 1

        def build_dynamic_data(self, task_database):
            return taskengine.BaseDynamicTaskData(subject=self.data.name)

        def _cmdline(self) -> list[str]:
            return ["echo", f"hello {self.data.name}"]

        def get_label(self) -> str:
            return f"greet {self.data.name}"

    engine.create_work_request("greet", {"name": "world"})

See docs/task-classes.md.
"""

from __future__ import annotations

from taskengine.errors import TaskConfigError
from taskengine.tasks._base import BaseTask, TaskDatabase
from taskengine.tasks._external import BaseExternalTask, DefaultDynamicData
from taskengine.tasks._models import (
    ActionRecordInTaskHistory,
    ActionRetryWithDelays,
    ActionSendNotification,
    BaseDynamicTaskData,
    BaseTaskData,
    TaskTypes,
)
from taskengine.tasks._notifications import Notification, register_notification_hook
from taskengine.tasks._registry import ENTRY_POINT_GROUP
from taskengine.tasks._run_command import RunCommandTask

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionRecordInTaskHistory",
    "ActionRetryWithDelays",
    "ActionSendNotification",
    "BaseDynamicTaskData",
    "BaseExternalTask",
    "BaseTask",
    "BaseTaskData",
    "DefaultDynamicData",
    "Notification",
    "RunCommandTask",
    "TaskConfigError",
    "TaskDatabase",
    "TaskTypes",
    "register_notification_hook",
]
