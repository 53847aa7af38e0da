"""Task classes on both stores: create_work_request, the core's trampoline, real workers."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import class_tasks
import pytest
import taskengine
from conftest import WorkerProcess, worker_env
from taskengine import _core
from taskengine.engine import Engine

WORKER_IMPORTS = ("class_tasks",)


def _count(engine: Engine) -> int:
    return len(engine.list_tasks(limit=10000))


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_invalid_data_raises_naming_the_field_and_stores_nothing(engine: Engine) -> None:
    with pytest.raises(taskengine.TaskConfigError, match=r"field 'who': Field required"):
        engine.create_work_request("classecho", {})
    with pytest.raises(taskengine.TaskConfigError, match=r"field 'exit_code'"):
        engine.create_work_request("classecho", {"who": "x", "exit_code": [1]})
    with pytest.raises(taskengine.TaskConfigError, match="no worker task class named 'nope'"):
        engine.create_work_request("nope", {})
    with pytest.raises(taskengine.TaskConfigError, match="task_type must be one of"):
        engine.create_work_request("classecho", {"who": "x"}, task_type="cloud")
    with pytest.raises(taskengine.TaskConfigError, match="no signing task class"):
        engine.create_work_request("classecho", {"who": "x"}, task_type="signing")
    with pytest.raises(taskengine.InvalidArgument, match="priority"):
        engine.create_work_request("classecho", {"who": "x"}, priority="high")  # type: ignore[arg-type]
    assert _count(engine) == 0


def test_create_work_request_stores_data_dynamic_data_and_requirements(engine: Engine) -> None:
    task = engine.create_work_request("ClassEcho", {"who": "ann"}, priority=3)
    row = task.as_dict()
    assert task.kind == "task" and task.name == "classecho" and task.state == "waiting"
    assert task.payload["task_data"] == {
        "who": "ann",
        "exit_code": 0,
        "notify_file": None,
        "notify_channel": "file",
    }
    assert task.payload["dynamic_data"] == {"subject": "ann", "greeting": "hello ann"}
    assert row["requirements"]["worker_type"] == "worker"
    assert row["requirements"]["task_version"] == 2
    assert row["priority"] == 3
    assert [entry["event"] for entry in task.history] == ["on_creation"]
    assert task.history[0]["data"] == {"created": "ann"}
    assert task.reason == "no online worker"


def test_host_architecture_becomes_a_requirement(engine: Engine) -> None:
    task = engine.create_work_request("needsfeature", {"host_architecture": "arm64"})
    assert task.as_dict()["requirements"]["architecture"] == "arm64"
    plain = engine.create_work_request("needsfeature", {})
    assert plain.as_dict()["requirements"]["architecture"] is None


def test_retry_with_delays_becomes_the_retry_policy(engine: Engine, tmp_path: Path) -> None:
    task = engine.create_work_request("classretry", {"marker": str(tmp_path / "m")})
    assert task.as_dict()["retry"]["delays"] == [0.2]
    assert task.as_dict()["retry"]["max_attempts"] == 2
    with pytest.raises(taskengine.InvalidArgument, match="do not pass retries too"):
        engine.create_work_request("classretry", {"marker": "x"}, retries=3)
    assert _count(engine) == 1


class RecordingClass(_core.TaskClass):
    """A Python subclass of the core's interface that records the core's calls."""

    def __init__(self, refuse: bool = False, fail_in: str = "") -> None:
        _core.TaskClass.__init__(self)
        self.calls: list[str] = []
        self.refuse = refuse
        self.fail_in = fail_in

    def _called(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_in:
            raise taskengine.TaskConfigError(f"{name} refused the data")

    def name(self) -> str:
        self._called("name")
        return "recorded"

    def task_type(self) -> str:
        self._called("task_type")
        return "worker"

    def task_version(self) -> int | None:
        self._called("task_version")
        return 9

    def validate_data(self, task_data_json: str) -> str:
        self._called("validate_data")
        return json.dumps({**json.loads(task_data_json), "normalised": True})

    def build_dynamic_data(self, task_data_json: str) -> str:
        self._called("build_dynamic_data")
        return json.dumps({"from": "python"})

    def can_run_on(self, task_data_json: str, worker_metadata_json: str) -> bool:
        self._called("can_run_on")
        return not self.refuse

    def event_reactions(self, task_data_json: str) -> str:
        self._called("event_reactions")
        return json.dumps({"on_creation": [{"action": "record_in_task_history", "data": {}}]})


def _register(engine: Engine, name: str, metadata: dict[str, Any]) -> int:
    info = {"name": name, "worker_type": "worker", "hostname": "h", "pid": 1, "metadata": metadata}
    worker_id: int = engine._core.register_worker(json.dumps(info))
    return worker_id


def test_the_core_calls_python_overrides_through_the_trampoline(engine: Engine) -> None:
    _register(engine, "w-a", {"system:worker_type": "worker"})
    hooks = RecordingClass(refuse=True)
    task_id = _core.create_work_request(engine._core, hooks, '{"x": 1}', '{"kind": "task"}')
    assert {"name", "task_type", "task_version", "validate_data", "build_dynamic_data"} <= set(
        hooks.calls
    )
    assert hooks.calls.count("can_run_on") == 1  # once per online worker of its type
    task = engine.get_task(task_id)
    assert task.name == "recorded"
    assert task.payload["task_data"] == {"x": 1, "normalised": True}
    assert task.payload["dynamic_data"] == {"from": "python"}
    assert task.as_dict()["requirements"]["task_version"] == 9
    assert task.reason == (
        "no online worker can run it: it was refused by recorded.can_run_on on worker w-a"
    )
    # The core's methods reach the override too (the same trampoline, called from C++).
    assert hooks.can_run_on("{}", "{}") is False


def test_a_python_exception_in_an_override_comes_back_as_itself(engine: Engine) -> None:
    for method in ("validate_data", "build_dynamic_data", "event_reactions"):
        hooks = RecordingClass(fail_in=method)
        with pytest.raises(taskengine.TaskConfigError, match=f"{method} refused the data"):
            _core.create_work_request(engine._core, hooks, "{}", '{"kind": "task"}')
    assert _count(engine) == 0


def test_an_interface_method_left_abstract_is_an_error(engine: Engine) -> None:
    class Incomplete(_core.TaskClass):
        def __init__(self) -> None:
            _core.TaskClass.__init__(self)

    with pytest.raises(RuntimeError, match=r"pure virtual|not overridden"):
        _core.create_work_request(engine._core, Incomplete(), "{}", '{"kind": "task"}')
    assert _count(engine) == 0


def test_analyze_worker_metadata_is_registered(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    handle = worker(imports=(*WORKER_IMPORTS, "class_tasks_feature"))
    record = handle.wait_registered(engine)
    assert record.metadata["classecho:version"] == 2
    assert record.metadata["classstages:version"] == 1
    assert record.metadata["needsfeature:feature"] is True
    assert record.metadata["system:worker_type"] == "worker"


def test_a_class_task_runs_on_a_worker(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    notes = tmp_path / "notes.jsonl"
    ok = engine.create_work_request("classecho", {"who": "ann", "notify_file": str(notes)})
    bad = engine.create_work_request("classecho", {"who": "bob", "exit_code": 5})
    ok.wait(timeout=60)
    bad.wait(timeout=60)
    assert ok.state == "completed", ok.error
    assert ok.result == {"success": True, "label": "echo ann"}
    assert [e["event"] for e in ok.history] == ["on_creation", "on_success"]
    assert bad.state == "failed"
    assert bad.error is not None and bad.error["type"] == "TaskFailed"
    assert bad.reason == "task reported failure"
    assert [e["event"] for e in bad.history] == ["on_creation", "on_failure"]
    assert bad.history[-1]["data"] == {"ok": False}
    # on_creation notified here, on_success on the worker.
    events = [json.loads(line) for line in notes.read_text().splitlines()]
    assert events == [["on_creation", ok.id, "echo ann"], ["on_success", ok.id, "echo ann"]]


DELIVER_UNBLOCK = "taskengine.tasks._unblock:deliver_unblock"


def _deliveries(engine: Engine) -> list[taskengine.Task]:
    return [t for t in engine.list_tasks(limit=10000) if t.name == DELIVER_UNBLOCK]


def _notes(path: Path) -> list[list[Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _echo_after(
    engine: Engine, argv: list[str], notes: Path, not_before: timedelta | None = None
) -> tuple[taskengine.Task, taskengine.Task]:
    """A command running `argv` and a classecho task that depends on it, notifying into `notes`."""
    first = engine.dispatch(taskengine.Command(argv))
    task = engine.create_work_request(
        "classecho",
        {"who": "ann", "notify_file": str(notes)},
        depends_on=[first],
        not_before=not_before,
    )
    return first, task


def test_on_unblock_is_recorded_when_the_dependency_completes(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    # Only a WORKER worker runs: nothing can ever run the SERVER task, so its on_unblock
    # entry can only come from the store, when the dependency's completion unblocks it.
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    first = engine.dispatch(taskengine.Command(["sleep", "0.3"]))
    task = engine.create_work_request(
        "servernote", {"who": "ann"}, task_type="server", depends_on=[first]
    )
    assert task.state == "blocked" and task.history == []
    first.wait(timeout=60)
    assert first.state == "completed", first.error
    task.refresh()
    assert task.state == "waiting" and task.attempt == 0
    assert task.reason == "no online worker can run it: it needs a worker of type server"
    [entry] = task.history
    assert entry["event"] == "on_unblock" and entry["data"] == {"unblocked": "ann"}
    assert entry["at"] == first.as_dict()["finished_at"]  # written by the same transaction
    assert _deliveries(engine) == []  # no notification asked for


def test_on_unblock_notifies_before_the_dependent_task_runs(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    notes = tmp_path / "notes.jsonl"
    # not_before keeps the task itself waiting an hour after it is unblocked.
    _, task = _echo_after(engine, ["sleep", "0.3"], notes, not_before=timedelta(hours=1))
    assert _notes(notes) == [["on_creation", task.id, "echo ann"]]
    wait_for(lambda: len(_notes(notes)) == 2, what="the on_unblock notification")
    assert _notes(notes)[1] == ["on_unblock", task.id, "echo ann"]
    task.refresh()
    assert task.state == "waiting" and task.attempt == 0
    assert [e["event"] for e in task.history] == ["on_creation", "on_unblock"]
    [delivery] = _deliveries(engine)
    delivery.wait(timeout=60)
    assert delivery.state == "completed", delivery.error
    assert delivery.result == {"task_id": task.id, "sent": 1, "errors": []}


def test_on_unblock_reactions_run_once_when_the_task_runs_too(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    notes = tmp_path / "notes.jsonl"
    _, task = _echo_after(engine, ["sleep", "0.3"], notes)
    assert task.state == "blocked"
    task.wait(timeout=60)
    assert task.state == "completed", task.error
    assert [e["event"] for e in task.history] == ["on_creation", "on_unblock", "on_success"]
    [delivery] = _deliveries(engine)
    delivery.wait(timeout=60)
    # The delivery and the task ran side by side: each notification once, in any order.
    assert sorted(event for event, _, _ in _notes(notes)) == [
        "on_creation",
        "on_success",
        "on_unblock",
    ]
    alone = engine.create_work_request("classecho", {"who": "bob"}).wait(timeout=60)
    assert [e["event"] for e in alone.history] == ["on_creation", "on_success"]
    assert len(_deliveries(engine)) == 1  # no dependencies: never unblocked


def test_a_failing_on_unblock_hook_is_recorded_in_the_tasks_history(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    first = engine.dispatch(taskengine.Command(["true"]))
    task = engine.create_work_request(
        "classecho",
        {"who": "ann", "notify_file": str(tmp_path / "n"), "notify_channel": "nobody"},
        depends_on=[first],
        not_before=timedelta(hours=1),
    )
    wait_for(lambda: len(_deliveries(engine)) == 1, what="the delivery task")
    [delivery] = _deliveries(engine)
    delivery.wait(timeout=60)
    assert delivery.state == "completed", delivery.error
    message = "no notification hook registered for 'nobody'"
    assert delivery.result == {"task_id": task.id, "sent": 0, "errors": [message]}
    task.refresh()
    assert [e["event"] for e in task.history] == ["on_creation", "on_unblock", "on_unblock"]
    assert task.history[2]["error"] == message and task.state == "waiting"


def test_a_task_canceled_while_blocked_is_never_unblocked(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    notes = tmp_path / "notes.jsonl"
    first, task = _echo_after(engine, ["sleep", "0.5"], notes)
    task.cancel()
    first.wait(timeout=60)
    assert first.state == "completed", first.error
    task.refresh()
    assert task.state == "canceled"
    assert [e["event"] for e in task.history] == ["on_creation"]
    # The store would have dispatched the delivery in the completion's transaction.
    assert _deliveries(engine) == []
    assert _notes(notes) == [["on_creation", task.id, "echo ann"]]


def test_a_failed_dependency_skips_the_on_unblock_reactions(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    notes = tmp_path / "notes.jsonl"
    first, task = _echo_after(engine, ["false"], notes)
    task.wait(timeout=60)
    assert first.state == "failed"
    assert task.state == "skipped"
    assert [e["event"] for e in task.history] == ["on_creation"]
    assert _deliveries(engine) == []
    assert _notes(notes) == [["on_creation", task.id, "echo ann"]]


def test_the_gil_is_released_while_the_core_waits_for_the_store(
    engine: Engine, store_url: str
) -> None:
    if not store_url.startswith("sqlite"):
        pytest.skip("holds the SQLite write lock from another connection")
    import sqlite3
    import threading

    path = store_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # create_work_request must now wait for the lock
    created: list[int] = []
    thread = threading.Thread(
        target=lambda: created.append(engine.create_work_request("classecho", {"who": "x"}).id)
    )
    thread.start()
    spins = 0
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # this thread runs Python while the core waits
        spins += 1
    assert thread.is_alive() and not created
    blocker.execute("COMMIT")
    blocker.close()
    thread.join(30)
    assert len(created) == 1
    assert spins > 10_000


def test_retry_with_delays_retries_on_a_worker(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    task = engine.create_work_request("classretry", {"marker": str(tmp_path / "m")})
    task.wait(timeout=60)
    assert task.state == "completed", task.reason
    assert task.attempt == 2


def test_stages_run_in_order_on_a_worker(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    log = tmp_path / "stages.json"
    task = engine.create_work_request("classstages", {"log": str(log)}).wait(timeout=60)
    assert task.state == "completed", task.error
    assert json.loads(log.read_text()) == [
        "fetch_input",
        "configure_for_execution",
        "prepare_to_run",
        "run",
        "check_directory_for_consistency_errors",
        "upload_artifacts",
        "cleanup",
    ]


def test_can_run_on_keeps_a_task_waiting_until_a_capable_worker_comes(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    # Created before any worker: the first, incapable worker claims it, its can_run_on
    # refuses, and it hands the task back without counting an attempt.
    task = engine.create_work_request("needsfeature", {})
    plain = worker(imports=WORKER_IMPORTS)
    plain.wait_registered(engine)
    wait_for(lambda: "refused" in (task.refresh().reason or ""), what="the decline")
    assert task.state == "waiting" and task.attempt == 0
    assert task.reason == (
        f"no online worker can run it: it was refused by needsfeature.can_run_on on worker "
        f"{plain.name}"
    )
    # Created now, it is refused at creation by the same worker, which never claims it.
    second = engine.create_work_request("needsfeature", {})
    time.sleep(1.5)
    assert second.refresh().state == "waiting" and second.attempt == 0
    assert "refused by needsfeature.can_run_on" in (second.reason or "")
    capable = worker(imports=(*WORKER_IMPORTS, "class_tasks_feature"))
    task.wait(timeout=60)
    second.wait(timeout=60)
    assert task.state == "completed" and task.worker == capable.name
    assert second.state == "completed" and second.worker == capable.name
    assert task.attempt == 1


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_cancel_kills_the_commands_grandchildren(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    pid_file = tmp_path / "pid"
    task = engine.create_work_request("classsleep", {"pid_file": str(pid_file)})
    wait_for(lambda: pid_file.exists() and bool(pid_file.read_text().strip()), what="the command")
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)
    engine.cancel_task(task)
    task.wait(timeout=30)
    assert task.state == "canceled"
    wait_for(lambda: not _alive(grandchild), timeout=10, what="the grandchild to die")


def test_classes_from_entry_points_run_without_import(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskengine._binaries import find_worker_binary
    from test_task_classes import write_plugin

    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    write_plugin(plugin_dir)
    monkeypatch.syspath_prepend(str(plugin_dir))
    name = f"pytest-worker-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / f"{name}.log"
    argv = [find_worker_binary(), "--url", engine.url, "--name", name, "--heartbeat", "1"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=worker_env(plugin_dir), cwd=tmp_path
        )
    handle = WorkerProcess(process, name, engine.url, log_path, argv)
    try:
        record = handle.wait_registered(engine)
        assert record.metadata["plugintask:version"] == 7
        task = engine.create_work_request("plugintask", {}).wait(timeout=60)
        assert task.state == "completed", task.error
    finally:
        assert handle.stop() == 0


@pytest.mark.skipif(
    not hasattr(taskengine.Engine, "list_artifacts"),
    reason="the artifact store (engine.list_artifacts) is not in this build yet",
)
def test_debug_logs_and_captured_output_are_artifacts(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    worker(imports=WORKER_IMPORTS).wait_registered(engine)
    task = engine.create_work_request("classecho", {"who": "ann"}).wait(timeout=60)
    assert task.state == "completed"
    names = {a["name"] if isinstance(a, dict) else a.name for a in engine.list_artifacts(task.id)}  # type: ignore[attr-defined]
    assert {"cmd-output.log", "greeting.txt"} <= names
    assert engine.read_artifact(task.id, "greeting.txt") == b"hello ann\n"  # type: ignore[attr-defined]
    log = engine.read_artifact(task.id, "cmd-output.log")  # type: ignore[attr-defined]
    assert b"returncode: 0" in log
    _ = class_tasks
