"""Jobs and builds, in jobcontrol's vocabulary: the job file format and the objects read back.

A job file is YAML with a top-level ``jobs:`` list; each job has an ``id`` and a
``function`` (``module:function``), and optionally ``args``, ``kwargs``, ``title``, ``notes``
and ``dependencies`` (job ids). ``!retval <job id>`` anywhere inside ``args`` or ``kwargs``
stands for the return value of that dependency's build::

    jobs:
      - id: fetch
        function: myapp.jobs:fetch
        args: ["https://example.invalid/data.json"]
      - id: report
        function: myapp.jobs:report
        kwargs: {data: !retval fetch}
        dependencies: [fetch]

The file is read with PyYAML's safe loader plus one constructor for ``!retval``, so a job
file can never build arbitrary Python objects. Everything that is not JSON (dates, sets,
binary) is refused with :class:`~taskengine.errors.JobConfigError` naming the job and field.
A build is a task (build id == task id); :class:`Build` is its view with jobcontrol's
attribute names, and :attr:`Build.task` is the taskengine :class:`~taskengine.Task`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import yaml

from taskengine._spec import FINAL_STATES
from taskengine._traceback import ErrorInfo, Frame
from taskengine.errors import JobConfigError
from taskengine.task import Task, from_micros

if TYPE_CHECKING:
    from taskengine.engine import Engine

__all__ = ["Build", "Job", "JobsLoaded", "Retval", "parse_jobs", "read_job_source"]

JOB_KEYS = ("id", "function", "args", "kwargs", "title", "notes", "dependencies")
"""The keys a job may have (jobcontrol's, plus ``id``)."""

_MARKER = "$retval"


class Retval(NamedTuple):
    """``!retval <job id>``: the return value of the named dependency's build."""

    job_id: str


class _JobLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus the ``!retval`` tag; never constructs arbitrary objects."""


def _construct_retval(loader: yaml.SafeLoader, node: yaml.Node) -> Retval:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!retval takes a job id, e.g. `!retval fetch`", node.start_mark
        )
    job_id = str(loader.construct_scalar(node)).strip()
    if not job_id:
        raise yaml.constructor.ConstructorError(
            None, None, "!retval needs a job id, e.g. `!retval fetch`", node.start_mark
        )
    return Retval(job_id)


_JobLoader.add_constructor("!retval", _construct_retval)


def _fail(job: str | None, key: str, message: str) -> JobConfigError:
    where = "a job" if job is None else f"job {job!r}"
    return JobConfigError(f"{where}, field {key!r}: {message}")


def _to_json(value: object, job: str, key: str, depth: int = 0) -> Any:
    """``value`` as JSON, ``Retval`` as the ``{"$retval": "<job id>"}`` marker."""
    if depth > 100:
        raise _fail(job, key, "is nested too deeply")
    if isinstance(value, Retval):
        return {_MARKER: value.job_id}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(job, key, f"holds {value!r}, which JSON cannot store")
        return value
    if isinstance(value, list):
        return [_to_json(item, job, key, depth + 1) for item in value]
    if isinstance(value, dict):
        if list(value) == [_MARKER]:
            raise _fail(job, key, f"write `!retval JOB` instead of a {_MARKER!r} mapping")
        out: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise _fail(job, key, f"has the mapping key {name!r}; JSON keys are strings")
            out[name] = _to_json(item, job, key, depth + 1)
        return out
    raise _fail(job, key, f"holds a {type(value).__name__} ({value!r}), which is not JSON")


def _from_json(value: Any) -> Any:
    """The stored form back: ``{"$retval": "<job id>"}`` markers become :class:`Retval`."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(_MARKER), str):
            return Retval(value[_MARKER])
        return {name: _from_json(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _text(item: Mapping[str, Any], job: str, key: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(job, key, f"must be a string, not {value!r}")
    return value


def _job(item: object, index: int) -> dict[str, Any]:
    """One item of the ``jobs`` list, checked, as the core's JSON job definition."""
    if not isinstance(item, dict):
        raise JobConfigError(f"jobs[{index}] must be a mapping with an 'id', not {item!r}")
    job_id = item.get("id")
    if not isinstance(job_id, str) or not job_id.strip():
        raise _fail(
            None, "id", f"jobs[{index}] needs an 'id' string (quote numbers), not {job_id!r}"
        )
    for key in item:
        if key not in JOB_KEYS:
            raise _fail(job_id, str(key), f"unknown key (expected one of {', '.join(JOB_KEYS)})")
    function = item.get("function")
    if not isinstance(function, str) or not function:
        raise _fail(job_id, "function", "is missing: name the function as module:function")
    module, _, name = function.partition(":")
    if not module or not name:
        raise _fail(job_id, "function", f"must be module:function, not {function!r}")
    args = item.get("args")
    if args is None:
        args = []
    if not isinstance(args, list):
        raise _fail(job_id, "args", f"must be a list, not {args!r}")
    kwargs = item.get("kwargs")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise _fail(job_id, "kwargs", f"must be a mapping, not {kwargs!r}")
    dependencies = item.get("dependencies")
    if dependencies is None:
        dependencies = []
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise _fail(job_id, "dependencies", f"must be a list of job ids, not {dependencies!r}")
    return {
        "id": job_id,
        "function": function,
        "args": _to_json(args, job_id, "args"),
        "kwargs": _to_json(kwargs, job_id, "kwargs"),
        "title": _text(item, job_id, "title"),
        "notes": _text(item, job_id, "notes"),
        "dependencies": list(dependencies),
    }


def parse_jobs(text: str) -> list[dict[str, Any]]:
    """Parse a job file's YAML text into the core's JSON job definitions, checked.

    Checks each job on its own (keys, types, JSON values); the store checks the set
    (dependencies that exist, no cycles, ``!retval`` naming only dependencies).
    Raises JobConfigError naming the job and the field.
    """
    try:
        # _JobLoader is a SafeLoader subclass: only plain data and Retval are built.
        document = yaml.load(text, Loader=_JobLoader)
    except yaml.YAMLError as exc:
        raise JobConfigError(f"the job file is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or "jobs" not in document:
        raise JobConfigError("a job file is a YAML mapping with a top-level 'jobs' list")
    unknown = [str(key) for key in document if key != "jobs"]
    if unknown:
        raise JobConfigError(f"unknown top-level key {unknown[0]!r} (a job file has only 'jobs')")
    items = document["jobs"]
    if items is None:
        return []
    if not isinstance(items, list):
        raise JobConfigError(f"'jobs' must be a list of jobs, not {items!r}")
    return [_job(item, index) for index, item in enumerate(items)]


def read_job_source(source: str | os.PathLike[str]) -> str:
    """The YAML text of ``source``: a path (a ``PathLike``, or a string naming an existing
    file), else the string itself as YAML text."""
    if isinstance(source, os.PathLike):
        return Path(source).read_text(encoding="utf-8")
    if not isinstance(source, str):
        raise JobConfigError(f"load_jobs takes a path or YAML text, not {type(source).__name__}")
    if "\n" not in source and source.strip() and Path(source).is_file():
        return Path(source).read_text(encoding="utf-8")
    if "\n" not in source and source.endswith((".yaml", ".yml")):
        raise JobConfigError(f"job file {source!r} does not exist")
    return source


@dataclass(frozen=True)
class Job:
    """A stored job definition; ``!retval`` markers read back as :class:`Retval`."""

    id: str
    function: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    notes: str = ""
    dependencies: list[str] = field(default_factory=list)
    updated_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        """Build a job from the core's JSON object."""
        return cls(
            id=str(data["id"]),
            function=str(data["function"]),
            args=list(_from_json(data.get("args") or [])),
            kwargs=dict(_from_json(data.get("kwargs") or {})),
            title=str(data.get("title") or ""),
            notes=str(data.get("notes") or ""),
            dependencies=[str(d) for d in data.get("dependencies") or []],
            updated_at=from_micros(data.get("updated_at")),
        )


@dataclass(frozen=True)
class JobsLoaded:
    """What :meth:`Engine.load_jobs` changed, by job id."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]


class Build:
    """One build of a job, read when it was returned; jobcontrol's attribute names.

    ``start_time``/``end_time`` are the task's ``started_at``/``finished_at``; ``started``
    means it began running, ``finished`` that it reached a final state, ``success`` that it
    completed, ``skipped`` that a dependency did not complete. ``retval`` is the function's
    return value; ``exception`` the error (type, message, traceback) and ``exception_tb``
    (also ``traceback``) its frames, each with trimmed ``repr``s of the locals.
    """

    __slots__ = ("_data", "_engine")

    def __init__(self, engine: Engine, data: dict[str, Any]) -> None:
        """Make a view of a build from the core's JSON object."""
        self._engine = engine
        self._data = data

    @property
    def id(self) -> int:
        """The build's id, which is its task's id."""
        return int(self._data["id"])

    @property
    def job_id(self) -> str:
        """The id of the job this is a build of."""
        return str(self._data["job_id"])

    @property
    def task(self) -> Task:
        """The task that is this build, as read with it."""
        return Task(self._engine, self.id, dict(self._data))

    @property
    def state(self) -> str:
        """The task's state: ``blocked`` ... ``completed``, ``failed``, ``skipped``."""
        return str(self._data["state"])

    @property
    def start_time(self) -> datetime | None:
        """When the (latest attempt of the) build started running (UTC)."""
        return from_micros(self._data.get("started_at"))

    @property
    def end_time(self) -> datetime | None:
        """When the build finished (UTC)."""
        return from_micros(self._data.get("finished_at"))

    @property
    def started(self) -> bool:
        """Whether the build began running."""
        return self._data.get("started_at") is not None

    @property
    def finished(self) -> bool:
        """Whether the build reached a final state."""
        return self.state in FINAL_STATES

    @property
    def success(self) -> bool:
        """Whether the build completed."""
        return self.state == "completed"

    @property
    def skipped(self) -> bool:
        """Whether the build was skipped because a dependency build did not complete."""
        return self.state == "skipped"

    @property
    def retval(self) -> Any:
        """The function's return value (None until the build completed)."""
        return self._data.get("result")

    @property
    def exception(self) -> ErrorInfo | None:
        """The error of a failed build: ``{"type", "message", "traceback"}``, else None."""
        return cast("ErrorInfo | None", self._data.get("error"))

    @property
    def exception_tb(self) -> list[Frame] | None:
        """The failed build's traceback frames, outermost first, else None."""
        error = self.exception
        return None if error is None else list(error.get("traceback") or [])

    @property
    def traceback(self) -> list[Frame] | None:
        """Same as :attr:`exception_tb`."""
        return self.exception_tb

    @property
    def reason(self) -> str | None:
        """Why the build waits, was skipped or failed, when the engine knows."""
        return cast("str | None", self._data.get("reason"))

    @property
    def config(self) -> dict[str, Any]:
        """What the build recorded when created: ``{"job": <the job's definition then>,
        "dependency_builds": {job id: build id used}}``."""
        return dict(self._data.get("config") or {})

    @property
    def job(self) -> Job:
        """The job's definition as it was when this build was created."""
        return Job.from_json(self.config.get("job") or {"id": self.job_id, "function": ""})

    @property
    def title(self) -> str:
        """The job's title when the build was created."""
        return self.job.title

    @property
    def dependency_builds(self) -> dict[str, int]:
        """The build of each direct dependency this build used, by job id."""
        return {str(k): int(v) for k, v in (self.config.get("dependency_builds") or {}).items()}

    def as_dict(self) -> dict[str, Any]:
        """The build as the core returns it: the task's fields plus ``job_id`` and ``config``."""
        return dict(self._data)

    def refresh(self) -> Build:
        """Read the build again; return ``self``. Raises NotFound if it was deleted."""
        self._data = self._engine.get_build(self.id)._data
        return self

    def wait(self, timeout: float | None = None) -> Build:
        """Wait until the build finished (see :meth:`Task.wait`); return ``self``, refreshed."""
        self.task.wait(timeout)
        return self.refresh()

    def __repr__(self) -> str:
        """``<Build 12 of 'report' completed>``."""
        return f"<Build {self.id} of {self.job_id!r} {self.state}>"
