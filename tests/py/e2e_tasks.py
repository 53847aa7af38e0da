"""Task functions for the end-to-end worker tests (``test_e2e_workers.py``).

Each records what the test needs to judge the engine from the outside: when it started and
ended (``time.time()``, one clock for every process of the host), which worker ran it (the
worker puts its name in ``$TASKENGINE_WORKER``), and its pid and process group.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any


def identity() -> dict[str, Any]:
    """The worker name, pid and process group of the process running the task."""
    return {
        "worker": os.environ.get("TASKENGINE_WORKER"),
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
    }


def append_line(path: str, line: str) -> None:
    """Append one line to ``path`` with a single ``write`` on an ``O_APPEND`` descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def timed(seconds: float) -> dict[str, Any]:
    """Sleep ``seconds``; return when the sleep started and ended, and who ran it."""
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    return {"start": start, "end": end, **identity()}


def append_id(path: str, tag: int) -> int:
    """Append ``tag`` to the file ``path`` (one line); return it."""
    append_line(path, str(tag))
    return tag


def append_id_and_sleep(path: str, tag: int, seconds: float) -> int:
    """Append ``tag`` and the time to ``path`` when the task starts, then sleep ``seconds``."""
    append_line(path, f"{tag} {time.time()}")
    time.sleep(seconds)
    return tag


def _count_attempt(counter: str) -> int:
    """Add one byte to ``counter`` and return its new size: 1 on the first call, and so on."""
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def hang_first(
    log_path: str, tag: str, first_seconds: float, later_seconds: float
) -> dict[str, Any]:
    """Sleep ``first_seconds`` on the first run, ``later_seconds`` on every later one.

    Appends a JSON line ``{"tag", "event": "start"|"end", "run", "t", "worker", "pid",
    "pgid"}`` to ``log_path`` before and after the sleep; ``run`` counts the runs of ``tag``
    (kept in ``log_path.<tag>.runs``). Returns ``{"tag", "run", "worker", "pid", "pgid"}``.
    """
    run = _count_attempt(f"{log_path}.{tag}.runs")
    who = identity()
    append_line(
        log_path, json.dumps({"tag": tag, "event": "start", "run": run, "t": time.time(), **who})
    )
    time.sleep(first_seconds if run == 1 else later_seconds)
    append_line(
        log_path, json.dumps({"tag": tag, "event": "end", "run": run, "t": time.time(), **who})
    )
    return {"tag": tag, "run": run, **who}


def spawn_and_sleep(pid_file: str, seconds: float) -> None:
    """Start a ``sleep 300`` grandchild, append this pid and the child's to ``pid_file`` (one
    a line), then sleep ``seconds``."""
    child = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    append_line(pid_file, f"{os.getpid()}\n{child.pid}")
    time.sleep(seconds)
