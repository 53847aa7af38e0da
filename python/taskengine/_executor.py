"""The long-lived Python executor that the native worker runs function tasks in.

Started as ``python -m taskengine._executor [--import MODULE]...`` in its own process group,
one per worker slot; it imports the user's modules once and then runs many tasks. It speaks
JSON lines over pipes:

- out, first: ``{"ready": true, "pid": N}``, or ``{"ready": false, "error": {...}}`` and exit
  status 1 when an ``--import`` failed;
- in, one per task: ``{"id": 7, "attempt": 1, "function": "mod:fn", "args": [...],
  "kwargs": {...}}``;
- out, one per task: ``{"id": 7, "ok": true, "result": ...}`` or ``{"id": 7, "ok": false,
  "error": {"type", "message", "traceback": [frames]}}``; other records about the running
  task (see :func:`emit`) carry its ``id`` and no ``ok``: what ``taskengine.current()``
  produces goes out as ``{"id": 7, "records": [...], "progress": [...]}`` batches and
  ``{"id": 7, "artifacts": [{"name", "path", "sha256"}]}`` (a staged copy the worker stores
  and removes), all before the task's response (:mod:`taskengine._executor_context`).

End of input ends the process with status 0. The protocol pipes are private: at start they are
moved to new, non-inheritable descriptors, descriptor 0 becomes ``/dev/null`` and descriptor 1
becomes a copy of 2, so whatever tasks (or their children) print goes to stderr and never
corrupts the protocol, and nothing a task reads from stdin steals a request.

This module must not need the native module ``taskengine._core``: the package's ``__init__``
imports nothing native, so ``python -m taskengine._executor`` works without it. The request
loop is the throughput-critical path: no imports, logging or allocations beyond the JSON
work per task.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from types import CoroutineType
from typing import Any, BinaryIO

from taskengine._executor_context import TaskRun, go_home
from taskengine._functions import resolve
from taskengine._traceback import error_info, serialize_exception
from taskengine.errors import FunctionNotFound, TaskCanceled

__all__ = ["current_task_id", "emit", "main"]

_channel: int = -1  # the protocol's output descriptor, once main() has set it up
_current_id: int | None = None
_run: TaskRun | None = None  # the running task's working directory and context
_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_decode = json.loads


def _write(data: bytes) -> None:
    """Write all of ``data`` to the protocol channel (one line, unbuffered)."""
    written = os.write(_channel, data)
    if written < len(data):  # a pipe takes a short line whole: long ones only
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(_channel, view) :]


def _send(message: dict[str, Any]) -> None:
    _write(_encode(message).encode("ascii") + b"\n")


def current_task_id() -> int | None:
    """Return the protocol id of the request being run, or None between tasks."""
    return _current_id


def emit(record: dict[str, Any]) -> None:
    """Send ``record`` (a log record, progress) about the running task to the worker.

    The record goes out as one line with the running task's ``id`` added; it must be JSON
    serialisable. Does nothing outside a task, or when this process is not an executor.
    """
    if _current_id is None or _channel < 0:
        return
    if "ok" in record:
        raise ValueError("a record about a running task must not have an 'ok' key")
    _send({**record, "id": _current_id})


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    import asyncio  # only processes that run async tasks pay for asyncio

    return asyncio.run(coroutine)


def _error_line(request_id: object, error: Any) -> bytes:
    return _encode({"id": request_id, "ok": False, "error": error}).encode("ascii") + b"\n"


def _not_serializable(request_id: object, path: str, result: object, exc: BaseException) -> bytes:
    message = (
        f"the result of {path} (a {type(result).__name__}) cannot be stored as JSON: "
        f"{type(exc).__name__}: {exc}"
    )
    return _error_line(request_id, error_info("NotSerializable", message))


def _serve(requests: BinaryIO) -> int:
    """Run requests from ``requests`` until end of input; return the exit status."""
    global _current_id, _run
    functions: dict[str, Callable[..., Any]] = {}
    write = _write
    encode = _encode
    decode = _decode
    coroutine_type = CoroutineType
    for line in requests:
        if not line.strip():
            continue
        request: Any = None
        try:
            request = decode(line.decode())  # a str: loads() skips guessing the encoding
            request_id = request["id"]
            path = request["function"]
            args = request.get("args") or []
            kwargs = request.get("kwargs") or {}
            if not (isinstance(path, str) and isinstance(args, list) and isinstance(kwargs, dict)):
                raise TypeError("'function' must be a string, 'args' a list, 'kwargs' an object")
        except Exception as exc:
            request_id = request.get("id") if isinstance(request, dict) else None
            if request_id is None:
                sys.stderr.write(f"taskengine executor: unreadable request {line[:200]!r}: {exc}\n")
                return 2
            write(_error_line(request_id, error_info("InvalidRequest", f"bad request: {exc}")))
            continue

        function = functions.get(path)
        if function is None:
            go_home()  # relative sys.path entries name directories from there
            try:
                function = resolve(path)
            except FunctionNotFound as exc:
                write(_error_line(request_id, error_info("FunctionNotFound", str(exc))))
                continue
            except BaseException as exc:  # the module failed to import: report its error
                # skip=2: this frame and resolve()'s; the error starts in the user's module
                write(_error_line(request_id, serialize_exception(exc, skip=2)))
                continue
            functions[path] = function

        _current_id = request_id
        try:
            # Inside the try: a working directory that cannot be made fails the task only.
            run = _run = TaskRun(request_id, request.get("attempt") or 1, _send)
            try:
                result = function(*args, **kwargs)
                if type(result) is coroutine_type:
                    result = _run_coroutine(result)
            finally:
                _run = None
                run.finish()  # the task's output goes out before its result
        except BaseException as exc:  # SystemExit included: a task cannot end the executor
            _current_id = None
            go_home()  # source lines of relative file names are found from there
            write(_error_line(request_id, serialize_exception(exc, skip=1)))
            if isinstance(exc, TaskCanceled):
                # The group is being terminated: leave now rather than make the worker
                # wait out the grace period. The worker starts a fresh executor.
                return 0
            continue
        _current_id = None
        try:
            data = b"null" if result is None else encode(result).encode("ascii")
        except (TypeError, ValueError, RecursionError) as exc:
            write(_not_serializable(request_id, path, result, exc))
            continue
        if type(request_id) is int:  # the worker's ids are: skip the dict and its keys
            write(b'{"id":%d,"ok":true,"result":%b}\n' % (request_id, data))
        else:
            identity = encode(request_id).encode("ascii")
            write(b'{"id":%b,"ok":true,"result":%b}\n' % (identity, data))
    return 0


def _on_terminate(signum: int, frame: object) -> None:
    """SIGTERM: cancel or timeout of the running task (its cleanup runs), or a stop when idle."""
    if _current_id is not None:
        if _run is not None:
            _run.abort()
        raise TaskCanceled("the task was canceled or timed out; the worker is stopping it")
    raise SystemExit(0)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m taskengine._executor",
        description="Run taskengine function tasks sent as JSON lines on stdin (used by "
        "taskengine-worker; not meant to be run by hand).",
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE before reporting ready (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Set up the private protocol pipes, import modules, then serve requests."""
    global _channel
    options = _parse_args(argv)

    null = os.open(os.devnull, os.O_RDWR)
    while null <= 2:  # it filled a closed standard descriptor (no stderr): leave it there
        if null == 2:
            sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
        null = os.open(os.devnull, os.O_RDWR)
    requests = os.fdopen(os.dup(0), "rb")
    _channel = os.dup(1)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    signal.signal(signal.SIGTERM, _on_terminate)
    try:
        try:
            for module in options.imports:
                importlib.import_module(module)
        except BaseException as exc:  # reported to the worker, which decides what it means
            _send({"ready": False, "error": serialize_exception(exc, skip=1)})
            return 1
        _send({"ready": True, "pid": os.getpid()})
        return _serve(requests)
    except BrokenPipeError:  # the worker went away: nobody is left to answer
        return 1


if __name__ == "__main__":
    # Run as ``python -m``, this file is the module ``__main__``; tasks that import
    # ``taskengine._executor`` (to call emit()) must see the state main() sets up, so run
    # main() of the module imported under its real name.
    from taskengine import _executor

    sys.exit(_executor.main())
