"""``Engine`` methods for jobs and builds (jobcontrol's vocabulary), mixed into ``Engine``.

The YAML is parsed and each job checked here; the store checks the job set as a whole and
writes it in one transaction. A build is a function task linked to its job, created with
the builds of its dependencies in one dispatch transaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from taskengine import _spec
from taskengine.errors import InvalidArgument, NotFound
from taskengine.jobs import Build, Job, JobsLoaded, parse_jobs, read_job_source

if TYPE_CHECKING:
    from taskengine import _core as _native
    from taskengine.engine import Engine

__all__ = ["JobsMixin"]

_ORDERS = ("asc", "desc")


def _job_id(value: object, option: str = "job_id") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{option} must be a job id (a non-empty string), not {value!r}")
    return value


def _optional_bool(value: object, option: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{option} must be True, False or None, not {value!r}")
    return value


def _build_config(config: object) -> dict[str, Any]:
    """The core's build config from ``{"dependency_builds": {job: build | id | None}}``."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InvalidArgument(f"config must be a mapping or None, not {config!r}")
    for key in config:
        if key != "dependency_builds":
            raise InvalidArgument(f"unknown build config key {key!r} (expected dependency_builds)")
    pins = config.get("dependency_builds")
    if pins is None:
        return {}
    if not isinstance(pins, Mapping):
        raise InvalidArgument("dependency_builds must map job ids to build ids or None")
    out: dict[str, int | None] = {}
    for job, build in pins.items():
        name = _job_id(job, "a dependency_builds key")
        out[name] = None if build is None else _spec.check_id(build, f"dependency_builds[{name!r}]")
    return {"dependency_builds": out}


class JobsMixin:
    """Jobs and builds: ``load_jobs``, ``get_job``, ``list_jobs``, ``create_build``,
    ``get_build``, ``delete_build``, ``get_job_builds``, ``get_latest_successful_build``."""

    _core: _native.Engine

    def _as_engine(self) -> Engine:
        return cast("Engine", self)

    def load_jobs(self, source: str | os.PathLike[str]) -> JobsLoaded:
        """Make the store's job set the one in a jobcontrol job file.

        ``source`` is a path (a ``PathLike``, or a string naming an existing file) or YAML
        text (see :mod:`taskengine.jobs` for the format). In one transaction: jobs new to the
        store are created, known ones replaced (their existing builds keep the definition
        they recorded), and jobs no longer in the file are deleted together with their
        builds. Raises JobConfigError naming the job and field for an invalid file (unknown
        key, missing function, unknown dependency, dependency cycle, ``!retval`` naming a job
        that is not a dependency...), and InvalidArgument when a job to delete still has an
        unfinished build or an unfinished build depends on one of its builds; nothing
        changes then. Returns which jobs were created, updated, unchanged and removed.
        """
        jobs = parse_jobs(read_job_source(source))
        loaded = json.loads(self._core.load_jobs(json.dumps(jobs)))
        return JobsLoaded(
            created=list(loaded["created"]),
            updated=list(loaded["updated"]),
            unchanged=list(loaded["unchanged"]),
            removed=list(loaded["removed"]),
        )

    def get_job(self, job_id: str) -> Job:
        """Return the job ``job_id``; raise NotFound if there is none."""
        text = self._core.get_job(_job_id(job_id))
        if text is None:
            raise NotFound(f"no job with id {job_id!r}")
        return Job.from_json(json.loads(text))

    def list_jobs(self) -> list[Job]:
        """Return every job, by id."""
        return [Job.from_json(row) for row in json.loads(self._core.list_jobs())]

    def create_build(self, job_id: str, config: Mapping[str, Any] | None = None) -> int:
        """Create a build of ``job_id`` and return its id (a task id).

        ``config={"dependency_builds": {job: build}}`` pins a dependency (direct or not) to
        an existing completed build (a Build, or its id): it is used, not rebuilt. ``None``,
        or a dependency not named, builds it first. The new builds are dispatched as tasks in
        one transaction, each depending on its dependencies' builds, and ``!retval JOB``
        arguments receive that build's return value when the build starts. Each build
        records the job's definition and the dependency builds it used (``Build.config``).
        Raises NotFound for an unknown job, InvalidArgument for a bad pin.
        """
        body = json.dumps(_build_config(config))
        return self._core.create_build(_job_id(job_id), body)

    def get_build(self, build_id: Build | int) -> Build:
        """Return the build ``build_id``, read now; raise NotFound if there is none."""
        bid = _spec.check_id(build_id, "build_id")
        text = self._core.get_build(bid)
        if text is None:
            raise NotFound(f"no build with id {bid}")
        return Build(self._as_engine(), json.loads(text))

    def delete_build(self, build_id: Build | int) -> None:
        """Delete a finished build with its progress, log records and artifacts.

        Raises NotFound, or InvalidArgument while the build is unfinished or an unfinished
        build depends on it."""
        self._core.delete_build(_spec.check_id(build_id, "build_id"))

    def get_job_builds(
        self,
        job_id: str,
        started: bool | None = None,
        finished: bool | None = None,
        success: bool | None = None,
        skipped: bool | None = None,
        order: str = "asc",
        limit: int = 100,
    ) -> list[Build]:
        """Return the builds of ``job_id`` in creation order (``order="desc"``: newest first),
        at most ``limit``; each of ``started``, ``finished``, ``success`` and ``skipped``, when
        a bool, keeps only builds whose attribute of that name has that value. The store
        filters, orders and limits. Raises NotFound for an unknown job."""
        if order not in _ORDERS:
            raise InvalidArgument(f"order must be 'asc' or 'desc', not {order!r}")
        if not _spec.is_int(limit) or limit < 0:
            raise InvalidArgument(f"limit must be a non-negative integer, not {limit!r}")
        query = {
            "job_id": _job_id(job_id),
            "started": _optional_bool(started, "started"),
            "finished": _optional_bool(finished, "finished"),
            "success": _optional_bool(success, "success"),
            "skipped": _optional_bool(skipped, "skipped"),
            "newest_first": order == "desc",
            "limit": limit,
        }
        rows = json.loads(self._core.job_builds(json.dumps(query)))
        return [Build(self._as_engine(), row) for row in rows]

    def get_latest_successful_build(self, job_id: str) -> Build | None:
        """Return the newest completed build of ``job_id``, or None if it has none."""
        builds = self.get_job_builds(job_id, success=True, order="desc", limit=1)
        return builds[0] if builds else None
