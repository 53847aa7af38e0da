"""``Engine`` and ``connect``: dispatching and inspecting tasks in a store.

This is the one module of the Python API that needs the native core; importing it without a
built ``taskengine._core`` raises an ImportError that says how to build it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from taskengine import _spec
from taskengine._functions import function_path, normalize_path, resolve
from taskengine.command import Command
from taskengine.errors import FunctionNotFound, InvalidArgument, NotFound
from taskengine.task import Task, TaskGroup, WorkerRecord

try:
    from taskengine import _core
except ImportError as _exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "taskengine's native module taskengine._core is not available "
        f"({_exc}); build and install the package first, e.g. `pip install "
        "--no-build-isolation -ve .` in the source tree (see docs/development.md)"
    ) from _exc

__all__ = ["DEFAULT_URL", "Engine", "connect"]

DEFAULT_URL = _spec.DEFAULT_URL
"""The store ``connect()`` opens when neither an URL nor ``$TASKENGINE_URL`` is given."""

_Func = Callable[..., Any] | str
_NotBefore = datetime | timedelta | float | None
_Ids = Iterable[Task | int]


def _function_path(func: object, validate: bool) -> str:
    """Return the ``module:qualname`` of a callable or a function name, checked."""
    if isinstance(func, str):
        path = normalize_path(func)
    elif callable(func):
        path = function_path(func)
    else:
        raise FunctionNotFound(
            f"a task function must be a callable or a 'module:function' string, "
            f"not {type(func).__name__}"
        )
    if validate:
        try:
            resolve(path)
        except FunctionNotFound:
            raise
        except Exception as exc:
            module = path.partition(":")[0]
            raise FunctionNotFound(
                f"importing module {module!r} for {path!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
    return path


class Engine:
    """A connection to a taskengine store (SQLite or PostgreSQL), named by URL.

    Every method that writes does so in one transaction and validates its input first, so
    bad input raises :class:`~taskengine.errors.InvalidArgument` and stores nothing.
    """

    def __init__(self, url: str) -> None:
        """Open the store at ``url``; raise InvalidUrl or StoreUnavailable when it can't be."""
        if not isinstance(url, str):
            raise InvalidArgument(f"url must be a string, not {type(url).__name__}")
        self._core = _core.Engine(url)

    @property
    def url(self) -> str:
        """The store's URL."""
        return self._core.url

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._core.backend

    def __repr__(self) -> str:
        """``<Engine sqlite:///...>``."""
        return f"<Engine {self.url}>"

    # -- schema ---------------------------------------------------------------------------

    def install(self) -> None:
        """Create or upgrade the schema; idempotent."""
        self._core.install()

    def uninstall(self) -> None:
        """Drop the schema and everything in it."""
        self._core.uninstall()

    def schema_version(self) -> int:
        """The installed schema's version (0 when not installed)."""
        return self._core.schema_version()

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(
        self,
        func: _Func | Command,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        exclusive_resources: Iterable[str] = (),
        shared_resources: Iterable[str] = (),
        task_group: TaskGroup | int | None = None,
        depends_on: _Ids = (),
        immediate: bool = False,
        deferred: bool = True,
        versions: Mapping[str, str] | None = None,
        priority: int = 0,
        not_before: _NotBefore = None,
        timeout: float | timedelta | None = None,
        retries: int = 0,
        retry_backoff: float = 1.0,
        allow_failure: bool = False,
        unique_key: str | None = None,
        worker_type: str = "worker",
        validate: bool = True,
    ) -> Task:
        """Queue one task and return it.

        ``func`` is what to run: a module-level function, its name as
        ``"package.module:function"`` (or pulpcore's ``"package.module.function"``), or a
        :class:`Command`. ``args`` and ``kwargs`` must be JSON-serialisable (they are stored);
        a Command takes neither.

        - ``exclusive_resources`` / ``shared_resources``: names of resources the task needs
          alone, or may share with other shared holders, while it runs.
        - ``task_group``: a TaskGroup or its id. ``depends_on``: tasks (or ids) that must
          complete first; with ``allow_failure=True`` the task runs even if they don't.
        - ``immediate`` / ``deferred``: pulpcore's semantics; only the deferred mode
          (``immediate=False, deferred=True``) is supported yet.
        - ``versions``: ``{"component": "minimum version"}`` the worker must provide;
          ``worker_type``: ``worker``, ``server`` or ``signing``.
        - ``priority``: higher first. ``not_before``: an aware datetime, or seconds (or a
          timedelta) from now. ``timeout``: seconds an attempt may run before it is killed.
        - ``retries``: how many more attempts after a failure, ``retry_backoff`` seconds apart
          at first, growing exponentially. ``unique_key``: at most one unfinished task with
          this key.
        - ``validate``: import the function's module now and check the function exists.

        Raises InvalidArgument (or FunctionNotFound, NotSerializable) naming the problem;
        nothing is stored then.
        """
        options = _spec.spec_options(
            exclusive_resources=exclusive_resources,
            shared_resources=shared_resources,
            task_group=task_group,
            depends_on=depends_on,
            immediate=immediate,
            deferred=deferred,
            versions=versions,
            priority=priority,
            not_before=not_before,
            timeout=timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            allow_failure=allow_failure,
            unique_key=unique_key,
            worker_type=worker_type,
        )
        if isinstance(func, Command):
            if args or kwargs:
                raise InvalidArgument(
                    "args and kwargs do not apply to a Command: put arguments in its argv"
                )
            spec = {"kind": "command", "name": func.name, "payload": func.payload(), **options}
        else:
            path = _function_path(func, _spec.check_bool(validate, "validate"))
            arg_list, kwarg_dict = _spec.check_json_args(args, kwargs)
            payload = _spec.function_payload(path, arg_list, kwarg_dict)
            spec = {"kind": "function", "name": path, "payload": payload, **options}
        (task_id,) = self._dispatch_specs([spec])
        return Task(self, task_id)

    def dispatch_many(
        self,
        func: _Func,
        args_list: Iterable[Sequence[Any]],
        kwargs: Mapping[str, Any] | None = None,
        *,
        exclusive_resources: Iterable[str] = (),
        shared_resources: Iterable[str] = (),
        task_group: TaskGroup | int | None = None,
        depends_on: _Ids = (),
        immediate: bool = False,
        deferred: bool = True,
        versions: Mapping[str, str] | None = None,
        priority: int = 0,
        not_before: _NotBefore = None,
        timeout: float | timedelta | None = None,
        retries: int = 0,
        retry_backoff: float = 1.0,
        allow_failure: bool = False,
        unique_key: str | None = None,
        worker_type: str = "worker",
        validate: bool = True,
    ) -> list[Task]:
        """Queue one task of ``func`` per item of ``args_list``, in one transaction.

        Each item is the positional arguments of one task; ``kwargs`` and every option are
        shared by all (see :meth:`dispatch`). Returns the tasks in the order of
        ``args_list``. Either all are stored or, on any error, none.
        """
        if isinstance(func, Command):
            raise InvalidArgument("dispatch_many takes a function; dispatch Commands one by one")
        if isinstance(args_list, str | bytes | Mapping) or not isinstance(args_list, Iterable):
            raise InvalidArgument(
                f"args_list must be a list of argument lists, not {type(args_list).__name__}"
            )
        items = list(args_list)
        if unique_key is not None and len(items) > 1:
            raise InvalidArgument("unique_key cannot be shared by several tasks")
        options = _spec.spec_options(
            exclusive_resources=exclusive_resources,
            shared_resources=shared_resources,
            task_group=task_group,
            depends_on=depends_on,
            immediate=immediate,
            deferred=deferred,
            versions=versions,
            priority=priority,
            not_before=not_before,
            timeout=timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            allow_failure=allow_failure,
            unique_key=unique_key,
            worker_type=worker_type,
        )
        path = _function_path(func, _spec.check_bool(validate, "validate"))
        specs = []
        for index, args in enumerate(items):
            try:
                arg_list, kwarg_dict = _spec.check_json_args(args, kwargs)
            except InvalidArgument as exc:
                raise type(exc)(f"args_list[{index}]: {exc}") from None
            payload = _spec.function_payload(path, arg_list, kwarg_dict)
            specs.append({"kind": "function", "name": path, "payload": payload, **options})
        if not specs:
            return []
        return [Task(self, task_id) for task_id in self._dispatch_specs(specs)]

    def _dispatch_specs(self, specs: list[dict[str, Any]]) -> list[int]:
        text = json.dumps(specs, allow_nan=False, separators=(",", ":"))
        ids = self._core.dispatch(text)
        if len(ids) != len(specs):  # pragma: no cover - a core bug
            raise RuntimeError(f"the core stored {len(ids)} tasks for {len(specs)} specs")
        return ids

    # -- reading and canceling ------------------------------------------------------------

    def _task_data(self, task_id: int) -> dict[str, Any]:
        text = self._core.get_task(task_id)
        if text is None:
            raise NotFound(f"no task with id {task_id}")
        data: dict[str, Any] = json.loads(text)
        return data

    def get_task(self, task_id: Task | int) -> Task:
        """Return task ``task_id``, read now; raise NotFound if there is none."""
        tid = _spec.check_id(task_id, "task_id")
        return Task(self, tid, self._task_data(tid))

    def list_tasks(
        self,
        state: str | None = None,
        task_group: TaskGroup | int | None = None,
        limit: int = 100,
        *,
        newest_first: bool = False,
    ) -> list[Task]:
        """Return up to ``limit`` tasks, oldest first (or newest first), optionally filtered
        by ``state`` and ``task_group``."""
        if state is not None and state not in _spec.TASK_STATES:
            raise InvalidArgument(
                f"state must be one of {', '.join(_spec.TASK_STATES)}, not {state!r}"
            )
        group = None if task_group is None else _spec.check_id(task_group, "task_group")
        if not _spec.is_int(limit) or limit < 1:
            raise InvalidArgument(f"limit must be a positive integer, not {limit!r}")
        query = {
            "state": state,
            "task_group": group,
            "limit": limit,
            "newest_first": _spec.check_bool(newest_first, "newest_first"),
        }
        rows: list[dict[str, Any]] = json.loads(self._core.list_tasks(json.dumps(query)))
        return [Task(self, int(row["id"]), row) for row in rows]

    def cancel_task(self, task_id: Task | int) -> Task:
        """Cancel a task: a waiting or blocked one ends ``canceled``, a running one goes
        ``canceling`` until its worker has stopped it. A finished task is left as it is.
        Returns the task, read after the change; raises NotFound if there is none."""
        tid = _spec.check_id(task_id, "task_id")
        self._core.cancel_task(tid)
        return self.get_task(tid)

    def create_task_group(self, description: str = "") -> TaskGroup:
        """Create a task group to dispatch tasks into."""
        if not isinstance(description, str):
            raise InvalidArgument(f"description must be a string, not {type(description).__name__}")
        return TaskGroup(self._core.create_task_group(description), description)

    def cancel_task_group(self, group_id: TaskGroup | int) -> int:
        """Cancel every unfinished task of a group; return how many were canceled.

        Raises NotFound if there is no such group."""
        return self._core.cancel_task_group(_spec.check_id(group_id, "group_id"))

    def workers(self, include_offline: bool = False) -> list[WorkerRecord]:
        """Return the registered workers (only online ones unless ``include_offline``)."""
        rows = json.loads(self._core.workers(_spec.check_bool(include_offline, "include_offline")))
        return [WorkerRecord.from_json(row) for row in rows]


def connect(url: str | None = None) -> Engine:
    """Open the store at ``url``.

    ``None`` means ``$TASKENGINE_URL``, else :data:`DEFAULT_URL` (an SQLite file in the
    current directory). URLs look like ``sqlite:///path/to/file.db`` or
    ``postgresql://user@host:port/dbname``. Raises InvalidUrl for an URL no backend takes and
    StoreUnavailable when the store can't be reached. Call :meth:`Engine.install` once to
    create the schema.
    """
    return Engine(_spec.store_url(url))
