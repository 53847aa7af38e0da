"""Task functions for the poison-task end-to-end tests (``test_e2e_poison.py``).

A poison task kills what runs it: its Python executor (``exit_executor``) or its worker
(``kill_worker``). Before it does, it appends a JSON line saying which run of it this is, and
which worker, pid, parent pid and process group ran it, so the test can judge the engine from
the outside. The other tasks are the ordinary traffic that must keep flowing.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

WORKER_BINARY = "taskengine-worker"


def identity() -> dict[str, Any]:
    """The worker name, pid, parent pid and process group of the process running the task."""
    return {
        "worker": os.environ.get("TASKENGINE_WORKER"),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
    }


def append(path: str, data: bytes) -> int:
    """Append ``data`` to ``path`` with a single ``write`` on an ``O_APPEND`` descriptor;
    return the file's size afterwards."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def record_run(log_path: str) -> dict[str, Any]:
    """Append ``{"run", "t", "worker", "pid", "ppid", "pgid"}`` to ``log_path``; ``run``
    counts the runs recorded there (kept in ``log_path.runs``). Return the record."""
    run = append(f"{log_path}.runs", b"x")
    event = {"run": run, "t": time.time(), **identity()}
    append(log_path, json.dumps(event).encode() + b"\n")
    return event


def quick(tag: int) -> dict[str, Any]:
    """An ordinary task: return ``tag`` and who ran it."""
    return {"tag": tag, **identity()}


def exit_executor(log_path: str) -> None:
    """Record the run, then end the Python executor process at once with status 3."""
    record_run(log_path)
    os._exit(3)


def _is_worker(pid: int) -> bool:
    """Whether ``pid`` runs the ``taskengine-worker`` binary."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, UnicodeDecodeError):
        return False
    return os.path.basename(argv0) == WORKER_BINARY


def kill_worker(log_path: str) -> None:
    """Record the run, then SIGKILL the worker, the parent of this executor process.

    Raises RuntimeError instead when the parent is not a ``taskengine-worker`` (so a change in
    how executors are started can't make it kill anything else). After the kill it sleeps: the
    worker's death should take this process with it.
    """
    event = record_run(log_path)
    parent = event["ppid"]
    if not _is_worker(parent):
        raise RuntimeError(f"parent {parent} of executor {event['pid']} is not a worker")
    os.kill(parent, signal.SIGKILL)
    time.sleep(60)


def rendezvous(path: str, tag: int, count: int, timeout: float) -> dict[str, Any]:
    """Append ``tag`` to ``path`` and wait until ``count`` tasks did: the tasks of one
    rendezvous complete only if they all run at once. Raises TimeoutError after ``timeout``
    seconds. Returns ``tag`` and who ran it."""
    append(path, f"{tag}\n".encode())
    deadline = time.monotonic() + timeout
    while len(Path(path).read_text().splitlines()) < count:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"only some of {count} tasks met within {timeout}s")
        time.sleep(0.02)
    return {"tag": tag, **identity()}
