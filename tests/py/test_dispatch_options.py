"""Dispatch options: the forms of ``retries``, result passing, and immediate dispatch.

The task functions at the top are dispatched by these tests; workers import this module by
name (``tests/py`` is on their ``PYTHONPATH``).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sample_tasks
import taskengine
from taskengine import Backoff, Command, InvalidArgument
from taskengine.cli import main

if TYPE_CHECKING:
    from conftest import WorkerProcess
    from taskengine.engine import Engine

WAIT = 60.0
IMMEDIATE_REASON = "Resources temporarily unavailable"


def make_n(n: int) -> dict[str, int]:
    """A parent task: return ``{"n": n}``."""
    return {"n": n}


def add_n(data: dict[str, int], k: int) -> int:
    """A child task: add ``k`` to the ``n`` of a parent's result."""
    return data["n"] + k


def context() -> dict[str, Any]:
    """Where the task runs: its pid and the worker name a native worker sets."""
    return {"pid": os.getpid(), "worker": os.environ.get("TASKENGINE_WORKER")}


def assert_nothing_stored(engine: Engine) -> None:
    assert engine.list_tasks() == []


def wait_for_state(task: taskengine.Task, state: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while task.refresh().state != state:
        assert not task.done, f"task {task.id} ended {task.state} waiting for {state}"
        assert time.monotonic() < deadline, f"task {task.id} still {task.state}"
        time.sleep(0.02)


def immediate_workers(engine: Engine, include_offline: bool = False) -> list[Any]:
    return [
        w for w in engine.workers(include_offline=include_offline) if w.name.endswith("-immediate")
    ]


# -- retries ---------------------------------------------------------------------------------


def test_retry_forms_are_stored(engine: Engine) -> None:
    def policy(**options: Any) -> dict[str, Any]:
        retry: dict[str, Any] = engine.dispatch(sample_tasks.add, (1, 2), **options).as_dict()[
            "retry"
        ]
        return retry

    assert policy() == {
        "max_attempts": 1,
        "delays": [],
        "backoff_base": 1.0,
        "backoff_max": 3600.0,
        "jitter": True,
    }
    assert policy(retries=3) == {
        "max_attempts": 4,
        "delays": [],
        "backoff_base": 1.0,
        "backoff_max": 3600.0,
        "jitter": True,
    }
    assert policy(retries=2, retry_backoff=0.25)["backoff_base"] == 0.25
    explicit = policy(retries=[1, 5, 30])
    assert explicit["max_attempts"] == 4
    assert explicit["delays"] == [1.0, 5.0, 30.0]
    assert explicit["backoff_base"] == 0.0
    assert policy(retries=(0.5,))["delays"] == [0.5]
    assert policy(retries=[])["max_attempts"] == 1
    assert policy(retries=Backoff(2, base=0.5, max=10, jitter=False)) == {
        "max_attempts": 3,
        "delays": [],
        "backoff_base": 0.5,
        "backoff_max": 10.0,
        "jitter": False,
    }
    assert policy(retries=Backoff(5))["backoff_max"] == 3600.0

    many = engine.dispatch_many(sample_tasks.add, [(1, 1), (2, 2)], retries=[0, 2])
    assert [t.as_dict()["retry"]["delays"] for t in many] == [[0.0, 2.0], [0.0, 2.0]]


def test_explicit_delays_run_every_attempt(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    worker()
    task = engine.dispatch(sample_tasks.fail, retries=[0, 0]).wait(timeout=WAIT)
    assert task.state == "failed"
    assert task.attempt == 3
    assert task.error is not None and task.error["type"] == "ValueError"


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: Backoff(-1), "Backoff.retries"),
        (lambda: Backoff(1.5), "Backoff.retries"),  # type: ignore[arg-type]
        (lambda: Backoff(True), "Backoff.retries"),
        (lambda: Backoff(10_000), "Backoff.retries"),
        (lambda: Backoff(1, base=-1), "Backoff.base"),
        (lambda: Backoff(1, base=math.inf), "Backoff.base"),
        (lambda: Backoff(1, base=math.nan), "Backoff.base"),
        (lambda: Backoff(1, base="1"), "Backoff.base"),  # type: ignore[arg-type]
        (lambda: Backoff(1, max=-5), "Backoff.max"),
        (lambda: Backoff(1, max=math.inf), "Backoff.max"),
        (lambda: Backoff(1, jitter=1), "Backoff.jitter"),  # type: ignore[arg-type]
    ],
)
def test_backoff_validation(make: Callable[[], Backoff], named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        make()


def test_backoff_is_frozen() -> None:
    backoff = Backoff(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        backoff.retries = 4  # type: ignore[misc]
    assert backoff == Backoff(3, 1.0, 3600.0, True)
    assert "Backoff" in taskengine.__all__ and "retval" in taskengine.__all__


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retries": "3"}, "retries"),
        ({"retries": {1: 2}}, "retries"),
        ({"retries": [1, -1]}, r"retries\[1\]"),
        ({"retries": [math.nan]}, r"retries\[0\]"),
        ({"retries": [math.inf]}, r"retries\[0\]"),
        ({"retries": ["1"]}, r"retries\[0\]"),
        ({"retries": [True]}, r"retries\[0\]"),
        ({"retries": [0] * 1001}, "retries"),
        ({"retries": 1, "retry_backoff": -1}, "retry_backoff"),
        ({"retries": 1, "retry_backoff": math.nan}, "retry_backoff"),
        ({"retries": [1], "retry_backoff": 2}, "retry_backoff"),
        ({"retries": Backoff(1), "retry_backoff": 2}, "retry_backoff"),
    ],
)
def test_bad_retries_raise_and_store_nothing(
    engine: Engine, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidArgument, match=named):
        engine.dispatch(sample_tasks.add, (1, 2), **options)
    with pytest.raises(InvalidArgument, match=named):
        engine.dispatch_many(sample_tasks.add, [(1, 2)], **options)
    assert_nothing_stored(engine)


