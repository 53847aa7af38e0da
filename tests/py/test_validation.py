"""Input validation done in Python before anything reaches the store (no native core needed)."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sample_tasks
from taskengine import (
    Command,
    FunctionNotFound,
    InvalidArgument,
    NotSerializable,
    Task,
    TaskGroup,
)
from taskengine._functions import function_path, normalize_path, resolve
from taskengine._spec import check_json_args, spec_options, to_micros


def module_level() -> int:
    """A dispatchable function of this test module."""
    return 1


# -- Command --------------------------------------------------------------------------------


def test_command_keeps_a_tuple_argv_and_gives_its_payload() -> None:
    cmd = Command(["sh", "-c", "echo hi"], env={"A": "1"}, cwd=Path("/tmp"))
    assert cmd.argv == ("sh", "-c", "echo hi")
    assert cmd.name == "sh"
    assert cmd.cwd == "/tmp"
    assert cmd.payload() == {"argv": ["sh", "-c", "echo hi"], "env": {"A": "1"}, "cwd": "/tmp"}
    assert cmd == Command(("sh", "-c", "echo hi"), env={"A": "1"}, cwd="/tmp")
    assert hash(cmd) == hash(Command(("sh", "-c", "echo hi"), env={"A": "1"}, cwd="/tmp"))
    assert Command([Path("/bin/true")]).argv == ("/bin/true",)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"argv": []}, "empty"),
        ({"argv": ()}, "empty"),
        ({"argv": "echo hi"}, "list of strings"),
        ({"argv": ["echo", 1]}, "argv[1]"),
        ({"argv": [""]}, "argv[0]"),
        ({"argv": ["a\0b"]}, "NUL"),
        ({"argv": None}, "list of strings"),
        ({"argv": ["true"], "env": ["A=1"]}, "env"),
        ({"argv": ["true"], "env": {"A=B": "1"}}, "variable name"),
        ({"argv": ["true"], "env": {"A": 1}}, "env['A']"),
        ({"argv": ["true"], "cwd": ""}, "cwd"),
        ({"argv": ["true"], "cwd": 3}, "cwd"),
    ],
)
def test_bad_commands_raise_invalid_argument(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words.replace("[", r"\[").replace("]", r"\]")):
        Command(**kwargs)


# -- function names ------------------------------------------------------------------------


def test_function_path_of_module_level_callables() -> None:
    assert function_path(sample_tasks.add) == "sample_tasks:add"
    assert function_path(sample_tasks.Tools.double) == "sample_tasks:Tools.double"
    assert function_path(module_level) == f"{__name__}:module_level"
    assert function_path(math.sqrt) == "math:sqrt"


@pytest.mark.parametrize(
    ("func", "words"),
    [
        (lambda: 1, "lambda"),
        (functools.partial(sample_tasks.add, 1), "partial"),
        (Command(["true"]).payload, "bound method"),
        (sample_tasks.Tools(), "no importable name"),
    ],
)
def test_function_path_rejects_what_a_worker_cannot_import(func: Any, words: str) -> None:
    with pytest.raises(FunctionNotFound, match=words):
        function_path(func)


def test_function_path_rejects_nested_and_main_functions() -> None:
    def nested() -> None:
        pass

    with pytest.raises(FunctionNotFound, match="inside another function"):
        function_path(nested)
    nested.__module__ = "__main__"
    nested.__qualname__ = "nested"
    with pytest.raises(FunctionNotFound, match="__main__"):
        function_path(nested)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pkg.mod:fn", "pkg.mod:fn"),
        ("pkg.mod.fn", "pkg.mod:fn"),
        (" mod:Cls.method ", "mod:Cls.method"),
    ],
)
def test_normalize_path(text: str, expected: str) -> None:
    assert normalize_path(text) == expected


@pytest.mark.parametrize("text", ["", "fn", "mod:", ":fn", "a b:c", "mod:fn()", "1mod:fn"])
def test_normalize_path_rejects_non_names(text: str) -> None:
    with pytest.raises(FunctionNotFound):
        normalize_path(text)


def test_resolve() -> None:
    assert resolve("sample_tasks:add") is sample_tasks.add
    assert resolve("sample_tasks.add") is sample_tasks.add
    with pytest.raises(FunctionNotFound, match="no_such_module_xyz"):
        resolve("no_such_module_xyz.sub:fn")
    with pytest.raises(FunctionNotFound, match="has no attribute"):
        resolve("sample_tasks:missing")
    with pytest.raises(FunctionNotFound, match="not a callable"):
        resolve("math:pi")
    with pytest.raises(RuntimeError, match="broken_module cannot be imported"):
        resolve("broken_module:f")


# -- arguments ---------------------------------------------------------------------------


def test_json_args_pass_and_come_back_as_list_and_dict() -> None:
    args, kwargs = check_json_args((1, "a", [1.5, None], {"k": (True,)}), {"x": {"y": []}})
    assert args == [1, "a", [1.5, None], {"k": (True,)}]
    assert kwargs == {"x": {"y": []}}
    assert check_json_args([], None) == ([], {})


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        (({1, 2},), None, "args[0] is a builtins.set"),
        ((1, [2, object()]), None, "args[1][1] is a builtins.object"),
        ((), {"when": datetime(2024, 1, 1)}, "kwargs['when'] is a datetime.datetime"),
        ((), {"x": {"y": float("nan")}}, "kwargs['x']['y'] is nan"),
        ((float("inf"),), None, "args[0] is inf"),
        (({1: "a"},), None, "args[0] has the key 1 of type int"),
        ((b"bytes",), None, "args[0] is a builtins.bytes"),
    ],
)
def test_non_json_args_raise_not_serializable_naming_them(
    args: tuple[Any, ...], kwargs: dict[str, Any] | None, words: str
) -> None:
    with pytest.raises(NotSerializable) as info:
        check_json_args(args, kwargs)
    assert words in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_self_containing_args_are_rejected() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(NotSerializable, match="nested more than"):
        check_json_args((loop,), None)


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        ("abc", None, "args must be a list or tuple"),
        ({"a": 1}, None, "args must be a list or tuple"),
        (5, None, "args must be a list or tuple"),
        ((), [("a", 1)], "kwargs must be a dict"),
        ((), {1: 2}, "not a parameter name"),
        ((), {"not valid": 2}, "not a parameter name"),
    ],
)
def test_wrong_argument_containers(args: Any, kwargs: Any, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        check_json_args(args, kwargs)


# -- options -------------------------------------------------------------------------------


def test_default_options() -> None:
    assert spec_options() == {
        "priority": 0,
        "not_before": None,
        "exclusive_resources": [],
        "shared_resources": [],
        "task_group": None,
        "depends_on": [],
        "allow_failure": False,
        "requirements": {
            "worker_type": "worker",
            "task_version": None,
            "architecture": None,
            "versions": {},
        },
        "retry": {
            "max_attempts": 1,
            "delays": [],
            "backoff_base": 1.0,
            "backoff_max": 3600.0,
            "jitter": True,
        },
        "timeout": None,
        "unique_key": None,
    }


class _FakeEngine:
    pass


def test_options_are_converted() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    task = Task(_FakeEngine(), 7)  # type: ignore[arg-type]
    options = spec_options(
        exclusive_resources=("a", "b", "a"),
        shared_resources=iter(["c"]),
        task_group=TaskGroup(3, "g"),
        depends_on=[task, 8, 8],
        versions={"core": "1.2"},
        priority=-5,
        not_before=30,
        timeout=timedelta(minutes=1),
        retries=2,
        retry_backoff=0,
        allow_failure=True,
        unique_key="k",
        worker_type="signing",
        now=now,
    )
    assert options["exclusive_resources"] == ["a", "b"]
    assert options["shared_resources"] == ["c"]
    assert options["task_group"] == 3
    assert options["depends_on"] == [7, 8]
    assert options["requirements"]["versions"] == {"core": "1.2"}
    assert options["requirements"]["worker_type"] == "signing"
    assert options["priority"] == -5
    assert options["not_before"] == to_micros(now) + 30_000_000
    assert options["timeout"] == 60.0
    assert options["retry"]["max_attempts"] == 3
    assert options["retry"]["backoff_base"] == 0.0
    assert options["allow_failure"] is True
    assert options["unique_key"] == "k"
    moment = datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    assert spec_options(not_before=moment)["not_before"] == to_micros(moment)
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": "10"}, "timeout"),
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": 2**40}, "priority"),
        ({"exclusive_resources": "repo"}, "exclusive_resources"),
        ({"exclusive_resources": [1]}, "exclusive_resources"),
        ({"shared_resources": [""]}, "shared_resources"),
        ({"exclusive_resources": ["r"], "shared_resources": ["r"]}, "both"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retry_backoff": -1}, "retry_backoff"),
        ({"not_before": datetime(2030, 1, 1)}, "not_before"),
        ({"not_before": -5}, "not_before"),
        ({"not_before": "tomorrow"}, "not_before"),
        ({"immediate": True, "deferred": False, "retries": 1}, "retries need deferred=True"),
        ({"immediate": "yes"}, "immediate"),
        ({"deferred": False}, "immediate and deferred cannot both be False"),
        ({"worker_type": "gpu"}, "worker_type"),
        ({"versions": {"core": 1}}, "versions"),
        ({"versions": ["core"]}, "versions"),
        ({"depends_on": [0]}, "depends_on"),
        ({"depends_on": 5}, "depends_on"),
        ({"depends_on": ["5"]}, "depends_on"),
        ({"task_group": "g"}, "task_group"),
        ({"task_group": -1}, "task_group"),
        ({"allow_failure": 1}, "allow_failure"),
        ({"unique_key": ""}, "unique_key"),
        ({"unique_key": 5}, "unique_key"),
    ],
)
def test_bad_options_raise_invalid_argument_naming_them(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        spec_options(**options)
    assert named in str(info.value)
