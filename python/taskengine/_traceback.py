"""Exceptions as JSON: type, message and a traceback of structured frames.

A task's error is stored as data, never pickled (jobcontrol's lesson): each frame keeps its
file, line number, function name, source line, and a trimmed ``repr`` of every local
variable. Nothing here may raise: a ``repr`` or ``str`` that fails, a traceback thousands of
frames deep or a huge local all still give a small, valid record.

This module imports nothing from the native core, so the executor can use it.
"""

from __future__ import annotations

import importlib
import linecache
import reprlib
from types import FrameType, TracebackType
from typing import TypedDict

__all__ = [
    "MAX_FRAMES",
    "MAX_LOCALS",
    "MAX_MESSAGE",
    "MAX_REPR",
    "ErrorInfo",
    "Frame",
    "error_info",
    "exception_type_name",
    "safe_repr",
    "serialize_exception",
    "serialize_traceback",
]

MAX_REPR = 200
"""The longest ``repr`` kept for one local variable, in characters."""

MAX_LOCALS = 50
"""The most local variables kept for one frame."""

MAX_FRAMES = 100
"""The most frames kept for one traceback (the outermost and innermost ones)."""

MAX_MESSAGE = 10_000
"""The longest exception message kept, in characters."""

_OUTER_FRAMES = 10  # of MAX_FRAMES, kept from the outside; the rest from the inside


class Frame(TypedDict):
    """One frame of a serialised traceback, outermost first."""

    filename: str
    lineno: int
    name: str
    line: str
    locals: dict[str, str]


class ErrorInfo(TypedDict):
    """A serialised exception, as stored in a task's ``error``."""

    type: str
    message: str
    traceback: list[Frame]


def _make_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel = 3
    r.maxstring = MAX_REPR
    r.maxlong = MAX_REPR
    r.maxother = MAX_REPR
    r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 20
    r.maxdict = 20
    return r


_repr = _make_repr()


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def safe_repr(value: object, limit: int = MAX_REPR) -> str:
    """Return a ``repr`` of ``value`` of at most ``limit`` characters; never raises."""
    try:
        text = _repr.repr(value)
    except BaseException as exc:  # a user __repr__ may raise anything
        try:
            kind = type(value).__qualname__
        except BaseException:
            kind = "object"
        text = f"<unrepresentable {kind}: {type(exc).__name__}>"
    return _trim(text, limit)


def exception_type_name(exc: BaseException | type[BaseException]) -> str:
    """Return ``module.QualName`` of an exception class; builtins keep their bare name."""
    cls = exc if isinstance(exc, type) else type(exc)
    try:
        module = cls.__module__
        name = cls.__qualname__
    except BaseException:
        return "Exception"
    if module in ("builtins", "__main__", None):
        return str(name)
    return f"{module}.{name}"


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException as failure:
        text = f"<str() of the exception failed: {type(failure).__name__}>"
    return _trim(text, MAX_MESSAGE)


_IMPORT_MODULE_CODE = importlib.import_module.__code__


def _is_import_machinery(frame: FrameType) -> bool:
    """Frames of the import system, which Python's own tracebacks leave out too."""
    code = frame.f_code
    return code is _IMPORT_MODULE_CODE or code.co_filename.startswith("<frozen importlib")


def _frame_locals(frame: FrameType) -> dict[str, str]:
    result: dict[str, str] = {}
    try:
        items = list(frame.f_locals.items())
        if frame.f_locals is frame.f_globals:  # module level: leave out __name__ and the like
            items = [(k, v) for k, v in items if not (k.startswith("__") and k.endswith("__"))]
    except BaseException:
        return result
    for name, value in items[:MAX_LOCALS]:
        result[str(name)] = safe_repr(value)
    if len(items) > MAX_LOCALS:
        result["..."] = f"{len(items) - MAX_LOCALS} more locals omitted"
    return result


def _frame(frame: FrameType, lineno: int | None) -> Frame:
    code = frame.f_code
    filename = code.co_filename
    line_number = lineno if lineno is not None else frame.f_lineno
    try:
        line = linecache.getline(filename, line_number, frame.f_globals).strip()
    except BaseException:
        line = ""
    return {
        "filename": filename,
        "lineno": line_number or 0,
        "name": code.co_name,
        "line": line,
        "locals": _frame_locals(frame),
    }


def _omitted(count: int) -> Frame:
    return {
        "filename": "",
        "lineno": 0,
        "name": f"<{count} frames omitted>",
        "line": "",
        "locals": {},
    }


def serialize_traceback(tb: TracebackType | None, *, skip: int = 0) -> list[Frame]:
    """Return the frames of ``tb``, outermost first, leaving out the first ``skip`` ones.

    Frames of the import machinery are left out, as Python's own tracebacks do. At most
    :data:`MAX_FRAMES` frames are kept: the outermost few and the innermost rest,
    with one ``<N frames omitted>`` marker frame between them.
    """
    entries: list[tuple[FrameType, int | None]] = []
    while tb is not None:
        if skip > 0:
            skip -= 1
        elif not _is_import_machinery(tb.tb_frame):
            entries.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    frames: list[Frame] = []
    if len(entries) > MAX_FRAMES:
        inner = MAX_FRAMES - _OUTER_FRAMES
        omitted = len(entries) - MAX_FRAMES
        head, tail = entries[:_OUTER_FRAMES], entries[-inner:]
        frames.extend(_frame(f, n) for f, n in head)
        frames.append(_omitted(omitted))
        frames.extend(_frame(f, n) for f, n in tail)
    else:
        frames.extend(_frame(f, n) for f, n in entries)
    return frames


def serialize_exception(exc: BaseException, *, skip: int = 0) -> ErrorInfo:
    """Return ``{"type", "message", "traceback"}`` for ``exc``; never raises.

    ``skip`` leaves out that many outermost frames (the caller's own, e.g. the executor's).
    """
    try:
        frames = serialize_traceback(exc.__traceback__, skip=skip)
    except BaseException:
        frames = []
    return {"type": exception_type_name(exc), "message": _message(exc), "traceback": frames}


def error_info(type_name: str, message: str) -> ErrorInfo:
    """Return an error record without a traceback (for errors found before running code)."""
    return {"type": type_name, "message": _trim(message, MAX_MESSAGE), "traceback": []}
