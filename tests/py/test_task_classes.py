"""Task classes without a store: typed data, registry, worker analysis, stages, commands."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import class_tasks
import pytest
import taskengine
from taskengine.tasks import _registry
from taskengine.tasks._runner import run_work_request


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_public_names_are_exported() -> None:
    for name in (
        "TaskTypes",
        "BaseTask",
        "BaseExternalTask",
        "RunCommandTask",
        "DefaultDynamicData",
        "BaseTaskData",
        "BaseDynamicTaskData",
        "TaskConfigError",
    ):
        assert name in taskengine.__all__
        assert getattr(taskengine, name) is not None
    assert taskengine.TaskConfigError is taskengine.errors.TaskConfigError
    assert issubclass(taskengine.TaskConfigError, taskengine.InvalidArgument)
    assert [t.value for t in taskengine.TaskTypes] == ["worker", "server", "signing"]


def test_invalid_data_names_the_field() -> None:
    with pytest.raises(taskengine.TaskConfigError, match=r"field 'who': Field required"):
        class_tasks.ClassEcho({})
    with pytest.raises(taskengine.TaskConfigError, match=r"field 'exit_code'") as info:
        class_tasks.ClassEcho({"who": "x", "exit_code": "many"})
    assert info.value.original_exception is not None
    with pytest.raises(taskengine.TaskConfigError, match=r"field 'colour': Extra inputs"):
        class_tasks.ClassEcho({"who": "x", "colour": "red"})
    with pytest.raises(taskengine.TaskConfigError, match="must be a JSON object"):
        class_tasks.ClassEcho(["who"])  # type: ignore[arg-type]


def test_data_is_the_validated_model() -> None:
    task = class_tasks.ClassEcho({"who": "ann"}, {"greeting": "hi", "subject": "ann"})
    assert isinstance(task.data, class_tasks.EchoData)
    assert task.data.who == "ann" and task.data.exit_code == 0
    assert isinstance(task.dynamic_data, class_tasks.EchoDynamic)
    assert task.get_subject() == "ann"
    assert class_tasks.ClassEcho.task_data_type is class_tasks.EchoData
    assert class_tasks.ClassEcho.dynamic_task_data_type is class_tasks.EchoDynamic
    other = task.instantiate_with_new_data({"who": "bob"})
    assert other.data.who == "bob" and other.dynamic_data is None


def test_config_error_add_parent_message() -> None:
    error = taskengine.TaskConfigError("field 'x' is bad")
    error.add_parent_message("workflow step 2")
    assert str(error) == "workflow step 2: field 'x' is bad"


def test_registry_functions() -> None:
    base = taskengine.BaseTask
    worker = taskengine.TaskTypes.WORKER
    assert base.class_from_name(worker, "ClassEcho") is class_tasks.ClassEcho
    assert base.class_from_name(worker, "classecho") is class_tasks.ClassEcho
    assert "classecho" in base.task_names(worker)
    assert "classstages" in base.worker_task_names()
    assert base.is_valid_task_name(worker, "CLASSECHO")
    assert not base.is_valid_task_name(taskengine.TaskTypes.SERVER, "classecho")
    assert base.is_worker_task("classecho")
    assert not base.is_worker_task("nosuchtask")
    with pytest.raises(taskengine.TaskConfigError, match="no worker task class named 'nope'"):
        base.class_from_name(worker, "nope")
    # Library base classes are not tasks.
    for name in ("basetask", "baseexternaltask", "runcommandtask", "defaultdynamicdata"):
        assert not base.is_valid_task_name(worker, name)


def test_server_task_is_not_a_worker_task() -> None:
    class ServerSide(taskengine.DefaultDynamicData[taskengine.BaseTaskData]):
        TASK_TYPE = taskengine.TaskTypes.SERVER
        TASK_VERSION = 1

        def _execute(self) -> bool:
            return True

        def get_label(self) -> str:
            return "server side"

    base = taskengine.BaseTask
    assert base.is_valid_task_name(taskengine.TaskTypes.SERVER, "serverside")
    assert "serverside" not in base.worker_task_names()
    assert not base.is_worker_task("serverside")
    dynamic = ServerSide({}).compute_dynamic_data(taskengine.TaskDatabase(None))
    assert dynamic == taskengine.BaseDynamicTaskData()


def test_a_name_taken_by_another_class_is_refused() -> None:
    with pytest.raises(taskengine.TaskConfigError, match=r"already used by class_tasks\.ClassEcho"):

        class ClassEcho(taskengine.DefaultDynamicData[taskengine.BaseTaskData]):
            TASK_VERSION = 1

            def _execute(self) -> bool:
                return True

            def get_label(self) -> str:
                return "duplicate"


def test_analyze_worker_and_can_run_on() -> None:
    assert class_tasks.ClassEcho.prefix_with_task_name("version") == "classecho:version"
    assert class_tasks.ClassEcho.analyze_worker() == {"classecho:version": 2}
    everything = taskengine.BaseTask.analyze_worker_all_tasks()
    assert everything["classecho:version"] == 2
    assert everything["classstages:version"] == 1
    assert "needsfeature:feature" in everything
    task = class_tasks.ClassEcho({"who": "x"})
    ok = {"system:worker_type": "worker", "classecho:version": 2}
    assert task.can_run_on(ok)
    assert not task.can_run_on({**ok, "classecho:version": 1})
    assert not task.can_run_on({**ok, "system:worker_type": "signing"})
    feature = class_tasks.NeedsFeature({})
    base = {"system:worker_type": "worker", "needsfeature:version": 1}
    assert not feature.can_run_on(base)
    assert feature.can_run_on({**base, "needsfeature:feature": True})


def test_external_task_stage_order(tmp_path: Path) -> None:
    log = tmp_path / "stages.json"
    assert class_tasks.ClassStages({"log": str(log)}).execute() is True
    assert json.loads(log.read_text()) == [
        "fetch_input",
        "configure_for_execution",
        "prepare_to_run",
        "run",
        "check_directory_for_consistency_errors",
        "upload_artifacts",
        "cleanup",
    ]


@pytest.mark.parametrize(
    ("fail_at", "stages"),
    [
        ("fetch_input", ["fetch_input", "cleanup"]),
        ("configure_for_execution", ["fetch_input", "configure_for_execution", "cleanup"]),
    ],
)
def test_a_failing_stage_stops_the_sequence_but_cleanup_runs(
    tmp_path: Path, fail_at: str, stages: list[str]
) -> None:
    log = tmp_path / "stages.json"
    assert class_tasks.ClassStages({"log": str(log), "fail_at": fail_at}).execute() is False
    assert json.loads(log.read_text()) == stages


def test_consistency_errors_fail_the_task_and_are_logged(tmp_path: Path) -> None:
    log = tmp_path / "stages.json"
    task = class_tasks.ClassStages(
        {"log": str(log), "fail_at": "check_directory_for_consistency_errors"}
    )
    assert task.execute() is False
    assert json.loads(log.read_text())[-2:] == ["upload_artifacts", "cleanup"]


class _Kept(class_tasks.ClassEcho, abstract=True):
    """ClassEcho keeping its debug log files and execution directory for inspection."""

    kept: dict[str, str]

    def task_succeeded(self, returncode: int | None, execute_directory: Path) -> bool:
        type(self).kept = {path.name: path.read_text() for path in [*self.debug_log_files()]} | {
            "greeting.txt": (execute_directory / "greeting.txt").read_text()
        }
        return super().task_succeeded(returncode, execute_directory)


def test_run_command_success_failure_and_output_capture() -> None:
    task = _Kept({"who": "ann"}, {"greeting": "hello ann"})
    assert task.execute() is True
    assert _Kept.kept["greeting.txt"] == "hello ann\n"
    log = _Kept.kept[task.CMD_LOG_FILENAME]
    assert "cmd: sh -c" in log and "stdout is captured in greeting.txt" in log
    assert f"\n{task.CMD_LOG_SEPARATOR}\n" in log  # between the command line and its output
    assert task.debug_log_files() == []  # cleaned up after execute()
    failing = _Kept({"who": "bob", "exit_code": 4}, {"greeting": "x"})
    assert failing.execute() is False


class _Exploding(class_tasks.ClassEcho, abstract=True):
    """ClassEcho whose command line cannot even be built."""

    def _cmdline(self) -> list[str]:
        raise RuntimeError("no command today")


def test_execute_logging_exceptions_logs_to_the_task_logger_and_returns_false(
    caplog: pytest.LogCaptureFixture,
) -> None:
    task = _Exploding({"who": "x"}, {"greeting": "x"})
    assert task.logger.name.startswith("taskengine.tasks.")
    with caplog.at_level(logging.DEBUG, logger=task.logger.name):
        assert task.execute_logging_exceptions() is False
    records = [r for r in caplog.records if r.name == task.logger.name]
    assert records, caplog.text
    assert "no command today" in caplog.text


def test_debug_log_files(tmp_path: Path) -> None:
    task = class_tasks.ClassEcho({"who": "x"})
    task.append_to_log_file("notes.log", ["one", "two"])
    with task.open_debug_log_file("notes.log") as log:
        log.write("three\n")
    (path,) = task.debug_log_files()
    assert path.name == "notes.log"
    assert path.read_text() == "one\ntwo\nthree\n"
    with pytest.raises(ValueError, match="plain file name"):
        task.open_debug_log_file("../escape.log")
    # Outside a running task there is no artifact store: nothing is stored, nothing raised.
    assert task.upload_artifact(path) is False


def test_abort_kills_the_command_group_grandchildren_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = class_tasks.ClassSleep({"pid_file": str(pid_file)})
    outcome: list[bool] = []
    runner = threading.Thread(target=lambda: outcome.append(task.execute()))
    runner.start()
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.02)
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)
    task.abort()
    runner.join(10)
    assert outcome == [False]
    assert task.aborted
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(grandchild)
    # Once aborted, a task runs no command at all.
    assert task.run_cmd(["true"], tmp_path) is None


def test_run_as_root_is_refused(tmp_path: Path) -> None:
    task = class_tasks.ClassEcho({"who": "x"})
    with pytest.raises(PermissionError):
        task.run_cmd(["true"], tmp_path, run_as_root=True)


def test_runner_outcomes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload: dict[str, Any] = {
        "task_name": "classecho",
        "task_type": "worker",
        "task_data": {"who": "ann"},
        "dynamic_data": {"greeting": "hi"},
        "event_reactions": {"on_success": [{"action": "record_in_task_history"}]},
    }
    done = run_work_request(1, 1, payload)
    assert done["outcome"] == "completed"
    assert done["result"] == {"success": True, "label": "echo ann"}
    assert [entry["event"] for entry in done["history"]] == ["on_success"]
    failed = run_work_request(1, 1, {**payload, "task_data": {"who": "a", "exit_code": 1}})
    assert failed["outcome"] == "failed"
    assert failed["error"]["type"] == "TaskFailed"
    assert failed["reason"] == "task reported failure"
    unknown = run_work_request(1, 1, {**payload, "task_name": "nope"})
    assert unknown["outcome"] == "failed" and unknown["error"]["type"] == "TaskConfigError"


def test_entry_points_register_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "plugin_tasks_mod" not in sys.modules
    # is_valid_task_name loads the group taskengine.tasks first
    assert taskengine.BaseTask.is_worker_task("PluginTask")
    assert "plugintask:version" in taskengine.BaseTask.analyze_worker_all_tasks()


def write_plugin(directory: Path) -> None:
    """A distribution with an entry point in ``taskengine.tasks`` and its module."""
    (directory / "plugin_tasks_mod.py").write_text(
        "import taskengine\n\n"
        "class PluginTask(taskengine.DefaultDynamicData[taskengine.BaseTaskData]):\n"
        "    TASK_VERSION = 7\n\n"
        "    def _execute(self) -> bool:\n"
        "        return True\n\n"
        "    def get_label(self) -> str:\n"
        "        return 'plugin'\n"
    )
    dist = directory / "plugin_tasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-tasks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[taskengine.tasks]\nplugin = plugin_tasks_mod\n")


def test_registry_survives_a_broken_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dist = tmp_path / "broken_tasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-tasks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[taskengine.tasks]\nbroken = no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _registry.load_entry_points()
    assert "no_such_module_xyz" in caplog.text
    assert taskengine.BaseTask.is_worker_task("classecho")


def test_signals_are_untouched() -> None:
    # Task classes must not install signal handlers in the caller's process.
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler)
    assert os.environ.get("CLASS_TASKS_IMPORTED") == "1"
    assert "class_tasks" in sys.modules


def test_invalid_event_reactions_are_config_errors() -> None:
    from taskengine.tasks import ActionRetryWithDelays
    from taskengine.tasks._reactions import collect_reactions

    class BadReactions(taskengine.DefaultDynamicData[taskengine.BaseTaskData], abstract=True):
        TASK_VERSION = 1
        event = "on_success"
        action: Any = None

        def _execute(self) -> bool:
            return True

        def get_label(self) -> str:
            return "bad"

        def get_event_reactions(self, event_name: Any) -> list[Any]:
            return [self.action] if event_name == self.event else []

    BadReactions.action = ActionRetryWithDelays(delays=[1])
    with pytest.raises(taskengine.TaskConfigError, match="only applies to on_failure"):
        collect_reactions(BadReactions({}))
    BadReactions.action = {"action": "send_notification"}
    with pytest.raises(taskengine.TaskConfigError, match=r"on_success reactions: field .*channel"):
        collect_reactions(BadReactions({}))
    with pytest.raises(ValueError, match="a delay must look like"):
        ActionRetryWithDelays(delays=["soon"])
