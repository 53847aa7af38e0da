"""The in-process worker behind ``dispatch(..., immediate=True)`` (pulpcore's semantics).

An :class:`~taskengine.engine.Engine` that dispatches an immediate task registers this
process as a worker (lazily, once per worker type), claims exactly that task if it may start
now, runs the function in the calling thread with the claimed payload (``$retval`` markers
resolved) and records the outcome, just as the executor of a native worker would: the same
error records (:mod:`taskengine._traceback`), the same ``NotSerializable`` error for a result
JSON cannot hold. While a task runs a daemon thread heartbeats every second on a connection of
its own, so peers do not declare the worker lost; a worker that was declared lost anyway
registers again. The worker is unregistered when its Engine is garbage collected or the
interpreter exits.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from taskengine import __version__, _core
from taskengine._context import BatchingSink, TaskContext
from taskengine._current import activate, deactivate
from taskengine._functions import resolve
from taskengine._traceback import ErrorInfo, error_info, serialize_exception
from taskengine.errors import FunctionNotFound

__all__ = [
    "HEARTBEAT_INTERVAL",
    "IMMEDIATE_COMPONENT",
    "UNAVAILABLE_REASON",
    "InProcessWorker",
    "execute",
]

UNAVAILABLE_REASON = "Resources temporarily unavailable"
"""Why an immediate, non-deferred task that could not start at once was canceled."""

IMMEDIATE_COMPONENT = "taskengine-immediate"
"""A version component only in-process workers provide.

