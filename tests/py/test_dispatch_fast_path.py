"""``Engine.dispatch``'s fast path: every option at its default, plain positional arguments.

Such a call skips the option checks (done once at import) and sends only the task's name and
payload to the core. These tests hold it to the careful path: the same stored row, the same
typed errors for bad input with nothing stored, and every option given by the caller taken
into account.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sample_tasks
from taskengine import FunctionNotFound, InvalidArgument, NotSerializable
from taskengine._functions import normalize_path
from taskengine._native import _core

if TYPE_CHECKING:
    from taskengine.engine import Engine

# Fields that differ between two tasks dispatched one after the other.
_PER_TASK = ("id", "created_at")


def _row(engine: Engine, task_id: int) -> dict[str, Any]:
    row = engine.get_task(task_id).as_dict()
    for field in _PER_TASK:
        row.pop(field)
    return row


def _careful_options() -> dict[str, Any]:
    """Options equal to the defaults but not the default objects: the careful path."""
    return {
        "exclusive_resources": [],
        "shared_resources": [],
        "depends_on": [],
        "versions": {},
        "worker_type": "".join(["wor", "ker"]),
    }


@pytest.mark.parametrize(
    "args",
    [
        (),
        (1, 2),
        [1, "two", [3.5, None, True, [False]]],
        ("x[y]", -(2**62), 1e300),
    ],
)
def test_fast_path_stores_what_the_careful_path_stores(engine: Engine, args: Any) -> None:
    fast = engine.dispatch(sample_tasks.echo, args)
    careful = engine.dispatch(sample_tasks.echo, args, **_careful_options())
    assert _row(engine, fast.id) == _row(engine, careful.id)
    assert fast.as_dict()["payload"] == {
        "function": "sample_tasks:echo",
        "args": list(args),
        "kwargs": {},
    }


def test_empty_kwargs_and_names_take_the_fast_path_to_the_same_row(engine: Engine) -> None:
    fast = engine.dispatch("sample_tasks.add", (1, 2), {})
    careful = engine.dispatch("sample_tasks:add", (1, 2), {}, **_careful_options())
    assert _row(engine, fast.id) == _row(engine, careful.id)
    assert fast.as_dict()["name"] == "sample_tasks:add"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((math.nan,), NotSerializable),
        ((math.inf,), NotSerializable),
        (({1, 2},), NotSerializable),
        (({1: "int key"},), NotSerializable),
        ((b"bytes",), NotSerializable),
        ("not a list", InvalidArgument),
        ({"a": 1}, InvalidArgument),
    ],
)
def test_bad_arguments_raise_the_typed_error_and_store_nothing(
    engine: Engine, args: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        engine.dispatch(sample_tasks.echo, args)
    assert engine.list_tasks() == []


def test_arguments_nested_too_deeply_are_refused(engine: Engine) -> None:
    deep: list[Any] = []
    for _ in range(250):
        deep = [deep]
    with pytest.raises(NotSerializable, match="nested more than"):
        engine.dispatch(sample_tasks.echo, (deep,))
    assert engine.list_tasks() == []


def test_nesting_just_within_the_limit_is_stored(engine: Engine) -> None:
    nested: list[Any] = []
    for _ in range(150):
        nested = [nested]
    task = engine.dispatch(sample_tasks.echo, (nested,))
    assert task.as_dict()["payload"]["args"] == [nested]


def test_a_task_in_the_arguments_still_becomes_a_dependency(engine: Engine) -> None:
    parent = engine.dispatch(sample_tasks.add, (1, 2))
    child = engine.dispatch(sample_tasks.echo, (parent, 3))
    row = child.as_dict()
    assert row["payload"]["args"] == [{"$retval": parent.id}, 3]
    assert row["depends_on"] == [parent.id]
    assert row["state"] == "blocked"


def test_unknown_functions_are_refused_again_and_again(engine: Engine) -> None:
    for _ in range(2):  # the second time from normalize_path's cache
        with pytest.raises(FunctionNotFound):
            engine.dispatch("sample_tasks:no_such_function")
        with pytest.raises(FunctionNotFound):
            engine.dispatch("not a name")
    assert engine.list_tasks() == []


def test_normalize_path_answers_the_same_from_its_cache() -> None:
    assert normalize_path("pkg.mod.fn") == "pkg.mod:fn"
    assert normalize_path("pkg.mod.fn") == "pkg.mod:fn"
    assert normalize_path(" pkg.mod:Cls.meth ") == "pkg.mod:Cls.meth"
    for _ in range(2):
        with pytest.raises(FunctionNotFound):
            normalize_path("pkg.mod:")


def _stored(engine: Engine, **options: Any) -> dict[str, Any]:
    return engine.dispatch(sample_tasks.add, (1, 2), **options).as_dict()


def test_every_option_given_is_taken_into_account(engine: Engine) -> None:
    """Each option alone away from its default: the fast path must not swallow it."""
    group = engine.create_task_group("fast path")
    parent = engine.dispatch(sample_tasks.add, (0, 0))
    later = datetime.now(UTC) + timedelta(hours=1)
    assert _stored(engine, exclusive_resources=["r1"])["exclusive_resources"] == ["r1"]
    assert _stored(engine, shared_resources=["r2"])["shared_resources"] == ["r2"]
    assert _stored(engine, task_group=group)["task_group"] == group.id
    assert _stored(engine, depends_on=[parent])["depends_on"] == [parent.id]
    versions = _stored(engine, versions={"tool": "2"})["requirements"]["versions"]
    assert versions == {"tool": "2"}
    assert _stored(engine, priority=7)["priority"] == 7
    assert _stored(engine, not_before=later)["not_before"] is not None
    assert _stored(engine, timeout=5.0)["timeout"] == 5.0
    assert _stored(engine, retries=2)["retry"]["max_attempts"] == 3
    assert _stored(engine, retry_backoff=2.5)["retry"]["backoff_base"] == 2.5
    assert _stored(engine, allow_failure=True)["allow_failure"] is True
    assert _stored(engine, unique_key="only-one")["unique_key"] == "only-one"
    assert _stored(engine, worker_type="server")["requirements"]["worker_type"] == "server"
    immediate = _stored(engine, immediate=True)
    assert immediate["state"] == "completed"
    assert immediate["result"] == 3


@pytest.mark.parametrize(
    "options",
    [
        {"deferred": False},
        {"priority": False},
        {"priority": 0.0},
        {"retries": False},
        {"allow_failure": 0},
        {"worker_type": None},
        {"immediate": 0},
    ],
)
def test_bad_options_equal_to_defaults_are_still_refused(
    engine: Engine, options: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        engine.dispatch(sample_tasks.add, (1, 2), **options)
    assert engine.list_tasks() == []


@pytest.mark.parametrize(
    "options_json",
    ["not json", "[]", '{"kind": "command"}', '{"name": "x"}', '{"payload": {}}'],
)
def test_core_dispatch_options_refuse_what_they_do_not_hold(options_json: str) -> None:
    with pytest.raises(InvalidArgument):
        _core.DispatchOptions(options_json)


def test_core_dispatch_function_validates_its_spec(engine: Engine) -> None:
    options = _core.DispatchOptions('{"priority": 3}')
    core = engine._core
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        core.dispatch_function(options, "sample_tasks:add", "{")
    with pytest.raises(InvalidArgument):
        core.dispatch_function(options, "sample_tasks:add", '{"function": "no colon"}')
    with pytest.raises(InvalidArgument):
        core.dispatch_function(options, "", '{"function": "sample_tasks:add"}')
    assert engine.list_tasks() == []
    payload = '{"function":"sample_tasks:add","args":[1,2],"kwargs":{}}'
    task_id = core.dispatch_function(options, "sample_tasks:add", payload)
    row = engine.get_task(task_id).as_dict()
    assert row["priority"] == 3
    assert row["payload"] == {"function": "sample_tasks:add", "args": [1, 2], "kwargs": {}}
