"""The Python executor, run as a real subprocess speaking its JSON-lines protocol.

These need no native module: the executor must run without ``taskengine._core``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import taskengine._executor
from conftest import TESTS_DIR, executor_command, worker_env

EXECUTOR_FILE = Path(taskengine._executor.__file__).resolve()  # the package under test


class Executor:
    """One executor process and the protocol's two ends."""

    def __init__(self, *imports: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            executor_command(*imports),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
            cwd=cwd,
        )
        self.messages: list[dict[str, Any]] = []
        self._next_id = 0

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"executor closed its output; stderr:\n{self.stderr()}"
        assert line.endswith(b"\n")
        value: dict[str, Any] = json.loads(line)
        return value

    def send(self, request: dict[str, Any] | bytes) -> None:
        assert self.process.stdin is not None
        data = request if isinstance(request, bytes) else json.dumps(request).encode() + b"\n"
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def call(self, function: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        self.send(
            {
                "id": request_id,
                "attempt": 1,
                "function": function,
                "args": list(args),
                "kwargs": kwargs,
            }
        )
        while True:
            response = self.read()
            if "ok" in response:
                assert response["id"] == request_id
                return response
            self.messages.append(response)

    def close(self, timeout: float = 10) -> int:
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        return self.process.wait(timeout)

    def dispose(self) -> None:
        """Kill the process if it still runs and close every pipe."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[Executor]:
    """A ready executor that imported ``sample_tasks``."""
    with Executor("sample_tasks", cwd=tmp_path) as ex:
        ready = ex.read()
        assert ready == {"ready": True, "pid": ex.process.pid}
        yield ex


def test_runs_the_package_under_test_under_its_own_name(executor: Executor) -> None:
    # sys.modules["taskengine._executor"] is the running executor (not a second copy beside
    # __main__), and it is the taskengine under test, not some other installed one.
    response = executor.call("sample_tasks:executor_file")
    assert response["ok"], response
    assert Path(response["result"]).resolve() == EXECUTOR_FILE


def test_runs_a_function_and_returns_its_result(executor: Executor) -> None:
    assert executor.call("sample_tasks:add", 2, 3) == {"id": 1, "ok": True, "result": 5}


def test_kwargs_and_json_values_round_trip(executor: Executor) -> None:
    value = {"list": [1, 2.5, None, True], "text": "é ☃ \u0000", "nested": {"a": [{}]}}
    response = executor.call("sample_tasks:echo", 1, "two", value=value)
    assert response["ok"], response
    assert response["result"] == {"args": [1, "two"], "kwargs": {"value": value}}


def test_pulpcore_style_name_and_static_method(executor: Executor) -> None:
    assert executor.call("sample_tasks.add", 1, 1)["result"] == 2
    assert executor.call("sample_tasks:Tools.double", 21)["result"] == 42


def test_async_function_runs_to_completion(executor: Executor) -> None:
    assert executor.call("sample_tasks:async_add", 20, 22)["result"] == 42
    assert executor.call("sample_tasks:async_add", 1, 2)["result"] == 3  # a fresh loop each time


def test_exception_gives_type_message_and_frames(executor: Executor) -> None:
    response = executor.call("sample_tasks:fail", -5)
    assert response["ok"] is False
    error = response["error"]
    assert error["type"] == "ValueError"
    assert error["message"] == "value must be positive, got -5"
    frames = error["traceback"]
    assert [f["name"] for f in frames] == ["fail", "_check_positive"]
    outer, inner = frames
    assert outer["filename"] == str(TESTS_DIR / "sample_tasks.py")
    assert outer["line"] == "_check_positive(value)"
    assert outer["locals"] == {"value": "-5", "secret_local": "'visible in the traceback'"}
    assert inner["line"].startswith("raise ValueError(")
    assert isinstance(inner["lineno"], int) and inner["lineno"] > 0
    assert not any("_executor" in f["filename"] for f in frames)
    # the process survives a task's exception
    assert executor.call("sample_tasks:add", 1, 1)["result"] == 2


def test_qualified_exception_type_name(executor: Executor) -> None:
    response = executor.call("json:loads", "{")
    assert response["error"]["type"] == "json.decoder.JSONDecodeError"


def test_non_json_result_is_not_serializable(executor: Executor) -> None:
    for function in ("sample_tasks:not_json", "sample_tasks:nan"):
        response = executor.call(function)
        assert response["ok"] is False
        assert response["error"]["type"] == "NotSerializable"
        assert function in response["error"]["message"]
    assert "set" in executor.call("sample_tasks:not_json")["error"]["message"]


def test_missing_function_or_module_is_function_not_found(executor: Executor) -> None:
    missing = executor.call("sample_tasks:no_such_function")
    assert missing["ok"] is False
    assert missing["error"]["type"] == "FunctionNotFound"
    assert "no_such_function" in missing["error"]["message"]
    no_module = executor.call("no_such_module_xyz:f")
    assert no_module["error"]["type"] == "FunctionNotFound"
    assert "no_such_module_xyz" in no_module["error"]["message"]
    constant = executor.call("os:sep")
    assert constant["error"]["type"] == "FunctionNotFound"
    assert "not a callable" in constant["error"]["message"]


def test_module_failing_at_import_reports_its_own_error(executor: Executor) -> None:
    response = executor.call("broken_module:anything")
    error = response["error"]
    assert error["type"] == "RuntimeError"
    assert error["message"] == "broken_module cannot be imported"
    assert [f["name"] for f in error["traceback"]] == ["<module>"]


def test_print_and_raw_fd1_writes_go_to_stderr(executor: Executor) -> None:
    response = executor.call("sample_tasks:chatty", "hello there")
    assert response == {"id": 1, "ok": True, "result": "hello there"}
    assert executor.call("sample_tasks:add", 1, 2)["result"] == 3
    assert executor.close() == 0
    stderr = executor.stderr()
    assert stderr.count("hello there") == 2
    assert '"result": "fake"' in stderr
    assert "raw write to fd 1" in stderr


def test_stdin_of_a_task_is_empty(executor: Executor) -> None:
    assert executor.call("sample_tasks:read_stdin")["result"] == ""
    assert executor.call("sample_tasks:add", 1, 2)["result"] == 3  # no request was eaten


def test_sys_exit_in_a_task_is_an_error_not_an_exit(executor: Executor) -> None:
    response = executor.call("sample_tasks:exit_task", 3)
    assert response["error"]["type"] == "SystemExit"
    assert response["error"]["message"] == "3"
    assert executor.call("sample_tasks:getpid")["result"] == executor.process.pid


def test_one_process_serves_many_tasks(executor: Executor) -> None:
    pids = {executor.call("sample_tasks:getpid")["result"] for _ in range(20)}
    assert pids == {executor.process.pid}


def test_emit_sends_records_with_the_running_id(executor: Executor) -> None:
    response = executor.call("sample_tasks:report", 3)
    assert response["result"] == 3
    assert executor.messages == [
        {"progress": {"current": i, "total": 3}, "id": response["id"]} for i in (1, 2, 3)
    ]


def test_deep_recursion_traceback_is_capped(executor: Executor) -> None:
    error = executor.call("sample_tasks:recurse", 0)["error"]
    assert error["type"] == "RecursionError"
    frames = error["traceback"]
    assert 10 < len(frames) <= 101
    assert any(f["name"].endswith("frames omitted>") for f in frames)
    assert frames[0]["locals"] == {"depth": "0"}


def test_bad_request_with_an_id_gets_an_error_reply(executor: Executor) -> None:
    executor.send({"id": 41, "function": 12})
    response = executor.read()
    assert response["id"] == 41 and response["ok"] is False
    assert response["error"]["type"] == "InvalidRequest"
    executor.send(b"\n")  # blank lines are ignored
    assert executor.call("sample_tasks:add", 1, 2)["result"] == 3


def test_unreadable_request_ends_the_process(executor: Executor) -> None:
    executor.send(b"this is not json\n")
    assert executor.close() == 2
    assert "unreadable request" in executor.stderr()


def test_end_of_input_exits_zero(executor: Executor) -> None:
    assert executor.call("sample_tasks:add", 1, 2)["ok"]
    started = time.monotonic()
    assert executor.close() == 0
    assert time.monotonic() - started < 5


def test_failed_import_reports_not_ready_and_exits_1(tmp_path: Path) -> None:
    with Executor("sample_tasks", "broken_module", cwd=tmp_path) as ex:
        ready = ex.read()
        assert ready["ready"] is False
        assert ready["error"]["type"] == "RuntimeError"
        assert ready["error"]["message"] == "broken_module cannot be imported"
        assert ex.close() == 1
    with Executor("no_such_module_xyz", cwd=tmp_path) as missing:
        ready = missing.read()
        assert ready["ready"] is False
        assert ready["error"]["type"] == "ModuleNotFoundError"
        assert missing.close() == 1


def test_protocol_fds_are_not_inherited_by_task_children(executor: Executor) -> None:
    # A child that held the protocol pipes would keep the worker from seeing EOF; os.dup
    # makes the executor's copies non-inheritable, and 0/1 are /dev/null and stderr.
    response = executor.call("os:get_inheritable", 0)
    assert response["result"] is True  # fd 0 is /dev/null now, inheritable by design
    fds = executor.call("os:listdir", f"/proc/{executor.process.pid}/fd")["result"]
    protocol_fds = [int(fd) for fd in fds if int(fd) > 2]
    inheritable = [
        fd for fd in protocol_fds if executor.call("os:get_inheritable", fd).get("result") is True
    ]
    assert inheritable == []


def test_pipelined_requests_are_answered_in_order_and_fast(tmp_path: Path) -> None:
    with Executor("sample_tasks", cwd=tmp_path) as ex:
        _pipeline(ex)


def _pipeline(ex: Executor) -> None:
    assert ex.read()["ready"] is True
    count = 5000
    lines = b"".join(
        json.dumps(
            {"id": i, "attempt": 1, "function": "sample_tasks:add", "args": [i, 1], "kwargs": {}}
        ).encode()
        + b"\n"
        for i in range(count)
    )
    assert ex.process.stdin is not None

    def feed() -> None:
        assert ex.process.stdin is not None
        ex.process.stdin.write(lines)
        ex.process.stdin.close()

    started = time.monotonic()
    writer = threading.Thread(target=feed)
    writer.start()
    for i in range(count):
        assert ex.read() == {"id": i, "ok": True, "result": i + 1}
    elapsed = time.monotonic() - started
    writer.join()
    assert ex.process.wait(10) == 0
    assert elapsed < 10, f"{count} requests took {elapsed:.2f}s"


def test_executor_runs_without_the_native_module(tmp_path: Path) -> None:
    """Even with ``taskengine._core`` unimportable, the executor serves requests."""
    script = (
        "import sys, runpy; sys.modules['taskengine._core'] = None; "
        "sys.argv = ['x', '--import', 'sample_tasks']; "
        "runpy.run_module('taskengine._executor', run_name='__main__')"
    )
    request = {"id": 1, "function": "sample_tasks:add", "args": [1, 2], "kwargs": {}}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(request) + "\n",
        capture_output=True,
        text=True,
        env=worker_env(),
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["ready"] is True
    assert lines[1] == {"id": 1, "ok": True, "result": 3}
    assert "taskengine._core" not in done.stderr
