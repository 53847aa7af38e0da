"""Task classes the task-class tests run on real workers (``--import class_tasks``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import taskengine
from taskengine.tasks import (
    ActionRecordInTaskHistory,
    ActionRetryWithDelays,
    ActionSendNotification,
    Notification,
    TaskDatabase,
)

FEATURE_ENABLED = False
"""Set by importing ``class_tasks_feature``: what NeedsFeature's analyze_worker reports."""


class EchoData(taskengine.BaseTaskData):
    """Greet someone, maybe failing with an exit code."""

    who: str
    exit_code: int = 0
    notify_file: str | None = None
    notify_channel: str = "file"


class EchoDynamic(taskengine.BaseDynamicTaskData):
    """What the scheduler side adds."""

    greeting: str


class ClassEcho(taskengine.RunCommandTask[EchoData, EchoDynamic]):
    """Echo a greeting; exits with ``exit_code``; captures stdout in greeting.txt."""

    TASK_VERSION = 2
    CAPTURE_OUTPUT_FILENAME = "greeting.txt"

    def build_dynamic_data(self, task_database: TaskDatabase) -> EchoDynamic:
        return EchoDynamic(subject=self.data.who, greeting=f"hello {self.data.who}")

    def _cmdline(self) -> list[str]:
        assert self.dynamic_data is not None
        return ["sh", "-c", f'echo "{self.dynamic_data.greeting}"; exit {self.data.exit_code}']

    def get_label(self) -> str:
        return f"echo {self.data.who}"

    def get_event_reactions(self, event_name: Any) -> list[Any]:
        reactions: dict[str, list[Any]] = {
            "on_creation": [ActionRecordInTaskHistory(data={"created": self.data.who})],
            "on_unblock": [ActionRecordInTaskHistory(data={"unblocked": True})],
            "on_success": [ActionRecordInTaskHistory(data={"ok": True})],
            "on_failure": [ActionRecordInTaskHistory(data={"ok": False})],
        }
        if self.data.notify_file:
            for event in ("on_creation", "on_unblock", "on_success", "on_failure"):
                channel = "file" if event == "on_creation" else self.data.notify_channel
                reactions[event].append(
                    ActionSendNotification(channel=channel, data={"path": self.data.notify_file})
                )
        return reactions.get(event_name, [])


class ServerNote(taskengine.BaseTask[EchoData, taskengine.BaseDynamicTaskData]):
    """A SERVER task (no test starts a server worker) recording and notifying on_unblock."""

    TASK_TYPE = taskengine.TaskTypes.SERVER
    TASK_VERSION = 1

    def build_dynamic_data(self, task_database: TaskDatabase) -> taskengine.BaseDynamicTaskData:
        return taskengine.BaseDynamicTaskData()

    def _execute(self) -> bool:
        return True

    def get_label(self) -> str:
        return f"note {self.data.who}"

    def get_event_reactions(self, event_name: Any) -> list[Any]:
        if event_name != "on_unblock":
            return []
        reactions: list[Any] = [ActionRecordInTaskHistory(data={"unblocked": self.data.who})]
        if self.data.notify_file:
            reactions.append(
                ActionSendNotification(channel="file", data={"path": self.data.notify_file})
            )
        return reactions


class RetryData(taskengine.BaseTaskData):
    """Fail until ``marker`` exists (created on the first attempt)."""

    marker: str


class ClassRetry(taskengine.RunCommandTask[RetryData, taskengine.BaseDynamicTaskData]):
    """Fails its first attempt; on_failure retries after 0.2 s."""

    TASK_VERSION = 1

    def build_dynamic_data(self, task_database: TaskDatabase) -> taskengine.BaseDynamicTaskData:
        return taskengine.BaseDynamicTaskData()

    def _cmdline(self) -> list[str]:
        marker = self.data.marker
        return ["sh", "-c", f'if [ -e "{marker}" ]; then exit 0; fi; touch "{marker}"; exit 3']

    def get_label(self) -> str:
        return "retry"

    def get_event_reactions(self, event_name: Any) -> list[Any]:
        if event_name == "on_failure":
            return [ActionRetryWithDelays(delays=["0.2s"])]
        return []


class StagesData(taskengine.BaseTaskData):
    """Where to write the stage log."""

    log: str
    fail_at: str | None = None


class ClassStages(
    taskengine.BaseExternalTask[StagesData, taskengine.BaseDynamicTaskData],
):
    """Records each stage it goes through in ``log`` (one JSON list)."""

    TASK_VERSION = 1

    def _record(self, stage: str) -> bool:
        path = Path(self.data.log)
        stages = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*stages, stage]))
        return stage != self.data.fail_at

    def build_dynamic_data(self, task_database: TaskDatabase) -> taskengine.BaseDynamicTaskData:
        return taskengine.BaseDynamicTaskData()

    def get_label(self) -> str:
        return "stages"

    def fetch_input(self, destination: Path) -> bool:
        return self._record("fetch_input")

    def configure_for_execution(self, download_directory: Path) -> bool:
        return self._record("configure_for_execution")

    def prepare_to_run(self, download_directory: Path, execute_directory: Path) -> None:
        self._record("prepare_to_run")

    def run(self, execute_directory: Path) -> bool:
        return self._record("run")

    def check_directory_for_consistency_errors(self, build_directory: Path) -> list[str]:
        return [] if self._record("check_directory_for_consistency_errors") else ["bad"]

    def upload_artifacts(self, execute_directory: Path, *, execution_success: bool) -> None:
        self._record("upload_artifacts")

    def cleanup(self) -> None:
        self._record("cleanup")


class SleepData(taskengine.BaseTaskData):
    """Where the command writes its background child's pid."""

    pid_file: str


class ClassSleep(taskengine.RunCommandTask[SleepData, taskengine.BaseDynamicTaskData]):
    """Starts a background grandchild that sleeps, then waits for it."""

    TASK_VERSION = 1

    def build_dynamic_data(self, task_database: TaskDatabase) -> taskengine.BaseDynamicTaskData:
        return taskengine.BaseDynamicTaskData()

    def _cmdline(self) -> list[str]:
        return ["sh", "-c", f'sleep 300 & echo $! > "{self.data.pid_file}"; wait']

    def get_label(self) -> str:
        return "sleep"


class FeatureData(taskengine.BaseTaskData):
    """Optionally, the architecture the task needs."""

    host_architecture: str | None = None


class NeedsFeature(taskengine.RunCommandTask[FeatureData, taskengine.BaseDynamicTaskData]):
    """Runs only on workers whose executors imported ``class_tasks_feature``."""

    TASK_VERSION = 1

    @classmethod
    def analyze_worker(cls) -> dict[str, Any]:
        return {**super().analyze_worker(), cls.prefix_with_task_name("feature"): FEATURE_ENABLED}

    def can_run_on(self, worker_metadata: dict[str, Any]) -> bool:
        if not super().can_run_on(worker_metadata):
            return False
        return worker_metadata.get(self.prefix_with_task_name("feature")) is True

    def build_dynamic_data(self, task_database: TaskDatabase) -> taskengine.BaseDynamicTaskData:
        return taskengine.BaseDynamicTaskData()

    def _cmdline(self) -> list[str]:
        return ["true"]

    def get_label(self) -> str:
        return "needs feature"


def _write_notification(notification: Notification) -> None:
    path = notification.data["path"]
    with open(path, "a") as out:
        out.write(json.dumps([notification.event, notification.task_id, notification.label]))
        out.write("\n")


taskengine.register_notification_hook("file", _write_notification)
os.environ.setdefault("CLASS_TASKS_IMPORTED", "1")
