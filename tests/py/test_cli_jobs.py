"""``taskengine jobs``: options and environment variables, then load and run on real stores
with a real worker."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import WorkerProcess
from taskengine.cli import build_parser, main
from test_cli import run_cli

if TYPE_CHECKING:
    from taskengine import Engine

JOBS = """
jobs:
  - id: fetch
    function: job_tasks:fetch
    args: [3]
  - id: total
    title: Sum them
    function: job_tasks:total
    args: [!retval fetch]
    dependencies: [fetch]
  - id: boom
    function: job_tasks:explode
    args: [5]
"""


def test_jobs_help_names_the_environment_variables() -> None:
    done = run_cli("jobs", "run", "--help")
    assert done.returncode == 0
    for variable in ("TASKENGINE_JOBS_WAIT", "TASKENGINE_JOBS_PIN", "TASKENGINE_URL"):
        assert variable in done.stdout


def test_jobs_run_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKENGINE_JOBS_WAIT", "yes")
    monkeypatch.setenv("TASKENGINE_JOBS_WAIT_TIMEOUT", "12")
    monkeypatch.setenv("TASKENGINE_JOBS_PIN", "fetch=3, other=new")
    args = build_parser().parse_args(["jobs", "run", "total"])
    assert (args.wait, args.wait_timeout) == (True, 12.0)
    assert args.pins == [("fetch", 3), ("other", None)]
    args = build_parser().parse_args(["jobs", "run", "total", "--pin", "fetch=4"])
    assert args.pins == [("fetch", 4)]


def test_jobs_load_and_run_errors_are_one_line(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", store_url, "install"]) == 0
    capsys.readouterr()
    assert main(["--url", store_url, "jobs", "load", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err == (
        f"taskengine: error: job file '{tmp_path / 'missing.yaml'}' does not exist\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n- {id: a, function: m:f, dependencies: [zz]}\n")
    assert main(["--url", store_url, "jobs", "load", str(bad)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("taskengine: error: JobConfigError: job 'a', field 'dependencies'")
    assert error.count("\n") == 1
    assert main(["--url", store_url, "jobs", "run", "nope"]) == 2
    assert "NotFound: job 'nope' does not exist" in capsys.readouterr().err
    done = run_cli("--url", store_url, "jobs", "run", "x", "--pin", "broken")
    assert done.returncode == 2
    assert "argument --pin: expected JOB=BUILD_ID or JOB=new, not 'broken'" in done.stderr


def test_jobs_load_run_wait_list_and_builds(
    engine: Engine,
    worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    url = ["--url", engine.url]
    assert main([*url, "--json", "jobs", "load", str(path)]) == 0
    loaded = json.loads(capsys.readouterr().out)
    assert loaded == {
        "created": ["fetch", "total", "boom"],
        "updated": [],
        "unchanged": [],
        "removed": [],
    }
    assert main([*url, "jobs", "load", str(path)]) == 0
    assert "0 created, 0 updated, 3 unchanged, 0 removed" in capsys.readouterr().out

    assert main([*url, "--json", "jobs", "run", "total"]) == 0
    queued = json.loads(capsys.readouterr().out)
    assert queued["job_id"] == "total"
    assert engine.get_build(queued["build_id"]).state == "blocked"

    worker(imports=("job_tasks",))
    assert main([*url, "jobs", "run", "total", "--wait", "--wait-timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "(fetch): completed" in out and "(total): completed" in out
    assert "retval" in out and "6" in out and "Sum them" in out

    fetch = engine.get_latest_successful_build("fetch")
    assert fetch is not None
    argv = [*url, "--json", "jobs", "run", "total", "--pin", f"fetch={fetch.id}", "--wait"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    done = json.loads(captured.out)
    assert (done["success"], done["retval"], done["config"]["dependency_builds"]) == (
        True,
        6,
        {"fetch": fetch.id},
    )
    assert "(total): completed" in captured.err  # progress goes to stderr with --json

    assert main([*url, "jobs", "run", "boom", "--wait", "--wait-timeout", "60"]) == 1
    out = capsys.readouterr().out
    assert "ValueError: over the limit 10" in out and "in explode" in out

    assert main([*url, "--json", "jobs", "list"]) == 0
    assert [job["id"] for job in json.loads(capsys.readouterr().out)] == ["boom", "fetch", "total"]
    assert main([*url, "jobs", "builds", "total", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "completed" in lines[1]
