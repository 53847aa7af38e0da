"""``Engine`` and ``connect``: dispatching and inspecting tasks in a store.

This is the one module of the Python API that needs the native core; importing it without a
built ``taskengine._core`` raises an ImportError that says how to build it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import operator
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from taskengine import _spec
from taskengine._engine_classes import TaskClassesMixin
from taskengine._engine_jobs import JobsMixin
from taskengine._engine_output import TaskOutputMixin
from taskengine._engine_retention import RetentionMixin
from taskengine._functions import function_path, normalize_path, resolve
from taskengine._native import _core
from taskengine._retval import extract_references
from taskengine._spec import Backoff
from taskengine.command import Command
from taskengine.errors import FunctionNotFound, InvalidArgument, NotFound
from taskengine.task import Task, TaskGroup, WorkerRecord

if TYPE_CHECKING:
    from taskengine._immediate import InProcessWorker

__all__ = ["DEFAULT_URL", "Engine", "connect"]

DEFAULT_URL = _spec.DEFAULT_URL
"""The store ``connect()`` opens when neither an URL nor ``$TASKENGINE_URL`` is given."""

_Func = Callable[..., Any] | str
_NotBefore = datetime | timedelta | float | None
_Ids = Iterable[Task | int]
_Retries = int | Sequence[float] | Backoff


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


class Engine(TaskClassesMixin, JobsMixin, TaskOutputMixin, RetentionMixin):
    """A connection to a taskengine store (SQLite or PostgreSQL), named by URL.

    Every method that writes does so in one transaction and validates its input first, so
    bad input raises :class:`~taskengine.errors.InvalidArgument` and stores nothing.
    """

    def __init__(self, url: str) -> None:
        """Open the store at ``url``; raise InvalidUrl or StoreUnavailable when it can't be."""
        if not isinstance(url, str):
            raise InvalidArgument(f"url must be a string, not {type(url).__name__}")
        self._core = _core.Engine(url)
        self._immediate: InProcessWorker | None = None

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
        retries: _Retries = 0,
        retry_backoff: float | None = None,
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

        Result passing: a :class:`Task` anywhere inside ``args`` or ``kwargs`` (at any depth)
        stands for that task's result. It is stored as the marker ``{"$retval": id}`` (which
        :func:`taskengine.retval` also writes, and which may be written by hand), every task
        referred to so is added to ``depends_on``, and when the task starts its function
        receives the result in the marker's place (``None`` if the dependency did not
        complete and ``allow_failure=True`` let this task run anyway).

        - ``exclusive_resources`` / ``shared_resources``: names of resources the task needs
          alone, or may share with other shared holders, while it runs.
        - ``task_group``: a TaskGroup or its id. ``depends_on``: tasks (or ids) that must
          complete first; with ``allow_failure=True`` the task runs even if they don't
          (otherwise it ends ``skipped``).
        - ``immediate`` / ``deferred``: pulpcore's semantics, see below.
        - ``versions``: ``{"component": "minimum version"}`` the worker must provide;
          ``worker_type``: ``worker``, ``server`` or ``signing``.
        - ``priority``: higher first. ``not_before``: an aware datetime, or seconds (or a
          timedelta) from now. ``timeout``: seconds an attempt may run on a worker before it
          is killed.
        - ``retries``: what happens after a failed attempt. An int: that many more attempts,
          ``retry_backoff`` (default 1) seconds apart at first, doubling each time up to an
          hour, half of each delay random (jitter). A list or tuple of seconds: one retry per
          item, waiting that long (``retries=[1, 5, 30]``: three retries). A
          :class:`taskengine.Backoff`: exponential backoff with the given base, maximum and
          jitter. ``retry_backoff`` only goes with an int.
        - ``unique_key``: at most one unfinished task with this key.
        - ``validate``: import the function's module now and check the function exists.

        Immediate dispatch (function tasks only; a Command raises InvalidArgument): with
        ``immediate=True`` the task is stored as usual, then this process claims it at once
        if it may start now (its dependencies done, no resource conflict with running tasks
        or with tasks waiting before it, due, and a worker of its ``worker_type`` with its
        ``versions``, as installed in this process, may run it). Claimed, it runs here, in
        the calling thread, as this process's in-process worker ``<host>-<pid>-immediate``
        (registered on first use, heartbeating every second while it runs, unregistered at
        exit): with its arguments' results resolved, ``async def`` functions through
        ``asyncio.run``. Its outcome is stored as a worker's would be and the returned task
        is read after it: completed with the result, or failed with the error and traceback
        (an exception of the function is not raised here, nor a result JSON cannot hold,
        which fails the task with ``NotSerializable``; only a KeyboardInterrupt is raised
        again once the task is stored failed). A retry after a failed attempt goes to the
        workers. ``timeout`` is not enforced on the in-process attempt, and canceling it only
        takes effect when it returns: immediate functions must be quick. If the task cannot
        start now: with ``deferred=True`` it stays queued for the workers (a worker may also
        have taken it first) and is returned waiting or blocked; with ``deferred=False`` it
        is canceled with the reason ``"Resources temporarily unavailable"`` and returned.
        Such a task requires the in-process worker (the component
        ``taskengine-immediate``), so no worker ever runs it, and it takes no ``retries``.
        ``immediate`` and ``deferred`` cannot both be False.

        Raises InvalidArgument (or FunctionNotFound, NotSerializable) naming the problem;
        nothing is stored then.
        """
        # Every option left at its default object: its checks and JSON were done at import.
        defaults = all(
            map(
                operator.is_,
                (
                    exclusive_resources,
                    shared_resources,
                    task_group,
                    depends_on,
                    immediate,
                    deferred,
                    versions,
                    priority,
                    not_before,
                    timeout,
                    retries,
                    retry_backoff,
                    allow_failure,
                    unique_key,
                    worker_type,
                ),
                _DISPATCH_DEFAULTS,
            )
        )
        options = (
            _spec.DEFAULT_OPTIONS
            if defaults
            else _spec.spec_options(
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
        )
        if isinstance(func, Command):
            if immediate:
                raise InvalidArgument(
                    "immediate applies to function tasks: a Command always runs on a worker"
                )
            if args or kwargs:
                raise InvalidArgument(
                    "args and kwargs do not apply to a Command: put arguments in its argv"
                )
            spec = {"kind": "command", "name": func.name, "payload": func.payload(), **options}
        else:
            path = _function_path(func, _spec.check_bool(validate, "validate"))
            payload = _spec.function_payload_json(path, args, kwargs) if defaults else None
            if payload is not None:
                return Task(self, self._core.dispatch_function(_CORE_DEFAULTS, path, payload))
            spec = self._function_spec(path, args, kwargs, options)
            if immediate and not deferred:
                from taskengine._immediate import IMMEDIATE_COMPONENT

                requirements = spec["requirements"]
                versions_needed = {**requirements["versions"], IMMEDIATE_COMPONENT: "1"}
                spec["requirements"] = {**requirements, "versions": versions_needed}
        (task_id,) = self._dispatch_specs([spec])
        if not immediate:
            return Task(self, task_id)
        return self._run_immediately(task_id, spec["requirements"], deferred)

    def _function_spec(
        self, path: str, args: object, kwargs: object, options: dict[str, Any]
    ) -> dict[str, Any]:
        """Return the TaskSpec of a function task, Tasks in its arguments made markers and
        every task the markers refer to added to its ``depends_on``."""
        args, kwargs, references = extract_references(args, kwargs, self.url)
        arg_list, kwarg_dict = _spec.check_json_args(args, kwargs)
        payload = _spec.function_payload(path, arg_list, kwarg_dict)
        spec = {"kind": "function", "name": path, "payload": payload, **options}
        if references:
            spec["depends_on"] = list(dict.fromkeys([*options["depends_on"], *references]))
        return spec

    def _in_process_worker(self) -> InProcessWorker:
        """This process's worker for immediate tasks, created on first use."""
        worker = self._immediate
        if worker is None:
            from taskengine._immediate import InProcessWorker

            worker = self._immediate = InProcessWorker(self.url, self._core)
            # At garbage collection of this Engine, or at interpreter exit (atexit).
            weakref.finalize(self, worker.close)
        return worker

    def _run_immediately(
        self, task_id: int, requirements: Mapping[str, Any], deferred: bool
    ) -> Task:
        """Claim the just dispatched task ``task_id`` and run it here, else defer or cancel it.

        See the immediate dispatch in :meth:`dispatch`."""
        from taskengine._immediate import UNAVAILABLE_REASON

        worker = self._in_process_worker()
        try:
            claimed = worker.claim(task_id, requirements["worker_type"], requirements["versions"])
        except BaseException as exc:
            if not deferred:  # no worker could ever run it: don't leave it waiting
                with contextlib.suppress(Exception):  # the store is failing already
                    self._core.cancel_task(task_id, f"the immediate claim failed: {exc}")
            raise
        if claimed is not None:
            worker.run(claimed)
        elif not deferred:
            self._core.cancel_task(task_id, UNAVAILABLE_REASON)
        return self.get_task(task_id)

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
        retries: _Retries = 0,
        retry_backoff: float | None = None,
        allow_failure: bool = False,
        unique_key: str | None = None,
        worker_type: str = "worker",
        validate: bool = True,
    ) -> list[Task]:
        """Queue one task of ``func`` per item of ``args_list``, in one transaction.

        Each item is the positional arguments of one task; ``kwargs`` and every option are
        shared by all (see :meth:`dispatch`). Tasks (and ``{"$retval": id}`` markers) in an
        item's arguments add dependencies to that task only. ``immediate=True`` raises
        InvalidArgument: immediate tasks are dispatched one at a time. Returns the tasks in
        the order of ``args_list``. Either all are stored or, on any error, none.
        """
        if isinstance(func, Command):
            raise InvalidArgument("dispatch_many takes a function; dispatch Commands one by one")
        if isinstance(args_list, str | bytes | Mapping) or not isinstance(args_list, Iterable):
            raise InvalidArgument(
                f"args_list must be a list of argument lists, not {type(args_list).__name__}"
            )
        if immediate is True:
            raise InvalidArgument(
                "dispatch_many cannot run tasks immediately: dispatch immediate tasks one at a time"
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
        if not items:
            return []
        ids = self._dispatch_function_batch(path, items, kwargs, options)
        if ids is not None:
            return [Task(self, task_id) for task_id in ids]
        specs = []
        for index, args in enumerate(items):
            try:
                specs.append(self._function_spec(path, args, kwargs, options))
            except InvalidArgument as exc:
                raise type(exc)(f"args_list[{index}]: {exc}") from None
        return [Task(self, task_id) for task_id in self._dispatch_specs(specs)]

    def _dispatch_function_batch(
        self, path: str, items: list[Any], kwargs: object, options: dict[str, Any]
    ) -> list[int] | None:
        """dispatch_many's fast path: the shared spec once, all arguments in one JSON list.

        Returns None, having stored nothing, when the items need the per-item path (see
        :func:`taskengine._spec.args_list_json`); that path then dispatches or names the
        item at fault exactly as before.
        """
        text = _spec.args_list_json(items)
        if text is None:
            return None
        try:
            shared = self._function_spec(path, (), kwargs, options)
        except InvalidArgument:
            return None  # bad kwargs: the per-item path reports them as args_list[0]'s
        spec_text = json.dumps(shared, allow_nan=False, separators=(",", ":"))
        ids = self._core.dispatch_function_batch(spec_text, text, _spec.MAX_DEPTH)
        if ids is not None and len(ids) != len(items):  # pragma: no cover - a core bug
            raise RuntimeError(f"the core stored {len(ids)} tasks for {len(items)} items")
        return ids

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


_DISPATCH_OPTIONS = (
    "exclusive_resources",
    "shared_resources",
    "task_group",
    "depends_on",
    "immediate",
    "deferred",
    "versions",
    "priority",
    "not_before",
    "timeout",
    "retries",
    "retry_backoff",
    "allow_failure",
    "unique_key",
    "worker_type",
)
"""The options of ``Engine.dispatch`` that make the TaskSpec, in the order it checks them."""
_DISPATCH_DEFAULTS = tuple(
    inspect.signature(Engine.dispatch).parameters[name].default for name in _DISPATCH_OPTIONS
)
_CORE_DEFAULTS = _core.DispatchOptions(
    json.dumps(_spec.DEFAULT_OPTIONS, allow_nan=False, separators=(",", ":"))
)
"""The core's parsed copy of the default options, for dispatch's fast path."""


def connect(url: str | None = None) -> Engine:
    """Open the store at ``url``.

    ``None`` means ``$TASKENGINE_URL``, else :data:`DEFAULT_URL` (an SQLite file in the
    current directory). URLs look like ``sqlite:///path/to/file.db`` or
    ``postgresql://user@host:port/dbname``. Raises InvalidUrl for an URL no backend takes and
    StoreUnavailable when the store can't be reached. Call :meth:`Engine.install` once to
    create the schema.
    """
    return Engine(_spec.store_url(url))
