"""The sink every benchmark task writes to, whatever system runs it.

A task appends one line ``<id> <value>`` with a single ``os.write`` on an ``O_APPEND`` file
of its own process (``<dir>/<pid>.log``): cheap (one syscall), identical for every system,
and readable after the run to check that every task ran exactly once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SINK_ENV = "BENCH_SINK_DIR"

_fd: int | None = None
_fd_pid = 0


def _sink_fd() -> int:
    global _fd, _fd_pid
    pid = os.getpid()
    if _fd is None or _fd_pid != pid:  # a forked child must not share its parent's file
        directory = os.environ[SINK_ENV]
        _fd = os.open(
            os.path.join(directory, f"{pid}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        _fd_pid = pid
    return _fd


def record(task_id: int, dispatched_at: float) -> None:
    """Record that task ``task_id`` started: its start time minus ``dispatched_at``.

    With ``dispatched_at`` 0 the value is the absolute start time (``time.time()``).
    """
    now = time.time()
    os.write(_sink_fd(), f"{task_id} {now - dispatched_at!r}\n".encode())


def read(directory: Path) -> list[tuple[int, float]]:
    """Every record of the sink directory, in no particular order."""
    records: list[tuple[int, float]] = []
    for path in directory.glob("*.log"):
        for line in path.read_text().splitlines():
            if line:
                task_id, value = line.split()
                records.append((int(task_id), float(value)))
    return records


def count(directory: Path) -> int:
    """How many records the sink holds so far (lines of all files)."""
    total = 0
    for path in directory.glob("*.log"):
        with open(path, "rb") as handle:
            total += handle.read().count(b"\n")
    return total


def verify(records: list[tuple[int, float]], expected: range) -> str | None:
    """None if every id of ``expected`` ran exactly once, else what is wrong."""
    ids = [task_id for task_id, _ in records]
    seen = set(ids)
    missing = len(set(expected) - seen)
    extra = len(seen - set(expected))
    duplicates = len(ids) - len(seen)
    if missing or extra or duplicates:
        return f"{missing} missing, {extra} unexpected, {duplicates} duplicate of {len(expected)}"
    return None
