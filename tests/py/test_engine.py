"""The Python API end to end: dispatch, a real native worker, results, errors; on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sample_tasks
import taskengine
from conftest import WorkerProcess
from taskengine import (
    Command,
    Engine,
    FunctionNotFound,
    InvalidArgument,
    InvalidUrl,
    NotFound,
    NotSerializable,
    StoreUnavailable,
    Task,
)

WAIT = 60.0  # seconds a task may take to be run by a test worker; generous for CI

StartWorker = Callable[..., WorkerProcess]


def wait_all(tasks: list[Task], timeout: float = WAIT) -> list[Task]:
    deadline = time.monotonic() + timeout
    for task in tasks:
        task.wait(timeout=max(deadline - time.monotonic(), 0.01))
    return tasks


def assert_nothing_stored(engine: Engine) -> None:
    assert engine.list_tasks() == []


# -- running tasks -------------------------------------------------------------------------


def test_function_task_completes_with_its_result(engine: Engine, worker: StartWorker) -> None:
    w = worker()
    before = datetime.now(UTC)
    task = engine.dispatch(sample_tasks.add, args=(2, 3))
    assert task.wait(timeout=WAIT) is task
    assert task.state == "completed", task.as_dict()
    assert task.result == 5
    assert task.error is None
    assert task.kind == "function"
    assert task.name == "sample_tasks:add"
    assert task.worker == w.name
    assert task.attempt == 1
    assert task.done
    created, started, finished = task.created_at, task.started_at, task.finished_at
    assert started is not None and finished is not None
    for moment in (created, started, finished):
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    slack = timedelta(seconds=5)  # clocks of the store and of this process
    assert before - slack <= created <= started <= finished <= datetime.now(UTC) + slack
    assert repr(task) == f"<Task {task.id} function 'sample_tasks:add' completed>"


def test_dispatch_by_name_kwargs_and_async(engine: Engine, worker: StartWorker) -> None:
    worker()
    by_name = engine.dispatch("sample_tasks:add", args=[20, 22])
    pulp_style = engine.dispatch("sample_tasks.add", args=[1, 1])
    echoed = engine.dispatch(sample_tasks.echo, args=(1,), kwargs={"x": {"y": [None, 2.5]}})
    coroutine = engine.dispatch(sample_tasks.async_add, args=(4, 5))
    static = engine.dispatch(sample_tasks.Tools.double, args=(8,))
    wait_all([by_name, pulp_style, echoed, coroutine, static])
    assert pulp_style.name == "sample_tasks:add"
    assert [t.state for t in (by_name, pulp_style, echoed, coroutine, static)] == ["completed"] * 5
    assert by_name.result == 42
    assert pulp_style.result == 2
    assert echoed.result == {"args": [1], "kwargs": {"x": {"y": [None, 2.5]}}}
    assert coroutine.result == 9
    assert static.result == 16


def test_command_task_completes_with_returncode_and_output(
    engine: Engine, worker: StartWorker
) -> None:
    worker()
    task = engine.dispatch(Command(["sh", "-c", "echo hello from a command"])).wait(timeout=WAIT)
    assert task.state == "completed", task.as_dict()
    assert task.kind == "command"
    assert task.name == "sh"
    assert task.result["returncode"] == 0
    assert task.result["output"].strip() == "hello from a command"
    assert task.payload["argv"] == ["sh", "-c", "echo hello from a command"]


def test_command_env_and_cwd(engine: Engine, worker: StartWorker, tmp_path: Any) -> None:
    worker()
    env = {"GREETING": "hi", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    cmd = Command(["sh", "-c", 'echo "$GREETING from $(pwd)"'], env=env, cwd=tmp_path)
    task = engine.dispatch(cmd).wait(timeout=WAIT)
    assert task.state == "completed", task.as_dict()
    assert task.result["output"].strip() == f"hi from {os.path.realpath(tmp_path)}"


def test_non_zero_command_fails(engine: Engine, worker: StartWorker) -> None:
    worker()
    task = engine.dispatch(Command(["sh", "-c", "echo about to fail; exit 3"])).wait(timeout=WAIT)
    assert task.state == "failed", task.as_dict()
    assert engine.dispatch(Command(["false"])).wait(timeout=WAIT).state == "failed"


def test_dispatch_many_keeps_order_and_ids(engine: Engine, worker: StartWorker) -> None:
    worker()
    tasks = engine.dispatch_many(sample_tasks.add, [(i, i) for i in range(25)])
    ids = [t.id for t in tasks]
    assert len(set(ids)) == 25
    assert ids == sorted(ids)
    listed = engine.list_tasks(limit=100)
    assert [t.id for t in listed] == ids  # oldest first: dispatch order
    wait_all(tasks)
    assert [t.result for t in tasks] == [2 * i for i in range(25)]
    assert engine.dispatch_many(sample_tasks.add, []) == []


def test_failing_function_records_type_message_and_traceback(
    engine: Engine, worker: StartWorker
) -> None:
    worker()
    task = engine.dispatch(sample_tasks.fail, args=(-7,)).wait(timeout=WAIT)
    assert task.state == "failed", task.as_dict()
    assert task.result is None
    error = task.error
    assert error is not None
    assert error["type"] == "ValueError"
    assert error["message"] == "value must be positive, got -7"
    frames = error["traceback"]
    assert [f["name"] for f in frames] == ["fail", "_check_positive"]
    assert frames[0]["filename"].endswith("sample_tasks.py")
    assert frames[0]["locals"]["secret_local"] == "'visible in the traceback'"
    assert frames[1]["line"].startswith("raise ValueError(")


def test_non_json_result_fails_as_not_serializable(engine: Engine, worker: StartWorker) -> None:
    worker()
    task = engine.dispatch(sample_tasks.not_json).wait(timeout=WAIT)
    assert task.state == "failed"
    assert task.error is not None and task.error["type"] == "NotSerializable"


def test_printing_tasks_do_not_disturb_the_worker(engine: Engine, worker: StartWorker) -> None:
    worker(concurrency=1)
    tasks = [engine.dispatch(sample_tasks.chatty, args=(f"line {i}",)) for i in range(5)]
    wait_all(tasks)
    assert [t.result for t in tasks] == [f"line {i}" for i in range(5)]


def test_the_executor_is_long_lived(engine: Engine, worker: StartWorker) -> None:
    w = worker(concurrency=1)
    tasks = wait_all(engine.dispatch_many(sample_tasks.getpid, [()] * 6))
    pids = {t.result for t in tasks}
    assert all(t.state == "completed" for t in tasks)
    assert len(pids) == 1, "each task started a fresh Python process"
    assert pids != {w.pid}


# -- waiting, canceling, listing -------------------------------------------------------------


def test_wait_times_out_without_a_worker(engine: Engine) -> None:
    task = engine.dispatch(sample_tasks.add, args=(1, 2))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=str(task.id)):
        task.wait(timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 3
    assert task.state == "waiting"


def test_cancel_waiting_task_and_group(engine: Engine) -> None:
    task = engine.dispatch(sample_tasks.add, args=(1, 2))
    canceled = engine.cancel_task(task)
    assert canceled.id == task.id
    assert canceled.state == "canceled"
    assert task.refresh().state == "canceled"

    group = engine.create_task_group("nightly")
    assert group.description == "nightly"
    members = engine.dispatch_many(sample_tasks.add, [(1, 1)] * 3, task_group=group)
    other = engine.dispatch(sample_tasks.add, args=(2, 2))
    assert engine.cancel_task_group(group) == 3
    assert {t.refresh().state for t in members} == {"canceled"}
    assert all(t.task_group == group.id for t in members)
    assert other.refresh().state == "waiting"
    assert {t.id for t in engine.list_tasks(task_group=group.id)} == {t.id for t in members}
    assert members[0].cancel().state == "canceled"  # canceling again leaves it as it is


def test_list_tasks_filters_and_limits(engine: Engine) -> None:
    tasks = engine.dispatch_many(sample_tasks.add, [(i, 0) for i in range(5)])
    engine.cancel_task(tasks[1])
    assert [t.id for t in engine.list_tasks(state="canceled")] == [tasks[1].id]
    assert [t.id for t in engine.list_tasks(state="waiting", limit=2)] == [
        tasks[0].id,
        tasks[2].id,
    ]
    assert [t.id for t in engine.list_tasks(limit=2, newest_first=True)] == [
        tasks[4].id,
        tasks[3].id,
    ]
    with pytest.raises(InvalidArgument, match="state"):
        engine.list_tasks(state="sleeping")
    with pytest.raises(InvalidArgument, match="limit"):
        engine.list_tasks(limit=0)


def test_get_task_reads_now_and_unknown_ids_are_not_found(engine: Engine) -> None:
    task = engine.dispatch(sample_tasks.add, args=(1, 2), priority=5)
    fetched = engine.get_task(task.id)
    assert fetched == task
    assert fetched.priority == 5
    assert fetched.payload == {"function": "sample_tasks:add", "args": [1, 2], "kwargs": {}}
    with pytest.raises(NotFound):
        engine.get_task(987654)
    with pytest.raises(NotFound):
        engine.cancel_task(987654)
    with pytest.raises(LookupError):  # NotFound is a LookupError too
        engine.get_task(987654)


def test_dependencies_and_options_are_stored(engine: Engine) -> None:
    first = engine.dispatch(sample_tasks.add, args=(1, 2))
    second = engine.dispatch(
        sample_tasks.add,
        args=(3, 4),
        depends_on=[first],
        exclusive_resources=["repo-1"],
        shared_resources=["db"],
        timeout=30,
        retries=2,
        versions={"core": "1.0"},
    )
    data = second.as_dict()
    assert data["depends_on"] == [first.id]
    assert data["exclusive_resources"] == ["repo-1"]
    assert data["shared_resources"] == ["db"]
    assert data["timeout"] == 30.0
    assert data["retry"]["max_attempts"] == 3
    assert data["requirements"]["versions"] == {"core": "1.0"}
    assert second.state == "blocked"


# -- bad input stores nothing ----------------------------------------------------------------


def test_unknown_url_scheme_is_invalid_url() -> None:
    for url in ("mysql://localhost/db", "not a url", ""):
        with pytest.raises(InvalidUrl):
            taskengine.connect(url)
    with pytest.raises(InvalidArgument):
        taskengine.connect(5)  # type: ignore[arg-type]


def test_unreachable_database_is_store_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        taskengine.connect("postgresql://postgres@127.0.0.1:1/x")
    assert time.monotonic() - started < 30
    with pytest.raises(ConnectionError):  # StoreUnavailable is a ConnectionError too
        taskengine.connect("postgresql://postgres@127.0.0.1:1/x")


def test_connect_defaults_to_taskengine_url(
    monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    monkeypatch.setenv("TASKENGINE_URL", store_url)
    assert taskengine.connect().url == store_url


def test_missing_function_raises_and_stores_nothing(engine: Engine) -> None:
    with pytest.raises(FunctionNotFound, match="no_such_function"):
        engine.dispatch("sample_tasks:no_such_function")
    with pytest.raises(FunctionNotFound, match="no_such_module_xyz"):
        engine.dispatch("no_such_module_xyz:fn")
    with pytest.raises(FunctionNotFound, match="lambda"):
        engine.dispatch(lambda: 1)
    with pytest.raises(FunctionNotFound, match="broken_module"):
        engine.dispatch("broken_module:fn")
    with pytest.raises(FunctionNotFound, match="no_such_module_xyz"):
        engine.dispatch_many("no_such_module_xyz:fn", [(1,), (2,)])
    assert_nothing_stored(engine)


def test_unvalidated_name_is_stored_and_fails_on_the_worker(
    engine: Engine, worker: StartWorker
) -> None:
    worker()
    task = engine.dispatch("sample_tasks:no_such_function", validate=False).wait(timeout=WAIT)
    assert task.state == "failed"
    assert task.error is not None and task.error["type"] == "FunctionNotFound"


def test_non_json_argument_raises_and_stores_nothing(engine: Engine) -> None:
    with pytest.raises(NotSerializable, match=r"args\[0\] is a builtins.set"):
        engine.dispatch(sample_tasks.echo, args=({1, 2},))
    with pytest.raises(NotSerializable, match=r"kwargs\['when'\]"):
        engine.dispatch(sample_tasks.echo, kwargs={"when": datetime.now(UTC)})
    with pytest.raises(NotSerializable, match=r"args_list\[2\]: args\[0\] is nan"):
        engine.dispatch_many(sample_tasks.echo, [(1,), (2,), (float("nan"),)])
    assert_nothing_stored(engine)


def test_bad_options_raise_and_store_nothing(engine: Engine) -> None:
    bad: list[dict[str, Any]] = [
        {"timeout": -1},
        {"priority": "high"},
        {"exclusive_resources": "repo"},
        {"shared_resources": [1]},
        {"retries": -1},
        {"not_before": datetime(2030, 1, 1)},
        {"immediate": "yes"},
        {"deferred": False},
        {"worker_type": "gpu"},
        {"depends_on": [0]},
    ]
    for options in bad:
        with pytest.raises(InvalidArgument, match=next(iter(options)).split("_")[0]):
            engine.dispatch(sample_tasks.add, args=(1, 2), **options)
    with pytest.raises(InvalidArgument, match="empty"):
        engine.dispatch(Command([]))
    with pytest.raises(InvalidArgument, match="Command"):
        engine.dispatch(Command(["true"]), args=(1,))
    with pytest.raises(InvalidArgument, match="unique_key"):
        engine.dispatch_many(sample_tasks.add, [(1, 1), (2, 2)], unique_key="k")
    assert_nothing_stored(engine)


def test_dependency_on_a_missing_task_stores_nothing(engine: Engine) -> None:
    with pytest.raises((NotFound, InvalidArgument)):
        engine.dispatch(sample_tasks.add, args=(1, 2), depends_on=[987654])
    assert_nothing_stored(engine)


# -- schema --------------------------------------------------------------------------------


def test_install_is_idempotent_and_uninstall_then_install_works(engine: Engine) -> None:
    version = engine.schema_version()
    assert version >= 1
    engine.install()
    engine.install()
    assert engine.schema_version() == version
    engine.dispatch(sample_tasks.add, args=(1, 2))
    assert len(engine.list_tasks()) == 1
    engine.uninstall()
    engine.install()
    assert engine.schema_version() == version
    assert_nothing_stored(engine)
    assert engine.dispatch(sample_tasks.add, args=(1, 2)).state == "waiting"


def test_engine_reports_url_and_backend(engine: Engine, store_url: str) -> None:
    assert engine.url == store_url
    assert engine.backend == store_url.split(":", 1)[0]
    assert repr(engine) == f"<Engine {store_url}>"


# -- workers -------------------------------------------------------------------------------


def test_worker_registers_with_metadata_and_heartbeats(engine: Engine, worker: StartWorker) -> None:
    w = worker()
    record = w.wait_registered(engine)
    assert record.online is True
    assert record.pid == w.pid
    assert record.hostname == socket.gethostname()
    assert record.worker_type == "worker"
    assert isinstance(record.metadata, dict) and record.metadata
    now = datetime.now(UTC)
    assert record.started_at <= record.last_heartbeat
    assert now - timedelta(seconds=10) <= record.last_heartbeat <= now + timedelta(seconds=5)
    first_beat = record.last_heartbeat
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # --heartbeat 1: it beats again within seconds
        (again,) = [r for r in engine.workers() if r.name == w.name]
        if again.last_heartbeat > first_beat:
            break
        time.sleep(0.2)
    else:
        pytest.fail("no second heartbeat within 10 s")


def test_sigterm_stops_the_worker_with_status_0(engine: Engine, worker: StartWorker) -> None:
    w = worker()
    w.wait_registered(engine)
    started = time.monotonic()
    assert w.stop() == 0, w.log()
    assert time.monotonic() - started < 10
    assert all(r.name != w.name for r in engine.workers())
    offline = [r for r in engine.workers(include_offline=True) if r.name == w.name]
    assert len(offline) <= 1 and all(not r.online for r in offline)