# -- result passing ----------------------------------------------------------------------------


def test_a_task_argument_passes_its_result(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    parent = engine.dispatch(make_n, args=(2,))
    child = engine.dispatch(add_n, args=(parent, 3))
    nested = engine.dispatch(sample_tasks.echo, kwargs={"x": {"deep": [parent, (parent,)]}})
    assert child.depends_on == [parent.id]
    assert nested.depends_on == [parent.id]
    assert child.payload["args"] == [{"$retval": parent.id}, 3]  # stored with the marker

    worker()
    assert child.wait(timeout=WAIT).state == "completed", child.error
    assert child.result == 5
    assert nested.wait(timeout=WAIT).result == {
        "args": [],
        "kwargs": {"x": {"deep": [{"n": 2}, [{"n": 2}]]}},
    }
    assert child.payload["args"] == [{"$retval": parent.id}, 3]


def test_a_child_of_a_failed_parent_is_skipped(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    parent = engine.dispatch(sample_tasks.fail)
    child = engine.dispatch(add_n, args=(parent, 3))
    tolerant = engine.dispatch(sample_tasks.echo, args=(parent,), allow_failure=True)
    worker()
    assert child.wait(timeout=WAIT).state == "skipped"
    assert tolerant.wait(timeout=WAIT).state == "completed"
    assert tolerant.result == {"args": [None], "kwargs": {}}
    assert parent.refresh().state == "failed"


def test_retval_markers_add_dependencies(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    first = engine.dispatch(sample_tasks.add, (1, 2))
    second = engine.dispatch(sample_tasks.add, (10, 20))
    by_helper = engine.dispatch(sample_tasks.add, args=(taskengine.retval(first.id), 100))
    by_hand = engine.dispatch(sample_tasks.add, kwargs={"a": {"$retval": second.id}, "b": 1})
    twice = engine.dispatch(
        sample_tasks.echo, args=(first, taskengine.retval(first)), depends_on=[first, second]
    )
    per_item = engine.dispatch_many(sample_tasks.add, [(first, 1), (second, 2), (5, 5)])
    assert taskengine.retval(first) == {"$retval": first.id}
    assert by_helper.depends_on == [first.id]
    assert by_hand.depends_on == [second.id]
    assert twice.depends_on == [first.id, second.id]
    assert [t.depends_on for t in per_item] == [[first.id], [second.id], []]

    worker()
    assert by_helper.wait(timeout=WAIT).result == 103
    assert by_hand.wait(timeout=WAIT).result == 31
    assert twice.wait(timeout=WAIT).result == {"args": [3, 3], "kwargs": {}}
    assert [t.wait(timeout=WAIT).result for t in per_item] == [4, 32, 10]


def test_bad_result_references_raise_and_store_nothing(engine: Engine, tmp_path: Path) -> None:
    other = taskengine.connect(f"sqlite:///{tmp_path / 'other.db'}")
    other.install()
    foreign = other.dispatch(sample_tasks.add, (1, 2))
    with pytest.raises(InvalidArgument, match=r"args\[0\]\['t'\] is task .* another store"):
        engine.dispatch(sample_tasks.echo, args=({"t": foreign},))
    for marker in ({"$retval": 0}, {"$retval": "1"}, {"$retval": True}, {"$retval": 1.0}):
        with pytest.raises(InvalidArgument, match=r"kwargs\['x'\] .* not a task result marker"):
            engine.dispatch(sample_tasks.echo, kwargs={"x": marker})
    with pytest.raises(InvalidArgument, match=r"args_list\[1\]"):
        engine.dispatch_many(sample_tasks.echo, [(1,), ({"$retval": -3},)])
    with pytest.raises(InvalidArgument, match="retval"):
        taskengine.retval(0)
    with pytest.raises(InvalidArgument, match="987654"):  # the store checks the dependency
        engine.dispatch(sample_tasks.echo, args=(taskengine.retval(987654),))
    assert_nothing_stored(engine)


# -- immediate dispatch ------------------------------------------------------------------------


def test_immediate_runs_in_process_when_free(engine: Engine) -> None:
    task = engine.dispatch(sample_tasks.getpid, immediate=True)
    assert task.state == "completed", task.error
    assert task.result == os.getpid()
    assert task.worker is not None and task.worker.endswith("-immediate")
    assert task.attempt == 1

    assert engine.dispatch(sample_tasks.async_add, (2, 3), immediate=True).result == 5
    parent = engine.dispatch(make_n, (2,), immediate=True)
    child = engine.dispatch(add_n, (parent, 3), immediate=True, deferred=False)
    assert (child.state, child.result) == ("completed", 5)

    (record,) = immediate_workers(engine)
    assert record.name == task.worker
    assert record.worker_type == "worker"
    assert record.pid == os.getpid()
    assert record.metadata["versions"]["taskengine"] == taskengine.__version__

    signing = engine.dispatch(sample_tasks.add, (1, 1), immediate=True, worker_type="signing")
    assert (signing.state, signing.result) == ("completed", 2)
    assert {w.worker_type for w in immediate_workers(engine)} == {"worker", "signing"}


def test_immediate_heartbeats_while_running(engine: Engine) -> None:
    task = engine.dispatch(sample_tasks.sleep, (1.6,), immediate=True)
    assert task.state == "completed"
    (record,) = immediate_workers(engine)
    assert (record.last_heartbeat - record.started_at).total_seconds() >= 0.9


def test_immediate_worker_registers_again_when_declared_lost(engine: Engine) -> None:
    engine.dispatch(sample_tasks.noop, immediate=True)
    (first,) = immediate_workers(engine)
    engine._core.unregister_worker(first.id)  # as peers do with a worker gone silent
    task = engine.dispatch(sample_tasks.noop, immediate=True)
    assert task.state == "completed"
    (second,) = immediate_workers(engine)
    assert second.id != first.id and second.name == first.name


def test_immediate_worker_is_unregistered_with_its_engine(engine: Engine) -> None:
    other = taskengine.connect(engine.url)
    assert other.dispatch(sample_tasks.noop, immediate=True).state == "completed"
    assert len(immediate_workers(engine)) == 1
    del other
    gc.collect()
    assert immediate_workers(engine) == []
    assert len(immediate_workers(engine, include_offline=True)) == 1


def test_immediate_with_a_busy_resource_defers_or_cancels(
    engine: Engine, worker: Callable[..., WorkerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    native = worker()
    holder = engine.dispatch(sample_tasks.sleep, (3.0,), exclusive_resources=["R"])
    wait_for_state(holder, "running")

    deferred = engine.dispatch(context, immediate=True, exclusive_resources=["R"])
    assert deferred.state == "waiting"
    assert deferred.reason == f"waiting for resource 'R', held by running task {holder.id}"
    canceled = engine.dispatch(context, immediate=True, deferred=False, exclusive_resources=["R"])
    assert canceled.state == "canceled"
    assert canceled.reason == IMMEDIATE_REASON
    assert canceled.started_at is None

    assert main(["--url", engine.url, "tasks", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].split() == [
        "id",
        "kind",
        "name",
        "state",
        "created",
        "took",
        "reason",
        "outcome",
    ]
    assert f"waiting for resource 'R', held by running task {holder.id}" in listing
    assert IMMEDIATE_REASON in listing
    assert main(["--url", engine.url, "tasks", "show", str(canceled.id)]) == 0
    assert f"reason    {IMMEDIATE_REASON}" in capsys.readouterr().out

    assert deferred.wait(timeout=WAIT).state == "completed", deferred.error
    assert deferred.worker == native.name
    assert deferred.result["worker"] == native.name
    assert deferred.result["pid"] != os.getpid()
    assert holder.refresh().state == "completed"
    assert canceled.refresh().state == "canceled"


def test_immediate_waits_for_unfinished_dependencies(engine: Engine) -> None:
    parent = engine.dispatch(sample_tasks.add, (1, 2))  # no worker: it stays waiting
    deferred = engine.dispatch(add_n, ({"n": 1}, 2), depends_on=[parent], immediate=True)
    assert deferred.state == "blocked"
    canceled = engine.dispatch(add_n, (parent, 2), immediate=True, deferred=False)
    assert (canceled.state, canceled.reason) == ("canceled", IMMEDIATE_REASON)
    later = engine.dispatch(sample_tasks.add, (1, 1), not_before=3600, immediate=True)
    assert later.state == "waiting"


def test_immediate_failure_is_recorded_not_raised(engine: Engine) -> None:
    task = engine.dispatch(sample_tasks.fail, immediate=True)
    assert task.state == "failed"
    error = task.error
    assert error is not None
    assert error["type"] == "ValueError"
    assert error["message"] == "value must be positive, got -1"
    names = [frame["name"] for frame in error["traceback"]]
    assert names == ["fail", "_check_positive"]
    assert error["traceback"][0]["locals"]["secret_local"] == "'visible in the traceback'"
    assert error["traceback"][1]["filename"] == sample_tasks.__file__

    unserializable = engine.dispatch(sample_tasks.not_json, immediate=True)
    assert unserializable.state == "failed"
    assert unserializable.error is not None
    assert unserializable.error["type"] == "NotSerializable"

    missing = engine.dispatch("sample_tasks:no_such_function", immediate=True, validate=False)
    assert missing.error is not None and missing.error["type"] == "FunctionNotFound"

    exiting = engine.dispatch(sample_tasks.exit_task, (3,), immediate=True)
    assert exiting.state == "failed"
    assert exiting.error is not None and exiting.error["type"] == "SystemExit"


def test_immediate_failure_with_retries_goes_to_the_workers(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    task = engine.dispatch(sample_tasks.fail, immediate=True, retries=[0])
    assert task.state == "waiting"
    assert task.attempt == 1
    worker()
    assert task.wait(timeout=WAIT).state == "failed"
    assert task.attempt == 2
    assert task.worker is not None and not task.worker.endswith("-immediate")


def test_immediate_option_errors_store_nothing(engine: Engine) -> None:
    with pytest.raises(InvalidArgument, match="immediate and deferred cannot both be False"):
        engine.dispatch(sample_tasks.add, (1, 2), immediate=False, deferred=False)
    with pytest.raises(InvalidArgument, match="immediate applies to function tasks"):
        engine.dispatch(Command(["true"]), immediate=True)
    with pytest.raises(InvalidArgument, match="one at a time"):
        engine.dispatch_many(sample_tasks.add, [(1, 2)], immediate=True)
    with pytest.raises(InvalidArgument, match="retries need deferred=True"):
        engine.dispatch(sample_tasks.add, (1, 2), immediate=True, deferred=False, retries=2)
    with pytest.raises(InvalidArgument, match="immediate"):
        engine.dispatch(sample_tasks.add, (1, 2), immediate=1)  # type: ignore[arg-type]
    assert_nothing_stored(engine)
    assert immediate_workers(engine) == []
