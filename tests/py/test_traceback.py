"""Exceptions serialised as JSON data: frames, trimmed locals, and never a failure."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import pytest
from taskengine import _traceback
from taskengine._traceback import (
    MAX_FRAMES,
    MAX_LOCALS,
    MAX_REPR,
    error_info,
    exception_type_name,
    safe_repr,
    serialize_exception,
)


def _raise_from_inner(payload: Any) -> NoReturn:
    local_list = list(range(1000))
    raise KeyError(f"missing {len(local_list)} {type(payload).__name__}")


def _outer() -> None:
    big_string = "x" * 10_000
    _raise_from_inner({"key": big_string})


def _caught(func: Any, *args: Any) -> BaseException:
    try:
        func(*args)
    except BaseException as exc:
        return exc
    raise AssertionError("no exception")


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str either")


def test_frames_outermost_first_with_lines_and_locals() -> None:
    info = serialize_exception(_caught(_outer))
    assert info["type"] == "KeyError"
    assert info["message"] == "'missing 1000 dict'"
    names = [frame["name"] for frame in info["traceback"]]
    assert names == ["_caught", "_outer", "_raise_from_inner"]
    inner = info["traceback"][-1]
    assert inner["filename"] == __file__
    assert inner["line"].startswith("raise KeyError(")
    assert inner["lineno"] == _raise_from_inner.__code__.co_firstlineno + 2
    assert set(inner["locals"]) == {"payload", "local_list"}
    json.dumps(info, allow_nan=False)  # plain JSON all the way down


def test_skip_leaves_out_outer_frames() -> None:
    info = serialize_exception(_caught(_outer), skip=1)
    assert [f["name"] for f in info["traceback"]] == ["_outer", "_raise_from_inner"]


def test_locals_are_trimmed() -> None:
    info = serialize_exception(_caught(_outer))
    for frame in info["traceback"]:
        for text in frame["locals"].values():
            assert len(text) <= MAX_REPR
    outer = info["traceback"][1]["locals"]
    assert outer["big_string"].startswith("'xxxx")
    assert len(outer["big_string"]) <= MAX_REPR


def test_too_many_locals_are_capped() -> None:
    namespace: dict[str, Any] = {}
    body = "\n".join(f"    v{i} = {i}" for i in range(MAX_LOCALS + 20))
    exec(f"def many():\n{body}\n    raise ValueError('many')", namespace)
    info = serialize_exception(_caught(namespace["many"]), skip=1)
    local_names = info["traceback"][0]["locals"]
    assert len(local_names) == MAX_LOCALS + 1
    assert local_names["..."] == "20 more locals omitted"


def test_safe_repr_never_raises() -> None:
    assert "_BadRepr" in safe_repr(_BadRepr())  # reprlib's fallback, or ours
    assert "..." in safe_repr("a" * 1000) and len(safe_repr("a" * 1000)) <= MAX_REPR
    assert len(safe_repr(list(range(10_000)))) <= MAX_REPR
    assert safe_repr(None) == "None"


def test_unrepresentable_local_and_message() -> None:
    def fails() -> None:
        bad = _BadRepr()
        raise _BadStr(bad)

    info = serialize_exception(_caught(fails), skip=1)
    assert info["message"] == "<str() of the exception failed: RuntimeError>"
    assert "_BadRepr" in info["traceback"][0]["locals"]["bad"]
    assert info["type"].endswith("_BadStr")


def test_deep_traceback_keeps_both_ends() -> None:
    def recurse(n: int) -> int:
        return recurse(n + 1) + 1

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        exc = _caught(recurse, 0)
    finally:
        sys.setrecursionlimit(limit)
    frames = serialize_exception(exc)["traceback"]
    assert len(frames) == MAX_FRAMES + 1
    markers = [f for f in frames if f["name"].endswith("frames omitted>")]
    assert len(markers) == 1
    assert frames[1]["locals"]["n"] == "0"  # the outermost recursion frame is kept
    assert frames[-1]["name"] == "recurse"


def test_exception_without_traceback() -> None:
    info = serialize_exception(ValueError("never raised"))
    assert (info["type"], info["message"], info["traceback"]) == ("ValueError", "never raised", [])


def test_type_names() -> None:
    assert exception_type_name(ValueError("x")) == "ValueError"
    assert exception_type_name(json.JSONDecodeError) == "json.decoder.JSONDecodeError"


def test_error_info_trims_the_message() -> None:
    info = error_info("NotSerializable", "m" * 50_000)
    assert info["type"] == "NotSerializable"
    assert len(info["message"]) == _traceback.MAX_MESSAGE
    assert info["traceback"] == []


def test_module_level_frame_leaves_out_dunders() -> None:
    namespace: dict[str, Any] = {"__name__": "fake_module", "visible": 1}
    code = compile("raise LookupError('at module level')", "fake_module.py", "exec")
    exc = _caught(exec, code, namespace)
    frame = serialize_exception(exc)["traceback"][-1]
    assert frame["name"] == "<module>"
    assert frame["locals"] == {"visible": "1"}


@pytest.mark.parametrize("value", [float("nan"), object(), b"bytes", {1, 2}])
def test_any_local_gives_valid_json(value: Any) -> None:
    def holds(v: Any) -> None:
        raise ValueError("holding")

    info = serialize_exception(_caught(holds, value), skip=1)
    json.dumps(info, allow_nan=False)
