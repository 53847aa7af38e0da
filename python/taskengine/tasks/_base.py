"""``BaseTask``: debusine's task class, on taskengine.

A task class does two jobs. On the scheduler side (the process calling
``create_work_request``) it validates the task data, builds the dynamic data and says which
workers can run it (:meth:`BaseTask.can_run_on`, fed with what :meth:`BaseTask.analyze_worker`
reported on each worker). On a worker it runs (:meth:`BaseTask.execute`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import signal
import tempfile
import weakref
from abc import abstractmethod
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, get_args, get_origin

import pydantic

from taskengine.errors import TaskCanceled, TaskConfigError
from taskengine.tasks import _registry
from taskengine.tasks._artifacts import store_artifact
from taskengine.tasks._models import (
    BaseDynamicTaskData,
    BaseTaskData,
    EventAction,
    EventName,
    TaskTypes,
)
from taskengine.tasks._validation import validation_message

if TYPE_CHECKING:
    from taskengine.engine import Engine

__all__ = ["DTD", "TD", "BaseTask", "TaskDatabase"]

TD = TypeVar("TD", bound=BaseTaskData)
DTD = TypeVar("DTD", bound=BaseDynamicTaskData)


class TaskDatabase:
    """What ``build_dynamic_data`` may look things up in: the engine the request goes to."""

    def __init__(self, engine: Engine | None) -> None:
        """Wrap ``engine`` (None when building outside any store, e.g. in tests)."""
        self.engine = engine


def _model_type(cls: type, index: int) -> type | None:
    """The concrete model named as type parameter ``index`` in ``cls``'s bases, if any."""
    for base in getattr(cls, "__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, BaseTask):
            args = get_args(base)
            if len(args) > index and isinstance(args[index], type):
                found: type = args[index]
                return found
    return None


class BaseTask(Generic[TD, DTD]):
    """Base of every task class. Most concrete tasks derive from ``RunCommandTask``.

    Subclasses register themselves under their lower-cased class name (``name``) unless
    they are abstract or declared with ``class X(BaseTask[...], abstract=True)``.
    """

    TASK_TYPE: ClassVar[TaskTypes] = TaskTypes.WORKER
    """Which kind of worker runs it: WORKER, SERVER or SIGNING."""
    TASK_VERSION: ClassVar[int | None] = None
    """The version of the task's code: a task runs only on a worker reporting the same."""
    name: ClassVar[str] = "basetask"
    """The registered name: the class name in lower case."""
    task_data_type: ClassVar[type[BaseTaskData]] = BaseTaskData
    """The model task data is validated with (the first type parameter)."""
    dynamic_task_data_type: ClassVar[type[BaseDynamicTaskData]] = BaseDynamicTaskData
    """The model of the dynamic data (the second type parameter)."""

    data: TD
    dynamic_data: DTD | None

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """Take the data models from the type parameters and register the class."""
        super().__init_subclass__(**kwargs)
        cls.name = cls.__name__.lower()
        data_type = _model_type(cls, 0)
        if data_type is not None:
            cls.task_data_type = data_type
        dynamic_type = _model_type(cls, 1)
        if dynamic_type is not None:
            cls.dynamic_task_data_type = dynamic_type
        if not abstract and not inspect.isabstract(cls):
            _registry.register(cls)

    def __init__(
        self, task_data: dict[str, Any], dynamic_task_data: dict[str, Any] | None = None
    ) -> None:
        """Validate ``task_data`` (TaskConfigError naming the field) and the dynamic data."""
        self.logger = logging.getLogger(f"taskengine.tasks.{self.name}")
        self.data = self._validate(self.task_data_type, task_data, "task data")
        self.dynamic_data = (
            None
            if dynamic_task_data is None
            else self._validate(self.dynamic_task_data_type, dynamic_task_data, "dynamic data")
        )
        self.work_request_id: int | None = None
        self.worker_metadata: dict[str, Any] = {}
        self._aborted = False
        self._debug_log_files_directory: Path | None = None
        self._debug_cleanup: weakref.finalize[Any, Any] | None = None
        self._process_group: int | None = None

    @classmethod
    def _validate(cls, model: type[pydantic.BaseModel], value: object, what: str) -> Any:
        if not isinstance(value, dict):
            raise TaskConfigError(
                f"{cls.name}: {what} must be a JSON object, not {type(value).__name__}"
            )
        try:
            return model.model_validate(value)
        except pydantic.ValidationError as exc:
            raise TaskConfigError(
                f"{cls.name}: invalid {what}: {validation_message(exc)}", exc
            ) from None

    # -- registry (static, as in debusine) -------------------------------------------------

    @staticmethod
    def class_from_name(task_type: TaskTypes, task_name: str) -> type[BaseTask[Any, Any]]:
        """The class registered as ``task_name`` (case-insensitive) for ``task_type``."""
        return _registry.lookup(task_type, task_name)

    @staticmethod
    def task_names(task_type: TaskTypes) -> list[str]:
        """The registered names of ``task_type``, sorted."""
        return sorted(_registry.registered(task_type))

    @staticmethod
    def worker_task_names() -> list[str]:
        """The registered names of every type but SERVER, sorted."""
        return sorted(
            name
            for name, cls in _registry.registered().items()
            if cls.TASK_TYPE != TaskTypes.SERVER
        )

    @staticmethod
    def is_valid_task_name(task_type: TaskTypes, task_name: str) -> bool:
        """Whether ``task_name`` is registered for ``task_type`` (its class imported)."""
        return task_name.lower() in _registry.registered(task_type)

    @staticmethod
    def is_worker_task(task_name: str) -> bool:
        """Whether ``task_name`` is a registered task of type WORKER."""
        return BaseTask.is_valid_task_name(TaskTypes.WORKER, task_name)

    # -- worker metadata and matching ------------------------------------------------------

    @classmethod
    def prefix_with_task_name(cls, text: str) -> str:
        """``"<name>:<text>"``: keys of worker metadata that belong to this task."""
        return f"{cls.name}:{text}"

    @classmethod
    def analyze_worker(cls) -> dict[str, Any]:
        """Metadata about this worker for this task, run on the worker.

        The default reports ``<name>:version``. Override it, call ``super()`` and add keys
        named with :meth:`prefix_with_task_name`."""
        return {cls.prefix_with_task_name("version"): cls.TASK_VERSION}

    @classmethod
    def analyze_worker_all_tasks(cls) -> dict[str, Any]:
        """The merged :meth:`analyze_worker` of every registered class.

        The worker reports this in its metadata when it registers."""
        metadata: dict[str, Any] = {}
        for task_cls in _registry.registered().values():
            metadata.update(task_cls.analyze_worker())
        return metadata

    def can_run_on(self, worker_metadata: dict[str, Any]) -> bool:
        """Whether a worker with this metadata can run the task (decided from
        ``worker_metadata`` and ``self.data`` only).

        The default checks the worker's type and that it reports this TASK_VERSION.
        Override it as ``if not super().can_run_on(worker_metadata): return False; ...``."""
        if worker_metadata.get("system:worker_type") != TaskTypes(self.TASK_TYPE).value:
            return False
        version = worker_metadata.get(self.prefix_with_task_name("version"))
        return bool(version == self.TASK_VERSION)

    def host_architecture(self) -> str | None:
        """The architecture the task needs, from ``self.data.host_architecture`` if any."""
        value = getattr(self.data, "host_architecture", None)
        return value if isinstance(value, str) else None

    # -- scheduler side --------------------------------------------------------------------

    @abstractmethod
    def build_dynamic_data(self, task_database: TaskDatabase) -> DTD:
        """Build the dynamic data on the scheduler side, at creation."""

    def compute_dynamic_data(self, task_database: TaskDatabase) -> DTD:
        """Build the dynamic data and check it is of the declared model."""
        dynamic = self.build_dynamic_data(task_database)
        if not isinstance(dynamic, self.dynamic_task_data_type):
            raise TaskConfigError(
                f"{self.name}: build_dynamic_data returned a {type(dynamic).__name__}, not a "
                f"{self.dynamic_task_data_type.__name__}"
            )
        return dynamic

    def get_event_reactions(self, event_name: EventName) -> list[EventAction]:
        """The actions to take on ``event_name`` (on_creation, on_unblock, on_success,
        on_failure). None by default."""
        return []

    @abstractmethod
    def get_label(self) -> str:
        """A short human-readable label for the task."""

    def get_subject(self) -> str | None:
        """The dynamic data's subject, if any."""
        return None if self.dynamic_data is None else self.dynamic_data.subject

    def instantiate_with_new_data(
        self, task_data: dict[str, Any], dynamic_task_data: dict[str, Any] | None = None
    ) -> BaseTask[TD, DTD]:
        """A new task of this class with other data."""
        return type(self)(task_data, dynamic_task_data)

    # -- running ---------------------------------------------------------------------------

    def abort(self) -> None:
        """Stop: the task need not run any more. Kills a running command's process group.
        Once aborted a task stays aborted."""
        self._aborted = True
        pgid = self._process_group
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    @property
    def aborted(self) -> bool:
        """Whether :meth:`abort` was called."""
        return self._aborted

    def execute(self) -> bool:
        """Run :meth:`_execute`, then store the debug log files as artifacts; return its
        result. A cancel (TaskCanceled) aborts the task first, then propagates."""
        try:
            return bool(self._execute())
        except TaskCanceled:
            self.abort()
            raise
        finally:
            self._upload_debug_log_files()

    def execute_logging_exceptions(self) -> bool:
        """:meth:`execute`, logging and returning False on an exception."""
        try:
            return self.execute()
        except Exception:
            self.logger.exception("%s failed", self.name)
            return False

    @abstractmethod
    def _execute(self) -> bool:
        """The task's work; True for success."""

    # -- debug log files and artifacts -----------------------------------------------------

    def _debug_directory(self) -> Path:
        if self._debug_log_files_directory is None:
            path = Path(tempfile.mkdtemp(prefix=f"taskengine-{self.name}-debug-"))
            self._debug_log_files_directory = path
            # Removed after execute(), or when the task object goes away unexecuted.
            self._debug_cleanup = weakref.finalize(self, shutil.rmtree, path, True)
        return self._debug_log_files_directory

    def open_debug_log_file(self, filename: str, *, mode: str = "a") -> IO[Any]:
        """Open ``filename`` in this task's debug log directory (the same file on every
        call). The caller closes it. The files are stored as artifacts after execute()."""
        if not filename or os.sep in filename or filename in (".", ".."):
            raise ValueError(f"a debug log file name must be a plain file name, not {filename!r}")
        if "w" not in mode and "a" not in mode and "x" not in mode:
            raise ValueError(f"debug log files are opened for writing, not with mode {mode!r}")
        return open(self._debug_directory() / filename, mode)

    def append_to_log_file(self, filename: str, lines: list[str]) -> None:
        """Append ``lines`` (one per line) to the debug log file ``filename``."""
        with self.open_debug_log_file(filename) as log:
            log.writelines(f"{line}\n" for line in lines)

    def debug_log_files(self) -> list[Path]:
        """The debug log files written so far."""
        if self._debug_log_files_directory is None:
            return []
        return sorted(p for p in self._debug_directory().iterdir() if p.is_file())

    def upload_artifact(self, path: Path | str, name: str | None = None) -> bool:
        """Store the file ``path`` as an artifact of the running task; return whether an
        artifact store took it (outside a worker there is none)."""
        return store_artifact(Path(path), name)

    def _upload_debug_log_files(self) -> None:
        for path in self.debug_log_files():
            self.upload_artifact(path, path.name)
        if self._debug_cleanup is not None:
            self._debug_cleanup()
        self._debug_log_files_directory = self._debug_cleanup = None
