"""The ``taskengine`` command line: parsing and environment variables (no core needed), then
the commands against real stores, and the demo with a real worker."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import WorkerProcess, worker_env
from taskengine.cli import build_parser, main

if TYPE_CHECKING:
    from taskengine import Engine


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m taskengine.cli ARGS`` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "taskengine.cli", *args],
        capture_output=True,
        text=True,
        env={**worker_env(), **(env or {})},
        timeout=120,
    )


# -- parsing (no core needed) ----------------------------------------------------------------


def test_help_names_the_environment_variables() -> None:
    text = build_parser().format_help()
    assert "TASKENGINE_URL" in text and "TASKENGINE_JSON" in text
    for command, variable in [
        ("dispatch", "TASKENGINE_DISPATCH_KWARGS"),
        ("demo", "TASKENGINE_DEMO_CONCURRENCY"),
        ("workers", "TASKENGINE_WORKERS_ALL"),
    ]:
        done = run_cli(command, "--help")
        assert done.returncode == 0
        assert variable in done.stdout


def test_options_come_from_the_environment_and_the_command_line_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASKENGINE_TASKS_LIMIT", "7")
    monkeypatch.setenv("TASKENGINE_TASKS_STATE", "failed")
    monkeypatch.setenv("TASKENGINE_JSON", "yes")
    monkeypatch.setenv("TASKENGINE_DISPATCH_ARGS", "[1, 2]")
    monkeypatch.setenv("TASKENGINE_DISPATCH_EXCLUSIVE", "a, b")
    args = build_parser().parse_args(["tasks", "list"])
    assert (args.limit, args.state, args.json) == (7, "failed", True)
    assert build_parser().parse_args(["tasks", "list", "--limit", "3"]).limit == 3
    dispatch = build_parser().parse_args(["dispatch", "m:f"])
    assert dispatch.args == [1, 2]
    assert dispatch.exclusive == ["a", "b"]
    override = build_parser().parse_args(["dispatch", "m:f", "--arg", '"x"', "--exclusive", "c"])
    assert override.args == ["x"]
    assert override.exclusive == ["c"]


def test_global_options_work_before_and_after_the_command() -> None:
    before = build_parser().parse_args(["--url", "sqlite:///a.db", "--json", "tasks", "list"])
    after = build_parser().parse_args(["tasks", "list", "--url", "sqlite:///a.db", "--json"])
    assert (before.url, before.json) == (after.url, after.json) == ("sqlite:///a.db", True)


@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        (["tasks", "list", "--limit", "0"], {}, "--limit"),
        (["tasks", "list", "--state", "sleeping"], {}, "--state"),
        (["dispatch", "m:f", "--kwargs", "[1]"], {}, "--kwargs"),
        (["dispatch", "m:f", "--arg", "{bad"], {}, "not JSON"),
        (["tasks", "list"], {"TASKENGINE_TASKS_LIMIT": "many"}, "TASKENGINE_TASKS_LIMIT"),
        (["tasks", "list"], {"TASKENGINE_JSON": "perhaps"}, "TASKENGINE_JSON"),
        (["uninstall"], {}, "--yes"),
        (["nonsense"], {}, "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], env: dict[str, str], words: str) -> None:
    done = run_cli(*argv, env={"TASKENGINE_URL": "sqlite:///unused.db", **env})
    assert done.returncode == 2, done
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_errors_show_a_traceback_only_with_debug(tmp_path: Path) -> None:
    url = f"mysql://{tmp_path}"
    plain = run_cli("--url", url, "install")
    assert plain.returncode == 2
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("taskengine: error: "), plain.stderr
    debug = run_cli("--url", url, "--debug", "install")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == lines[0]


def _fake_worker(tmp_path: Path) -> Path:
    script = tmp_path / "fake-worker"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_worker_command_execs_the_native_worker_with_url_and_arguments(tmp_path: Path) -> None:
    fake = _fake_worker(tmp_path)
    env = {"TASKENGINE_WORKER_BINARY": str(fake), "TASKENGINE_URL": "sqlite:///env.db"}
    done = run_cli("worker", "--concurrency", "3", "--import", "mod", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str(fake),
        "--url",
        "sqlite:///env.db",
        "--concurrency",
        "3",
        "--import",
        "mod",
    ]
    explicit = run_cli("--url", "sqlite:///x.db", "worker", "--help", env=env)
    assert explicit.stdout.splitlines()[1:] == ["--url", "sqlite:///x.db", "--help"]
    own_url = run_cli("worker", "--url", "sqlite:///y.db", env=env)
    assert own_url.stdout.splitlines()[1:] == ["--url", "sqlite:///y.db"]
    default = run_cli("worker", env={**env, "TASKENGINE_URL": ""})
    assert default.stdout.splitlines()[1:] == ["--url", "sqlite:///./taskengine.db"]


def test_worker_command_without_a_binary_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        "TASKENGINE_WORKER_BINARY": str(tmp_path / "missing"),
    }
    done = run_cli("worker", env=env)
    assert done.returncode == 2
    assert "TASKENGINE_WORKER_BINARY" in done.stderr


# -- commands on a real store --------------------------------------------------------------


def test_install_dispatch_show_list_cancel(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", store_url, "--json", "install"]) == 0
    installed = json.loads(capsys.readouterr().out)
    assert installed["schema_version"] >= 1

    assert (
        main(
            [
                "--url",
                store_url,
                "--json",
                "dispatch",
                "sample_tasks:add",
                "--arg",
                "2",
                "--arg",
                "3",
                "--priority",
                "4",
            ]
        )
        == 0
    )
    task_id = json.loads(capsys.readouterr().out)["id"]

    assert main(["--url", store_url, "--json", "tasks", "show", str(task_id)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == task_id
    assert shown["state"] == "waiting"
    assert shown["priority"] == 4
    assert shown["payload"]["args"] == [2, 3]

    assert main(["--url", store_url, "tasks", "show", str(task_id)]) == 0
    text = capsys.readouterr().out
    assert "sample_tasks:add" in text and "waiting" in text

    assert main(["--url", store_url, "--json", "tasks", "list"]) == 0
    assert [t["id"] for t in json.loads(capsys.readouterr().out)] == [task_id]
    assert main(["--url", store_url, "tasks", "list", "--state", "waiting"]) == 0
    assert "sample_tasks:add" in capsys.readouterr().out

    assert main(["--url", store_url, "--json", "tasks", "cancel", str(task_id)]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "canceled"

    assert main(["--url", store_url, "tasks", "show", "987654"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("taskengine: error: NotFound") and error.count("\n") == 1

    assert main(["--url", store_url, "dispatch", "no_such_module_xyz:f"]) == 2
    assert "FunctionNotFound" in capsys.readouterr().err

    assert main(["--url", store_url, "--json", "workers"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert main(["--url", store_url, "uninstall", "--yes"]) == 0
    capsys.readouterr()


def test_dispatch_wait_runs_on_a_worker(
    engine: Engine, worker: Callable[..., WorkerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    worker()
    argv = [
        "--url",
        engine.url,
        "--json",
        "dispatch",
        "sample_tasks:add",
        "--arg",
        "1",
        "--arg",
        "41",
        "--wait",
        "--wait-timeout",
        "60",
    ]
    assert main(argv) == 0
    done = json.loads(capsys.readouterr().out)
    assert (done["state"], done["result"]) == ("completed", 42)
    failing = [
        "--url",
        engine.url,
        "dispatch",
        "sample_tasks:fail",
        "--wait",
        "--wait-timeout",
        "60",
    ]
    assert main(failing) == 1
    out = capsys.readouterr().out
    assert "ValueError: value must be positive" in out
    assert "in _check_positive" in out


def test_submit_runs_a_command_and_shows_progress(
    engine: Engine, worker: Callable[..., WorkerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    worker()
    group = engine.create_task_group("cli")
    argv = ["--url", engine.url, "submit", "--env", "GREETING=hello", "--group", str(group.id)]
    argv += ["--wait", "--wait-timeout", "60", "--", "sh", "-c", 'echo "$GREETING from sh"']
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "hello from sh" in captured.out
    # Progress goes to stderr, one line per state change, ending with the final state.
    progress = captured.err.strip().splitlines()
    assert progress and progress[-1].endswith(": completed"), progress
    (task,) = engine.list_tasks(task_group=group)
    assert task.kind == "command" and task.state == "completed"

    failing = ["--url", engine.url, "--json", "submit", "--wait", "--", "sh", "-c", "exit 3"]
    assert main(failing) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["state"] == "failed"
    assert captured.err == ""  # --json: nothing but the JSON document


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["submit"], "submit needs a command"),
        (["submit", "--env", "NOEQUALS", "--", "true"], "KEY=VALUE"),
        (["dispatch", "sample_tasks:add", "--depends-on", "0"], "--depends-on"),
    ],
)
def test_submit_and_dispatch_reject_bad_input_in_one_line(
    argv: list[str], words: str, tmp_path: Path
) -> None:
    done = run_cli("--url", f"sqlite:///{tmp_path / 'x.db'}", *argv)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    # argparse may print the usage first; the error itself is one line.
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("taskengine") and words in last, done.stderr


def test_demo_runs_everything_as_planned(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKENGINE_URL", "mysql://the-demo-must-not-use-this")
    assert main(["demo", "--tasks", "6", "--concurrency", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True
    assert summary["unexpected"] == []
    assert summary["worker_exit"] == 0
    assert summary["counts"] == {"completed": 5 + 9, "failed": 2}
    failed = {row["name"] for row in summary["tasks"] if row["state"] == "failed"}
    assert failed == {"deliberate_failure", "false"}
