"""dispatch_many's batched path on both stores: what it stores equals what dispatch stores
item by item, items it cannot vouch for take the careful path with the same errors as
before, failures store nothing, and a waiting worker is woken."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sample_tasks
from conftest import WorkerProcess
from taskengine import Engine, InvalidArgument, NotSerializable, Task, connect

WAIT = 60.0
StartWorker = Callable[..., WorkerProcess]

# Fields that differ between two dispatches of the same thing.
_PER_TASK = {"id", "created_at"}


def stored(task: Task) -> dict[str, Any]:
    return {k: v for k, v in task.as_dict().items() if k not in _PER_TASK}


def nested(levels: int) -> list[Any]:
    """``levels`` lists, one inside the other, around a 1."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_batch_stores_what_dispatch_stores(engine: Engine) -> None:
    group = engine.create_task_group("batch")
    options: dict[str, Any] = {
        "task_group": group,
        "priority": 3,
        "not_before": datetime(2030, 1, 1, tzinfo=UTC),
        "timeout": 9.5,
        "retries": [1, 2],
        "worker_type": "server",
        "versions": {"gcc": "12"},
        "allow_failure": True,
    }
    kwargs = {"shared": {"nested": [1, None]}, "flag": True}
    items: list[Any] = [
        (1, 2.5, "three", None, True),
        [[1, [2, [3]]], "ünïcödé", -7],
        (),
        ('quote" and \\ backslash', 1e300, -0.0),
        (nested(199),),  # 200 levels with the args list: the most allowed
    ]
    batch = engine.dispatch_many(sample_tasks.echo, items, kwargs, **options)
    one_by_one = [engine.dispatch(sample_tasks.echo, args, kwargs, **options) for args in items]
    assert [t.id for t in batch] == sorted(t.id for t in batch)
    for many, single in zip(batch, one_by_one, strict=True):
        assert stored(many) == stored(single)
    assert batch[1].payload["args"] == [[1, [2, [3]]], "ünïcödé", -7]


def test_ids_follow_the_items_across_chunks(engine: Engine) -> None:
    items = [(i, f"item {i}") for i in range(2500)]
    tasks = engine.dispatch_many(sample_tasks.echo, items)
    ids = [t.id for t in tasks]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    listed = engine.list_tasks(limit=3000)
    assert [t.id for t in listed] == ids
    assert [t.payload["args"] for t in listed] == [list(item) for item in items]


@pytest.mark.parametrize(
    ("items", "error", "message"),
    [
        ([(1,), (2,), ({1, 2},)], NotSerializable, r"^args_list\[2\]: args\[0\] is a builtins.set"),
        ([(1,), ({1: "a"},)], NotSerializable, r"^args_list\[1\]: args\[0\] has the key 1 of type"),
        ([(float("inf"),)], NotSerializable, r"^args_list\[0\]: args\[0\] is inf"),
        ([(1,), (nested(200),)], NotSerializable, r"^args_list\[1\]: args\[0\]\[0\].* nested more"),
        ([(1,), "ab"], InvalidArgument, r"^args_list\[1\]: args must be a list or tuple"),
        ([(1,), ({"$retval": 0},)], InvalidArgument, r"^args_list\[1\]: args\[0\] is \{'\$retval'"),
        (
            [(1,), (nested(5000),)],
            NotSerializable,
            r"^args_list\[1\]: args\[0\]\[0\].* nested more",
        ),
    ],
)
def test_bad_items_keep_their_errors_and_store_nothing(
    engine: Engine, items: list[Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        engine.dispatch_many(sample_tasks.echo, items)
    with pytest.raises(InvalidArgument, match=r"^args_list\[0\]: kwargs has the key 1"):
        engine.dispatch_many(sample_tasks.echo, [(1,)], {1: "x"})
    assert engine.list_tasks() == []


def test_a_failing_batch_stores_nothing(engine: Engine) -> None:
    with pytest.raises(InvalidArgument, match="task group 424242 does not exist"):
        engine.dispatch_many(sample_tasks.add, [(i, i) for i in range(500)], task_group=424242)
    with pytest.raises(InvalidArgument, match="depends_on names task 987654"):
        engine.dispatch_many(sample_tasks.add, [(i, i) for i in range(500)], depends_on=[987654])
    assert engine.list_tasks() == []


def test_tasks_and_markers_in_items_become_dependencies(
    engine: Engine, worker: StartWorker
) -> None:
    worker()
    first = engine.dispatch(sample_tasks.add, args=(1, 2))
    items: list[Any] = [(i, 0) for i in range(300)]
    items[150] = (first, 10)  # a Task: the careful path, for every item
    tasks = engine.dispatch_many(sample_tasks.add, items)
    assert tasks[150].depends_on == [first.id]
    assert all(t.depends_on == [] for t in tasks[:150] + tasks[151:])
    done = [t.wait(timeout=WAIT) for t in tasks]
    assert [t.result for t in done] == [i for i in range(150)] + [13] + list(range(151, 300))


def test_a_sleeping_worker_wakes_for_a_batch(engine: Engine, worker: StartWorker) -> None:
    # Polling once a minute: only the batch's wake-up can start these tasks in time.
    handle = worker(extra_args=("--poll-interval", "60"))
    handle.wait_registered(engine)
    time.sleep(0.5)  # past the worker's first claim, into its sleep
    started = time.monotonic()
    tasks = engine.dispatch_many(sample_tasks.add, [(i, 1) for i in range(2000)])
    assert tasks[0].wait(timeout=20).result == 1
    assert time.monotonic() - started < 20
    assert tasks[-1].wait(timeout=WAIT).result == 2000


def test_a_batch_of_another_store_task_is_refused(engine: Engine, tmp_path: Any) -> None:
    other = connect(f"sqlite:///{tmp_path}/other.db")
    other.install()
    foreign = other.dispatch(sample_tasks.add, args=(1, 1))
    with pytest.raises(InvalidArgument, match=r"^args_list\[1\]: args\[0\] is task .* of another"):
        engine.dispatch_many(sample_tasks.echo, [(1,), (foreign,)])
    assert engine.list_tasks() == []
