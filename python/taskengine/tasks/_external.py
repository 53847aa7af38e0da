"""``BaseExternalTask`` (the stages of a task run on a worker) and ``DefaultDynamicData``."""

from __future__ import annotations

import tempfile
from abc import abstractmethod
from pathlib import Path
from typing import Any

from taskengine.tasks._base import DTD, TD, BaseTask, TaskDatabase
from taskengine.tasks._models import BaseDynamicTaskData, TaskTypes

__all__ = ["BaseExternalTask", "DefaultDynamicData"]


class DefaultDynamicData(BaseTask[TD, BaseDynamicTaskData], abstract=True):
    """Base of tasks that add nothing to the dynamic data."""

    def build_dynamic_data(self, task_database: TaskDatabase) -> BaseDynamicTaskData:
        """Empty dynamic data."""
        return BaseDynamicTaskData()


class BaseExternalTask(BaseTask[TD, DTD], abstract=True):
    """A task run on an external worker, in stages.

    :meth:`_execute` calls, in this order and in fresh temporary directories:
    ``fetch_input(download)`` → ``configure_for_execution(download)`` →
    ``prepare_to_run(download, execute)`` → ``run(execute)`` →
    ``check_directory_for_consistency_errors(execute)`` →
    ``upload_artifacts(execute, execution_success=...)``, and ``cleanup()`` whatever
    happened. A stage returning False, or an aborted task, stops the sequence (cleanup still
    runs) and the task fails. Subclasses implement :meth:`run`.
    """

    TASK_TYPE = TaskTypes.WORKER

    def __init__(
        self, task_data: dict[str, Any], dynamic_task_data: dict[str, Any] | None = None
    ) -> None:
        """Initialize the task; the directories exist while it executes."""
        super().__init__(task_data, dynamic_task_data)
        self.download_directory: Path | None = None
        self.execute_directory: Path | None = None

    def fetch_input(self, destination: Path) -> bool:
        """Put the task's input into ``destination``. Default: nothing, True."""
        return True

    def configure_for_execution(self, download_directory: Path) -> bool:
        """Prepare what the main work needs, from the fetched input. Default: True."""
        return True

    def prepare_to_run(self, download_directory: Path, execute_directory: Path) -> None:
        """Set up the execution directory. Default: nothing."""

    @abstractmethod
    def run(self, execute_directory: Path) -> bool:
        """Do the main work in ``execute_directory``; True for success."""

    def check_directory_for_consistency_errors(self, build_directory: Path) -> list[str]:
        """Problems found in the result, after run(). Default: none."""
        return []

    def upload_artifacts(self, execute_directory: Path, *, execution_success: bool) -> None:
        """Store the task's outputs (see :meth:`upload_artifact`). Default: nothing."""

    def cleanup(self) -> None:
        """Release what the task set up; runs after every execution, even a failed one."""

    def _execute(self) -> bool:
        """Run the stages in order (see the class docstring)."""
        with tempfile.TemporaryDirectory(prefix=f"taskengine-{self.name}-") as work:
            download = Path(work) / "download"
            execute = Path(work) / "execute"
            download.mkdir()
            execute.mkdir()
            self.download_directory, self.execute_directory = download, execute
            try:
                return self._run_stages(download, execute)
            finally:
                self.cleanup()
                self.download_directory = self.execute_directory = None

    def _run_stages(self, download: Path, execute: Path) -> bool:
        if self.aborted or not self.fetch_input(download):
            return False
        if self.aborted or not self.configure_for_execution(download):
            return False
        if self.aborted:
            return False
        self.prepare_to_run(download, execute)
        if self.aborted:
            return False
        success = bool(self.run(execute))
        errors = self.check_directory_for_consistency_errors(execute)
        if errors:
            self.append_to_log_file("consistency.log", errors)
            self.logger.error("%s: consistency errors: %s", self.name, "; ".join(errors))
            success = False
        self.upload_artifacts(execute, execution_success=success)
        return success and not self.aborted
