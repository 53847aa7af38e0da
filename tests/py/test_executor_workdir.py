"""The executor's per-task working directory: every task starts in the same, empty one,
whatever the last task left there or did to it, whether the directory's mtime (the mark set
when it was last known empty) or a listing tells the executor that something was left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import worker_env
from taskengine import _executor_context
from test_executor import Executor

LEFTOVERS = [
    "leave_file",
    "leave_tree",
    "leave_symlink",
    "move_file_in",
    "leave_and_remove",
    "remove_workdir",
    "replace_workdir",
    "move_away",
]


def serve(argv: list[str], requests: list[dict[str, Any]], cwd: Path) -> list[dict[str, Any]]:
    """Run an executor over ``requests`` until end of input; its lines after the ready one."""
    done = subprocess.run(
        argv,
        input=b"".join(json.dumps(r).encode() + b"\n" for r in requests),
        capture_output=True,
        env=worker_env(),
        cwd=cwd,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["ready"] is True
    return lines[1:]


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[Executor]:
    with Executor("workdir_tasks", cwd=tmp_path) as ex:
        assert ex.read()["ready"] is True
        yield ex


def test_every_task_starts_in_the_same_empty_directory(executor: Executor) -> None:
    first = executor.call("workdir_tasks:where")["result"]
    assert first["entries"] == []
    for leftover in LEFTOVERS:
        assert executor.call(f"workdir_tasks:{leftover}")["ok"] is True
        after = executor.call("workdir_tasks:where")["result"]
        assert after == {"cwd": first["cwd"], "entries": []}, f"after {leftover}"


def test_a_failed_task_leaves_nothing_behind_either(executor: Executor) -> None:
    first = executor.call("workdir_tasks:where")["result"]
    assert executor.call("workdir_tasks:leave_file")["ok"] is True
    assert executor.call("sample_tasks:fail")["ok"] is False
    assert executor.call("workdir_tasks:where")["result"] == first


def test_modules_on_a_relative_search_path_import_after_tasks(tmp_path: Path) -> None:
    # The executor stays in the task's directory between tasks; a module first needed then
    # must still be found through a relative sys.path entry, from where the executor started
    # (site.py makes PYTHONPATH's entries absolute; code that appends to sys.path may not).
    (tmp_path / "relative").mkdir()
    (tmp_path / "relative" / "late_module.py").write_text("def answer():\n    return 42\n")
    (tmp_path / "path_setup.py").write_text("import sys\nsys.path.append('relative')\n")
    argv = [sys.executable, "-m", "taskengine._executor"]
    argv += ["--import", "path_setup", "--import", "workdir_tasks"]
    requests = [
        {"id": 1, "function": "workdir_tasks:leave_file"},
        {"id": 2, "function": "late_module:answer"},
    ]
    responses = serve(argv, requests, tmp_path)
    assert responses == [{"id": 1, "ok": True, "result": None}, {"id": 2, "ok": True, "result": 42}]


def test_without_the_mark_the_directory_is_listed_after_every_task(tmp_path: Path) -> None:
    # As on a file system that does not keep the mtime as set: never "untouched".
    script = (
        "import runpy, sys; import taskengine._executor_context as c; "
        "c._mark_empty = lambda path: None; "
        "sys.argv = ['x', '--import', 'workdir_tasks']; "
        "runpy.run_module('taskengine._executor', run_name='__main__')"
    )
    requests: list[dict[str, Any]] = []
    for leftover in ["where", *LEFTOVERS]:
        requests.append({"id": len(requests), "function": f"workdir_tasks:{leftover}"})
        requests.append({"id": len(requests), "function": "workdir_tasks:where"})
    responses = serve([sys.executable, "-c", script], requests, tmp_path)
    assert all(r["ok"] for r in responses), responses
    places = [r["result"] for r in responses if r["id"] % 2 == 1]
    assert places == [places[0]] * len(places) and places[0]["entries"] == []


def test_non_integer_ids_are_echoed(executor: Executor) -> None:
    executor.send({"id": "seven", "function": "sample_tasks:add", "args": [3, 4]})
    assert executor.read() == {"id": "seven", "ok": True, "result": 7}


# -- the mark itself ---------------------------------------------------------------------


@pytest.fixture
def marked(tmp_path: Path) -> Path:
    directory = tmp_path / "marked"
    directory.mkdir()
    _executor_context._mark_empty(str(directory))
    return directory


def test_a_marked_directory_is_untouched_until_an_entry_changes(marked: Path) -> None:
    assert _executor_context._untouched(str(marked))
    (marked / "file").write_text("x")
    assert not _executor_context._untouched(str(marked))
    _executor_context._mark_empty(str(marked))
    (marked / "file").write_text("rewritten")  # an entry that is there already
    assert _executor_context._untouched(str(marked))
    (marked / "file").unlink()
    assert not _executor_context._untouched(str(marked))


@pytest.mark.parametrize(
    "change", ["mkdir", "rename_in", "rename_out", "symlink", "link", "rmdir", "replace"]
)
def test_entries_added_removed_or_the_directory_replaced_show(marked: Path, change: str) -> None:
    outside = marked.parent / "outside"
    outside.write_text("x")
    if change == "mkdir":
        (marked / "sub").mkdir()
    elif change == "rename_in":
        outside.rename(marked / "inside")
    elif change == "rename_out":
        (marked / "inside").write_text("x")
        _executor_context._mark_empty(str(marked))
        (marked / "inside").rename(outside)
    elif change == "symlink":
        (marked / "link").symlink_to("/nonexistent")
    elif change == "link":
        os.link(outside, marked / "hard")
    elif change == "rmdir":
        marked.rmdir()
    else:
        marked.rename(marked.parent / "elsewhere")
        marked.mkdir()
    assert not _executor_context._untouched(str(marked))
