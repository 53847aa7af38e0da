"""Retention: ``Engine.prune_tasks``, ``taskengine tasks prune`` and the worker's
``--retention`` policy, on both stores with real workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from conftest import WorkerProcess
from taskengine import InvalidArgument, NotFound
from taskengine.cli import build_parser
from test_cli import run_cli

if TYPE_CHECKING:
    from taskengine import Engine, Task


def _finished(engine: Engine, worker: Callable[..., WorkerProcess], count: int) -> list[Task]:
    worker()
    tasks = [engine.dispatch("sample_tasks:add", args=(i, 1)) for i in range(count)]
    for task in tasks:
        assert task.wait(timeout=60).state == "completed"
    return tasks


def _exists(engine: Engine, task: Task) -> bool:
    try:
        engine.get_task(task.id)
    except NotFound:
        return False
    return True


def test_prune_tasks_deletes_what_finished_long_enough_ago(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    old = _finished(engine, worker, 3)
    time.sleep(1.0)
    young = engine.dispatch("sample_tasks:add", args=(1, 1))
    assert young.wait(timeout=60).state == "completed"
    waiting = engine.dispatch("sample_tasks:add", args=(1, 1), not_before=3600)

    assert engine.prune_tasks(older_than=timedelta(seconds=0.5)) == 3
    assert not any(_exists(engine, task) for task in old)
    assert _exists(engine, young) and _exists(engine, waiting)
    assert engine.prune_tasks(older_than=0.5) == 0
    assert engine.prune_tasks(older_than=0) == 1  # the young one; the waiting one stays
    assert _exists(engine, waiting)


def test_prune_tasks_narrows_by_state(engine: Engine) -> None:
    canceled = engine.dispatch("sample_tasks:add", args=(1, 1))
    engine.cancel_task(canceled)
    kept = engine.dispatch("sample_tasks:add", args=(1, 1))
    engine.cancel_task(kept)
    assert engine.prune_tasks(older_than=0, states=["failed"]) == 0
    assert engine.prune_tasks(older_than=0, states=["canceled", "completed"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"older_than": -1}, "older_than"),
        ({"older_than": "7d"}, "older_than"),
        ({"older_than": float("nan")}, "older_than"),
        ({"older_than": 0, "states": ["running"]}, "final states"),
        ({"older_than": 0, "states": "completed"}, "list of task states"),
        ({"older_than": 0, "include_builds": "yes"}, "include_builds"),
    ],
)
def test_prune_tasks_rejects_bad_input_and_deletes_nothing(
    engine: Engine, kwargs: dict[str, object], message: str
) -> None:
    task = engine.dispatch("sample_tasks:add", args=(1, 1))
    engine.cancel_task(task)
    with pytest.raises(InvalidArgument, match=message):
        engine.prune_tasks(**kwargs)  # type: ignore[arg-type]
    assert _exists(engine, task)


def test_prune_deletes_in_batches_until_done(engine: Engine) -> None:
    tasks = engine.dispatch_many("sample_tasks:add", [(i, 1) for i in range(2500)])
    for task in tasks:
        engine.cancel_task(task)
    assert engine.prune_tasks(older_than=0) == 2500
    assert engine.list_tasks() == []


def test_cli_prune(engine: Engine) -> None:
    task = engine.dispatch("sample_tasks:add", args=(1, 1))
    engine.cancel_task(task)
    done = run_cli("tasks", "prune", "--url", engine.url, "--older-than", "1h")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "deleted 0 finished task(s)"
    done = run_cli("--json", "tasks", "prune", "--url", engine.url, "--older-than", "0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"deleted": 1}
    missing = run_cli("tasks", "prune", "--url", engine.url)
    assert missing.returncode != 0 and "--older-than" in missing.stderr


def test_cli_prune_parses_durations_and_states(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["tasks", "prune", "--older-than", "36h", "--state", "failed"])
    assert (args.older_than, args.states) == (36 * 3600, ["failed"])
    monkeypatch.setenv("TASKENGINE_PRUNE_OLDER_THAN", "90m")
    monkeypatch.setenv("TASKENGINE_PRUNE_STATES", "failed, canceled")
    args = build_parser().parse_args(["tasks", "prune"])
    assert (args.older_than, args.states) == (5400, ["failed", "canceled"])
    for bad in (["--older-than", "7w"], ["--older-than", "1", "--state", "running"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["tasks", "prune", *bad])


def test_worker_prunes_finished_tasks_on_its_own(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    handle = worker(extra_args=("--retention", "1", "--retention-interval", "0.2"))
    first = engine.dispatch("sample_tasks:add", args=(1, 1))
    assert first.wait(timeout=60).state == "completed"
    kept = engine.dispatch("sample_tasks:add", args=(1, 1), not_before=3600)
    deadline = time.monotonic() + 30
    while _exists(engine, first):
        assert time.monotonic() < deadline, f"not pruned; worker log:\n{handle.log()}"
        time.sleep(0.1)
    assert _exists(engine, kept)
    assert "retention: deleted 1 finished task(s)" in handle.log()


def test_worker_keeps_tasks_with_retention_off(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    handle = worker(extra_args=("--retention", "0", "--retention-interval", "0.2"))
    task = engine.dispatch("sample_tasks:add", args=(1, 1))
    assert task.wait(timeout=60).state == "completed"
    time.sleep(1.5)
    assert _exists(engine, task)
    assert "retention" not in handle.log()


@pytest.mark.parametrize("value", ["-1", "7w", "d", "1e12"])
def test_worker_rejects_a_bad_retention(
    engine: Engine, worker: Callable[..., WorkerProcess], value: str
) -> None:
    handle = worker(extra_args=("--retention", value))
    assert handle.process.wait(30) == 2
    assert "--retention needs a duration" in handle.log()
