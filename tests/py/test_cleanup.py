"""Cancel and timeout run a function task's cleanup (TaskCanceled) before its group dies."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import sample_tasks
from conftest import WorkerProcess
from taskengine import Engine

StartWorker = Callable[..., WorkerProcess]

# The executor leaves as soon as the task's cleanup ran, so a cancel ends well
# inside the worker's default 3 s kill grace; the margin is for a loaded machine.
QUICK = 2.5


def _wait_running(engine: Engine, task_id: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while engine.get_task(task_id).state != "running":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.02)


def test_cancel_runs_the_cleanup_and_ends_canceled(
    engine: Engine, worker: StartWorker, tmp_path: Path
) -> None:
    worker(concurrency=1)
    marker = tmp_path / "canceled.txt"
    task = engine.dispatch(sample_tasks.sleep_with_cleanup, args=(str(marker), 300))
    _wait_running(engine, task.id)
    # Cancel once the function is inside its try block (the executor may still be starting).
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text(encoding="utf-8") == "started"):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.02)
    started = time.monotonic()
    engine.cancel_task(task.id)
    task.wait(timeout=20)
    assert task.state == "canceled"
    assert time.monotonic() - started < QUICK
    assert marker.read_text(encoding="utf-8") == "cleaned up"
    # The slot gets a fresh executor and keeps working.
    after = engine.dispatch(sample_tasks.add, args=(1, 2)).wait(timeout=20)
    assert after.result == 3


def test_timeout_runs_the_cleanup_and_fails_with_timeout(
    engine: Engine, worker: StartWorker, tmp_path: Path
) -> None:
    worker(concurrency=1)
    marker = tmp_path / "timed-out.txt"
    task = engine.dispatch(
        sample_tasks.sleep_with_cleanup, args=(str(marker), 300), timeout=1
    ).wait(timeout=30)
    assert task.state == "failed"
    assert task.reason == "timeout"
    assert task.error is not None and task.error["type"] == "Timeout"
    assert marker.read_text(encoding="utf-8") == "cleaned up"
