"""Task functions the Python tests dispatch and the executor tests call."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any


def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


def _check_positive(value: int) -> None:
    if value <= 0:
        raise ValueError(f"value must be positive, got {value}")


def fail(value: int = -1) -> None:
    """Raise ValueError from a helper, so the traceback has two frames of this module."""
    secret_local = "visible in the traceback"
    _check_positive(value)
    del secret_local


def not_json() -> object:
    """Return something JSON cannot hold."""
    return {1, 2, 3}


def nan() -> float:
    """Return NaN, which strict JSON cannot hold."""
    return float("nan")


def sleep(seconds: float) -> float:
    """Sleep, then return the seconds slept."""
    time.sleep(seconds)
    return seconds


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Return the arguments as they arrived."""
    return {"args": list(args), "kwargs": kwargs}


async def async_add(a: int, b: int) -> int:
    """An ``async def`` task: awaits, then returns ``a + b``."""
    await asyncio.sleep(0.01)
    return a + b


def getpid() -> int:
    """The pid of the process running the task."""
    return os.getpid()


def noop() -> None:
    """Do nothing (for throughput)."""


def chatty(text: str) -> str:
    """Print to stdout and stderr, which must not disturb the protocol."""
    print(text)
    print('{"id": 0, "ok": true, "result": "fake"}')
    sys.stdout.flush()
    print(text, file=sys.stderr)
    os.write(1, b"raw write to fd 1\n")
    return text


def read_stdin() -> str:
    """Read stdin, which must be empty for a task (not the protocol's requests)."""
    return sys.stdin.read()


def exit_task(code: int) -> None:
    """Call sys.exit inside a task."""
    sys.exit(code)


def report(count: int) -> int:
    """Send ``count`` progress records through the executor."""
    from taskengine import _executor

    for i in range(count):
        _executor.emit({"progress": {"current": i + 1, "total": count}})
    return count


class Tools:
    """Holds a static method, reachable as ``sample_tasks:Tools.double``."""

    @staticmethod
    def double(value: int) -> int:
        """Return ``2 * value``."""
        return 2 * value


def recurse(depth: int) -> int:
    """Recurse until Python gives up (a traceback thousands of frames deep)."""
    return recurse(depth + 1) + 1


def executor_file() -> str:
    """The file of the ``taskengine._executor`` module serving this task."""
    return str(sys.modules["taskengine._executor"].__file__)


def sleep_with_cleanup(marker: str, seconds: float) -> str:
    """Sleep; on cancel or timeout, record that the cleanup ran (TaskCanceled unwinds here).
    Writes "started" to ``marker`` once inside the ``try``, so a test can cancel after that."""
    import time

    try:
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write("started")
        time.sleep(seconds)
        return "slept"
    finally:
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write("cleaned up")
