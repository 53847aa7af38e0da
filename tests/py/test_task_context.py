"""``taskengine.current()`` inside running tasks, and the engine's API for what they produce
(log messages, progress, artifacts): on SQLite and PostgreSQL, with real native workers and
the in-process immediate worker."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import context_tasks
import pytest
import taskengine
from conftest import WorkerProcess, psql, worker_env
from taskengine import (
    ArtifactTooLarge,
    Engine,
    InvalidArgument,
    NoCurrentTask,
    NotFound,
    Task,
    _core,
)
from taskengine._context import MAX_ARTIFACT_BYTES

WAIT = 60.0
StartWorker = Callable[..., WorkerProcess]


def start(worker: StartWorker) -> WorkerProcess:
    return worker(concurrency=1, imports=("context_tasks",))


def run(engine: Engine, func: object, *args: object) -> Task:
    task = engine.dispatch(func, args=args)  # type: ignore[arg-type]
    return task.wait(timeout=WAIT)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def set_job(engine: Engine, task_id: int, job: str) -> None:
    """Give a task a job (the jobs façade does this at dispatch), with plain SQL."""
    statements = [
        "INSERT INTO taskengine_jobs (id, function, args, kwargs, dependencies, config, "
        f"updated_at) VALUES ('{job}', 'm:f', '[]', '{{}}', '[]', '{{}}', 0) "
        "ON CONFLICT (id) DO NOTHING",
        f"UPDATE taskengine_tasks SET job_id = '{job}' WHERE id = {task_id}",
    ]
    if engine.backend == "sqlite":
        with sqlite3.connect(engine.url.removeprefix("sqlite:///")) as db:
            for statement in statements:
                db.execute(statement)
    else:
        for statement in statements:
            psql(engine.url, statement)


# -- outside a task ------------------------------------------------------------------------


def test_current_outside_a_task_raises_or_returns_none() -> None:
    with pytest.raises(NoCurrentTask, match="outside a running task"):
        taskengine.current()
    assert taskengine.current_or_none() is None


# -- with a native worker ------------------------------------------------------------------


def test_logger_records_are_stored_with_the_task_in_order(
    engine: Engine, worker: StartWorker
) -> None:
    start(worker)
    task = run(engine, context_tasks.log_lines, 50)
    assert task.state == "completed", task.error
    assert task.result == task.id
    logs = engine.task_logs(task)
    assert [m.message for m in logs] == [f"line {i}" for i in range(50)]
    assert {m.task_id for m in logs} == {task.id}
    assert {m.level_name for m in logs} == {"INFO"}
    assert {m.logger for m in logs} == {"taskengine.task"}
    assert [m.id for m in logs] == sorted(m.id for m in logs)
    assert all(task.created_at <= m.created_at <= m.stored_at for m in logs)
    assert logs[0].extra is not None and logs[0].extra["function"] == "log_lines"
    assert task.logs() == logs and task.logs(after_id=logs[-2].id) == logs[-1:]


def test_many_log_lines_are_written_in_few_transactions(
    engine: Engine, worker: StartWorker
) -> None:
    start(worker)
    task = run(engine, context_tasks.log_lines, 5000)
    assert task.state == "completed", task.error
    logs = list(engine.iter_log_messages(build_id=task))
    assert [m.message for m in logs] == [f"line {i}" for i in range(5000)]
    # Every write transaction gives its records one stored_at: one write per line would
    # give 5000 distinct values.
    writes = {m.stored_at for m in logs}
    assert len(writes) <= 50, f"{len(writes)} writes for 5000 records"


def test_records_of_a_quiet_running_task_are_stored_while_it_runs(
    engine: Engine, worker: StartWorker, tmp_path: Path
) -> None:
    start(worker)
    marker = tmp_path / "go"
    task = engine.dispatch(context_tasks.log_then_wait, args=(str(marker),))
    wait_until(lambda: bool(engine.task_logs(task)))
    [first] = engine.task_logs(task)
    assert first.message == "first"
    assert task.refresh().state == "running"  # stored while the task still runs
    marker.touch()
    task.wait(timeout=WAIT)
    assert [m.message for m in engine.task_logs(task, after_id=first.id)] == ["second"]


def test_levels_and_exceptions_are_stored(engine: Engine, worker: StartWorker) -> None:
    start(worker)
    task = run(engine, context_tasks.log_levels)
    assert task.state == "completed", task.error
    logs = engine.task_logs(task)
    assert [m.level_name for m in logs] == ["DEBUG", "INFO", "WARNING", "ERROR", "ERROR"]
    assert [m.message for m in engine.task_logs(task, min_level="WARNING")] == [
        "warning",
        "error",
        "failed",
    ]
    exception = logs[-1].extra["exception"]  # type: ignore[index]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["traceback"][-1]["name"] == "log_levels"


def test_context_workdir_and_async_tasks(engine: Engine, worker: StartWorker) -> None:
    start(worker)
    task = run(engine, context_tasks.context_info)
    assert task.state == "completed", task.error
    info = task.result
    assert info["id"] == task.id and info["attempt"] == 1
    assert info["exists"] and info["cwd"] == info["workdir"] and info["entries"] == []
    assert info["aborted"] is False
    assert info["is_logger"] and info["logger"] == "taskengine.task"
    assert not (Path(info["workdir"]) / "scratch.txt").exists(), "task files outlived it"

    # The next task (on the same executor) starts in an empty directory again.
    again = run(engine, context_tasks.async_context_info)
    assert again.state == "completed", again.error
    assert again.result["id"] == again.id
    assert again.result["exists"] and again.result["cwd"] == again.result["workdir"]
    assert again.result["entries"] == []
    assert not (Path(again.result["workdir"]) / "scratch.txt").exists()
    assert [m.message for m in engine.task_logs(again)] == ["from a coroutine"]


def test_progress_with_nested_groups(engine: Engine, worker: StartWorker) -> None:
    start(worker)
    task = run(engine, context_tasks.nested_progress)
    assert task.state == "completed", task.error
    progress = engine.get_progress(task)
    assert [(p.group_name, p.current, p.total, p.status_line) for p in progress] == [
        ("", 2, 3, "downloaded"),
        ("download::a.txt", 2, 5, "fetching a"),
        ("download::b.txt", 5, 5, ""),
    ]
    assert task.progress == progress
    assert engine.get_build_progress_info(task.id) == [
        ((), 2, 3, "downloaded"),
        (("download", "a.txt"), 2, 5, "fetching a"),
        (("download", "b.txt"), 5, 5, ""),
    ]


def test_aborted_flips_on_cancel(engine: Engine, worker: StartWorker, tmp_path: Path) -> None:
    start(worker)
    marker = tmp_path / "started"
    task = engine.dispatch(context_tasks.wait_for_cancel, args=(str(marker),))
    wait_until(marker.exists)
    engine.cancel_task(task)
    task.wait(timeout=WAIT)
    assert task.state == "canceled"
    assert [m.message for m in engine.task_logs(task)] == [
        "started, aborted=False",
        "stopping, aborted=True",
    ]


def test_artifacts_round_trip_byte_exact(
    engine: Engine, worker: StartWorker, tmp_path: Path
) -> None:
    start(worker)
    task = run(engine, context_tasks.make_artifact, 300_000, 7)
    assert task.state == "completed", task.error
    expected = random.Random(7).randbytes(300_000)
    [info] = engine.list_artifacts(task)
    assert task.artifacts == [info]
    assert (info.name, info.size, info.task_id) == ("out.bin", 300_000, task.id)
    assert info.sha256 == task.result == hashlib.sha256(expected).hexdigest()
    assert engine.read_artifact(task, "out.bin") == expected
    path = engine.download_artifact(task, "out.bin", tmp_path)
    assert path == tmp_path / "out.bin" and path.read_bytes() == expected
    with pytest.raises(NotFound):
        engine.read_artifact(task, "missing.bin")


def test_bad_input_inside_a_task_fails_it_with_a_typed_error(
    engine: Engine, worker: StartWorker
) -> None:
    start(worker)
    big = run(engine, context_tasks.too_big_artifact)
    assert big.state == "failed"
    assert big.error["type"] == "taskengine.errors.ArtifactTooLarge"
    assert engine.list_artifacts(big) == []
    negative = run(engine, context_tasks.bad_progress)
    assert negative.state == "failed"
    assert negative.error["type"] == "taskengine.errors.InvalidArgument"
    assert engine.get_progress(negative) == []


# -- the engine API, without a worker ------------------------------------------------------


def test_report_build_progress_from_outside(engine: Engine) -> None:
    task = engine.dispatch(context_tasks.log_lines, args=(1,))
    engine.report_build_progress(task.id, 3, 10, ("build", "step 1"), "compiling")
    engine.report_build_progress(task.id, 4, 10, "build::step 1", "linking")
    assert engine.get_build_progress_info(task.id) == [(("build", "step 1"), 4, 10, "linking")]


def test_bad_input_raises_typed_errors_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    task = engine.dispatch(context_tasks.log_lines, args=(1,))
    with pytest.raises(InvalidArgument, match="current must not be negative"):
        engine.report_build_progress(task, -1, 10)
    with pytest.raises(InvalidArgument, match="total must be an integer"):
        engine.report_build_progress(task, 1, 2.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="group_name"):
        engine.report_build_progress(task, 1, 2, 7)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        engine.report_build_progress(task.id + 100, 1, 2)
    with pytest.raises(NotFound):
        engine.get_progress(task.id + 100)
    with pytest.raises(NotFound):
        engine.list_artifacts(task.id + 100)
    assert engine.get_progress(task) == []

    big = tmp_path / "big.bin"
    with big.open("wb") as file:
        file.truncate(MAX_ARTIFACT_BYTES + 1)
    with pytest.raises(ArtifactTooLarge, match="limit"):
        engine.add_artifact(task, big)
    # The store enforces it too, whatever the caller checked.
    with pytest.raises(ArtifactTooLarge):
        _core.add_artifact(engine._core, task.id, None, "x", b"\0" * (MAX_ARTIFACT_BYTES + 1), "")
    with pytest.raises(InvalidArgument, match="not a file"):
        engine.add_artifact(task, tmp_path / "missing")
    small = tmp_path / "small.txt"
    small.write_text("hello")
    with pytest.raises(NotFound):
        engine.add_artifact(task.id + 100, small)
    assert engine.list_artifacts(task) == []
    assert engine.add_artifact(task, small, name="greeting") == "greeting"
    assert engine.read_artifact(task, "greeting") == b"hello"

    with pytest.raises(InvalidArgument, match="aware"):
        engine.task_logs(task, min_date=datetime(2020, 1, 1))
    with pytest.raises(InvalidArgument, match="logging level"):
        list(engine.iter_log_messages(min_level="LOUD"))
    with pytest.raises(InvalidArgument, match="max_age"):
        engine.prune_log_messages(max_age=-1)
    assert _core.MAX_ARTIFACT_BYTES == MAX_ARTIFACT_BYTES


def test_stale_attempt_output_is_dropped(engine: Engine) -> None:
    task = engine.dispatch(context_tasks.log_lines, args=(3,), immediate=True)
    assert task.state == "completed", task.error
    fence = task.as_dict()["fence"]
    stale = [
        {
            "task_id": task.id,
            "fence": fence,
            "records": [{"message": "late", "level": 20}],
            "progress": [{"group_name": "", "current": 1, "total": 1}],
        }
    ]
    assert _core.write_task_output(engine._core, json.dumps(stale)) == [False]
    assert [m.message for m in engine.task_logs(task)] == ["line 0", "line 1", "line 2"]
    assert engine.get_progress(task) == []


# -- the in-process immediate worker -------------------------------------------------------


def test_immediate_tasks_get_the_context(engine: Engine) -> None:
    task = engine.dispatch(context_tasks.context_info, immediate=True)
    assert task.state == "completed", task.error
    assert task.result["id"] == task.id and task.result["exists"]
    assert task.result["entries"] == []
    assert not Path(task.result["workdir"]).exists()
    logged = engine.dispatch(context_tasks.async_context_info, immediate=True)
    assert [m.message for m in engine.task_logs(logged)] == ["from a coroutine"]
    progress = engine.dispatch(context_tasks.nested_progress, immediate=True)
    assert [p.group_name for p in engine.get_progress(progress)] == [
        "",
        "download::a.txt",
        "download::b.txt",
    ]
    artifact = engine.dispatch(context_tasks.make_artifact, args=(1000, 3), immediate=True)
    assert engine.read_artifact(artifact, "out.bin") == random.Random(3).randbytes(1000)
    assert taskengine.current_or_none() is None


def test_iter_and_prune_log_messages_filters(engine: Engine) -> None:
    first = engine.dispatch(context_tasks.log_levels, immediate=True)
    between = datetime.now(UTC)
    time.sleep(0.01)
    second = engine.dispatch(context_tasks.log_lines, args=(3,), immediate=True)
    set_job(engine, first.id, "nightly")

    def messages(**filters: object) -> list[str]:
        return [m.message for m in engine.iter_log_messages(**filters)]  # type: ignore[arg-type]

    assert len(messages()) == 8
    assert messages(build_id=second) == ["line 0", "line 1", "line 2"]
    assert messages(job_id="nightly") == ["debug", "info", "warning", "error", "failed"]
    assert messages(min_date=between) == ["line 0", "line 1", "line 2"]
    assert messages(max_date=between) == ["debug", "info", "warning", "error", "failed"]
    assert messages(min_level=40) == ["error", "failed"]
    assert messages(build_id=first, min_level="INFO", max_date=between) == [
        "info",
        "warning",
        "error",
        "failed",
    ]
    logs = engine.task_logs(second)
    assert [m.message for m in engine.task_logs(second, after_id=logs[0].id, limit=1)] == ["line 1"]

    # Nothing is old enough; then only levels <= INFO of the job; then one task's.
    assert engine.prune_log_messages(max_age=timedelta(hours=1)) == 0
    assert engine.prune_log_messages(job_id="nightly", level="INFO") == 2
    assert messages(build_id=first) == ["warning", "error", "failed"]
    assert engine.prune_log_messages(build_id=second, max_age=0) == 3
    assert messages() == ["warning", "error", "failed"]
    assert engine.prune_log_messages() == 3
    assert messages() == []


# -- the logs command ----------------------------------------------------------------------


def logs_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskengine.cli", *args]


def test_logs_command_prints_filters_and_follows(
    engine: Engine, worker: StartWorker, tmp_path: Path
) -> None:
    levels = engine.dispatch(context_tasks.log_levels, immediate=True)
    done = subprocess.run(
        logs_cli("logs", str(levels.id), "--url", engine.url, "--level", "warning", "--json"),
        capture_output=True,
        text=True,
        env=worker_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["level"], r["message"]) for r in rows] == [
        (30, "warning"),
        (40, "error"),
        (40, "failed"),
    ]
    assert rows[-1]["extra"]["exception"]["type"] == "ZeroDivisionError"

    start(worker)
    marker = tmp_path / "go"
    task = engine.dispatch(context_tasks.log_then_wait, args=(str(marker),))
    follow = subprocess.Popen(
        logs_cli("--url", engine.url, "logs", str(task.id), "--follow", "--interval", "0.05"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        assert first.split()[1:] == ["INFO", "taskengine.task:", "first"]
        assert follow.poll() is None  # still following the running task
        marker.touch()
        rest, errors = follow.communicate(timeout=WAIT)
    finally:
        follow.kill()
    assert follow.returncode == 0, errors
    assert rest.split()[1:] == ["INFO", "taskengine.task:", "second"]