A task dispatched with ``immediate=True, deferred=False`` requires it, so no native worker can
take the task between its dispatch and the in-process claim."""

HEARTBEAT_INTERVAL = 1.0
"""Seconds between heartbeats while an immediate task runs."""

_CLOSE_TIMEOUT = 5.0
_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_logger = logging.getLogger("taskengine.immediate")


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run an ``async def`` task's coroutine to completion.

    ``asyncio.run`` in this thread, or, when this thread already runs an event loop (dispatch
    was called from async code), in a helper thread that this one waits for.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()  # the helper sees taskengine.current() too

    def target() -> None:
        try:
            outcome["result"] = context.run(asyncio.run, coroutine)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    helper = threading.Thread(target=target, name="taskengine-immediate-async")
    helper.start()
    helper.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _failed(error: ErrorInfo) -> dict[str, Any]:
    return {"state": "failed", "error": error}


def execute(payload: Mapping[str, Any]) -> tuple[dict[str, Any], KeyboardInterrupt | None]:
    """Run a function task's payload here; return the completion's outcome fields.

    The fields are ``{"state": "completed", "result": ...}`` or ``{"state": "failed",
    "error": {"type", "message", "traceback"}}``. Nothing the function raises propagates: a
    KeyboardInterrupt ends the task failed too, and is returned as well, for the caller to
    raise once the outcome is stored.
    """
    path = payload.get("function")
    args = payload.get("args") or []
    kwargs = payload.get("kwargs") or {}
    if not (isinstance(path, str) and isinstance(args, list) and isinstance(kwargs, dict)):
        message = "bad payload: 'function' must be a string, 'args' a list, 'kwargs' an object"
        return _failed(error_info("InvalidRequest", message)), None
    try:
        function = resolve(path)
    except FunctionNotFound as exc:
        return _failed(error_info("FunctionNotFound", str(exc))), None
    except BaseException as exc:  # the module failed to import: report its error
        # skip=2: this frame and resolve()'s; the error starts in the user's module
        interrupt = exc if isinstance(exc, KeyboardInterrupt) else None
        return _failed(serialize_exception(exc, skip=2)), interrupt

    try:
        result = function(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = _run_coroutine(result)
    except KeyboardInterrupt as exc:
        return _failed(serialize_exception(exc, skip=1)), exc
    except BaseException as exc:  # SystemExit included: a task cannot end the caller
        return _failed(serialize_exception(exc, skip=1)), None
    try:
        _encode(result)
    except (TypeError, ValueError, RecursionError) as exc:
        message = (
            f"the result of {path} (a {type(result).__name__}) cannot be stored as JSON: "
            f"{type(exc).__name__}: {exc}"
        )
        return _failed(error_info("NotSerializable", message)), None
    return {"state": "completed", "result": result}, None


class _StoreSink(BatchingSink):
    """Writes an immediate task's output to the store through the caller's connection.

    The connection is the caller's, used only from the caller's thread, so batches go out
    when due as the task logs, and at the end (no timer thread)."""

    def __init__(self, core: _core.Engine, task_id: int, fence: int) -> None:
        self._core = core
        self._task_id = task_id
        self._fence = fence
        super().__init__(self._write_batch, timer=False)

    def _write_batch(self, records: list[dict[str, Any]], progress: list[dict[str, Any]]) -> None:
        output: dict[str, Any] = {"task_id": self._task_id, "fence": self._fence}
        output.update(records=records, progress=progress)
        _core.write_task_output(self._core, _encode([output]))

    def add_artifact(self, path: Path, name: str, size: int) -> None:
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        _core.add_artifact(self._core, self._task_id, self._fence, name, content, digest)


def _installed_version(component: str) -> str | None:
    if component == "taskengine":
        return __version__
    try:
        return importlib.metadata.version(component)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


class InProcessWorker:
    """This process as a worker that runs the immediate tasks one Engine dispatches.

    Claims and completions go through the Engine's own connection, in the calling thread;
    registration and heartbeats through a second connection, which the heartbeat thread uses
    (a core connection must not be used by two threads at once).
    """

    def __init__(self, url: str, core: _core.Engine) -> None:
        """Prepare a worker for the store at ``url``; ``core`` is the Engine's connection."""
        self._url = url
        self._core = core
        self._reset()

    def _reset(self) -> None:
        """Start afresh: at creation, and in a child process after a fork."""
        self._pid = os.getpid()
        self._hostname = socket.gethostname()
        self.name = f"{self._hostname}-{self._pid}-immediate"
        self._lock = threading.Lock()  # guards _beat_core and _ids
        self._beat_core: _core.Engine | None = None
        self._ids: dict[str, int] = {}
        self._state = threading.Lock()  # guards _running and _stop
        self._running = 0
        self._stop: threading.Event | None = None

    # -- registration and heartbeats (under self._lock) -----------------------------------

    def _connection(self) -> _core.Engine:
        if self._beat_core is None:
            self._beat_core = _core.Engine(self._url)
        return self._beat_core

    def _info(self, worker_type: str, metadata: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": self.name,
            "worker_type": worker_type,
            "hostname": self._hostname,
            "pid": self._pid,
            "metadata": metadata,
        }

    def _metadata(self) -> dict[str, Any]:
        return {"versions": {"taskengine": __version__}, "system:host_name": self._hostname}

    def _register(self, connection: _core.Engine, worker_type: str) -> int:
        info = self._info(worker_type, self._metadata())
        worker_id = connection.register_worker(json.dumps(info))
        self._ids[worker_type] = worker_id
        return worker_id

    def worker_id(self, worker_type: str) -> int:
        """Return this process's worker id for ``worker_type``, heartbeating it now.

        Registers the worker on first use, and again when peers declared it lost (its
        heartbeat returns False), so a claimed task is always held by an online worker.
        """
        if os.getpid() != self._pid:
            self._reset()
        with self._lock:
            try:
                connection = self._connection()
                known = self._ids.get(worker_type)
                if known is not None and connection.heartbeat(known):
                    return known
                if known is not None:
                    _logger.info(
                        "in-process worker %s was declared lost; registering again", self.name
                    )
                return self._register(connection, worker_type)
            except BaseException:
                self._beat_core = None  # reconnect next time
                raise

    def beat(self) -> None:
        """Heartbeat every registered worker type once; never raises."""
        with self._lock:
            try:
                connection = self._connection()
                for worker_type, worker_id in list(self._ids.items()):
                    if not connection.heartbeat(worker_id):
                        _logger.warning(
                            "in-process worker %s (%s) was declared lost by its peers; "
                            "registering again",
                            self.name,
                            worker_type,
                        )
                        self._register(connection, worker_type)
            except Exception as exc:
                _logger.warning("heartbeat of in-process worker %s failed: %s", self.name, exc)
                self._beat_core = None

    def _beat_loop(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_INTERVAL):
            self.beat()

    def _beating(self, delta: int) -> None:
        """Count a run starting (+1) or ending (-1); heartbeat while any runs."""
        with self._state:
            self._running += delta
            if self._running > 0 and self._stop is None:
                stop = threading.Event()
                threading.Thread(
                    target=self._beat_loop,
                    args=(stop,),
                    name="taskengine-immediate-heartbeat",
                    daemon=True,
                ).start()
                self._stop = stop
            elif self._running == 0 and self._stop is not None:
                self._stop.set()
                self._stop = None

    def close(self) -> None:
        """Unregister the worker (at garbage collection or exit); never raises."""
        if os.getpid() != self._pid:
            return  # a forked child: the parent's registration is not ours
        with self._state:
            if self._stop is not None:
                self._stop.set()
                self._stop = None
        if not self._lock.acquire(timeout=_CLOSE_TIMEOUT):
            return
        try:
            ids, self._ids = list(self._ids.values()), {}
            if ids:
                connection = self._connection()
                for worker_id in ids:
                    connection.unregister_worker(worker_id)
        except Exception as exc:
            _logger.debug("unregistering in-process worker %s failed: %s", self.name, exc)
        finally:
            self._beat_core = None
            self._lock.release()

    # -- claiming and running (in the calling thread) -------------------------------------

    def claim(
        self, task_id: int, worker_type: str, versions: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """Claim task ``task_id`` if it may start now; return its JSON (payload resolved).

        The worker offers the components ``versions`` asks for as installed in this process
        (``importlib.metadata``), plus :data:`IMMEDIATE_COMPONENT`.
        """
        worker_id = self.worker_id(worker_type)
        provided = {"taskengine": __version__, IMMEDIATE_COMPONENT: "1"}
        for component in versions:
            version = _installed_version(component)
            if version is not None and component != IMMEDIATE_COMPONENT:
                provided[component] = version
        metadata = {**self._metadata(), "versions": provided}
        info = {"id": worker_id, **self._info(worker_type, metadata)}
        text = self._core.claim_task(task_id, json.dumps(info))
        if text is None:
            return None
        task: dict[str, Any] = json.loads(text)
        return task

    def _execute_with_context(
        self, task: Mapping[str, Any]
    ) -> tuple[dict[str, Any], KeyboardInterrupt | None]:
        """:func:`execute` with ``taskengine.current()`` set up for the task.

        Its working directory is created and removed, but not entered: the process's
        working directory is shared with the caller's other threads."""
        workdir = Path(tempfile.mkdtemp(prefix=f"taskengine-task-{task['id']}-"))
        sink = _StoreSink(self._core, task["id"], task["fence"])
        context = TaskContext(task["id"], task.get("attempt") or 1, workdir, sink)
        token = activate(context)
        try:
            return execute(task.get("payload") or {})
        finally:
            deactivate(token)
            try:
                context.close()
            except Exception as exc:  # the outcome still has to be stored
                _logger.warning("output of immediate task %s was not stored: %s", task["id"], exc)
            shutil.rmtree(workdir, ignore_errors=True)

    def run(self, task: Mapping[str, Any]) -> None:
        """Run a claimed task here and store its outcome.

        Raises only a KeyboardInterrupt of the function (after storing the task failed) or a
        store error.
        """
        self._beating(+1)
        try:
            outcome, interrupt = self._execute_with_context(task)
            completion = {"task_id": task["id"], "fence": task["fence"], **outcome}
            if not self._core.complete(_encode(completion)):
                _logger.warning(
                    "task %s ran in process but its outcome was not stored: the attempt was "
                    "handed on (was this worker declared lost?)",
                    task["id"],
                )
        finally:
            self._beating(-1)
        if interrupt is not None:
            raise interrupt
