"""``taskengine jobs``: load a job file, run a job (create a build), list jobs and builds.

Imported by :mod:`taskengine.cli` when it builds its parser, so the options follow the same
rules: each one also reads the ``TASKENGINE_*`` variable named in its help.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskengine.cli import (
    CliError,
    _engine,
    _flag,
    _iso,
    _list_option,
    _option,
    _positive_float,
    _positive_int,
    _print_json,
    _short,
    _table,
)

if TYPE_CHECKING:
    from taskengine.engine import Engine
    from taskengine.jobs import Build

__all__ = ["add_jobs_command", "run_jobs_command"]

_POLL_FIRST = 0.01
_POLL_MAX = 0.25


def _pin(text: str) -> tuple[str, int | None]:
    """``JOB=BUILD`` (use that build) or ``JOB=new`` (build it anew)."""
    job, sep, build = text.partition("=")
    if not sep or not job:
        raise argparse.ArgumentTypeError(f"expected JOB=BUILD_ID or JOB=new, not {text!r}")
    if build == "new":
        return job, None
    try:
        return job, _positive_int(build)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected JOB=BUILD_ID or JOB=new, not {text!r}"
        ) from None


def _pins(text: str) -> list[tuple[str, int | None]]:
    return [_pin(item.strip()) for item in text.split(",") if item.strip()]


def add_jobs_command(add: Callable[..., Any], common: argparse.ArgumentParser) -> None:
    """Add ``jobs load|run|list|builds`` through the CLI's ``add(name, help)``."""
    jobs = add("jobs", "jobs and builds (jobcontrol's vocabulary): load, run, list, builds")
    sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "load",
        help="make the store's jobs those of a YAML job file (jobs no longer in the file are "
        "deleted with their builds)",
        parents=[common],
    )
    p.add_argument("file", metavar="FILE", help="the job file (a top-level 'jobs:' list)")

    p = sub.add_parser(
        "run",
        help="create a build of a job (and of the dependencies not pinned)",
        parents=[common],
    )
    p.add_argument("job_id", metavar="JOB_ID")
    _list_option(
        p,
        "--pin",
        dest="pins",
        env="TASKENGINE_JOBS_PIN",
        env_format="comma-separated JOB=BUILD_ID items",
        convert=_pins,
        item_type=_pin,
        metavar="JOB=BUILD_ID",
        help="use this existing completed build of dependency JOB instead of building it "
        "(JOB=new: build it anew; repeatable)",
    )
    _flag(
        p,
        "--wait",
        env="TASKENGINE_JOBS_WAIT",
        help="wait for the build, showing its builds' progress; exit 1 unless it completed",
    )
    _option(
        p,
        "--wait-timeout",
        env="TASKENGINE_JOBS_WAIT_TIMEOUT",
        type=_positive_float,
        metavar="SECONDS",
        help="with --wait: give up after this long (exit 2)",
    )

    sub.add_parser("list", help="list the jobs", parents=[common])

    p = sub.add_parser("builds", help="list a job's builds, newest first", parents=[common])
    p.add_argument("job_id", metavar="JOB_ID")
    _option(
        p,
        "--limit",
        env="TASKENGINE_JOBS_LIMIT",
        type=_positive_int,
        default=20,
        help="at most this many",
    )


def _build_summary(build: Build) -> dict[str, Any]:
    error = build.exception
    return {
        **build.as_dict(),
        "started": build.started,
        "finished": build.finished,
        "success": build.success,
        "skipped": build.skipped,
        "start_time": _iso(build.start_time),
        "end_time": _iso(build.end_time),
        "retval": build.retval,
        "exception": error,
        "outcome": f"{error['type']}: {error['message']}" if error else build.retval,
    }


def _builds_involved(engine: Engine, build: Build) -> list[Build]:
    """The build and, recursively, the dependency builds it uses, dependencies first."""
    seen: dict[int, Build] = {}

    def visit(current: Build) -> None:
        for dep_id in current.dependency_builds.values():
            if dep_id not in seen:
                visit(engine.get_build(dep_id))
        seen.setdefault(current.id, current)

    visit(build)
    return list(seen.values())


def _wait(engine: Engine, build_id: int, timeout: float | None, report: Any) -> Build:
    """Poll until the build finished, printing each state change of its builds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown: dict[int, str] = {}
    delay = _POLL_FIRST
    while True:
        builds = _builds_involved(engine, engine.get_build(build_id))
        for build in builds:
            if shown.get(build.id) != build.state:
                shown[build.id] = build.state
                line = f"build {build.id} ({build.job_id}): {build.state}"
                if build.finished and build.reason:
                    line += f" - {build.reason}"
                print(line, file=report, flush=True)
        build = builds[-1]
        if build.finished:
            return build
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"build {build_id} is still {build.state} after {timeout} seconds")
        time.sleep(delay)
        delay = min(delay * 2, _POLL_MAX)


def _show_build(build: Build) -> None:
    fields = [
        ("build", str(build.id)),
        ("job", build.job_id),
        ("title", build.title or "-"),
        ("state", build.state),
        ("reason", build.reason or "-"),
        ("started", _iso(build.start_time)),
        ("finished", _iso(build.end_time)),
        ("dependencies", ", ".join(f"{k}={v}" for k, v in build.dependency_builds.items()) or "-"),
    ]
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        print(f"{key.ljust(width)}  {value}")
    error = build.exception
    if build.success:
        print(f"{'retval'.ljust(width)}  {_short(build.retval, 200)}")
    elif error:
        print(f"{'exception'.ljust(width)}  {error['type']}: {error['message']}")
        for frame in build.exception_tb or []:
            print(f'  File "{frame["filename"]}", line {frame["lineno"]}, in {frame["name"]}')


def run_jobs_command(args: argparse.Namespace) -> int:
    """Run ``taskengine jobs ACTION``; return the exit status."""
    engine = _engine(args)
    if args.jobs_command == "load":
        path = Path(args.file)
        if not path.is_file():
            raise CliError(f"job file {args.file!r} does not exist")
        loaded = engine.load_jobs(path)
        if args.json:
            _print_json(vars(loaded))
        else:
            print(
                f"loaded {args.file}: {len(loaded.created)} created, {len(loaded.updated)} "
                f"updated, {len(loaded.unchanged)} unchanged, {len(loaded.removed)} removed"
            )
        return 0
    if args.jobs_command == "list":
        jobs = engine.list_jobs()
        if args.json:
            _print_json([{**vars(job), "updated_at": _iso(job.updated_at)} for job in jobs])
        else:
            rows = [
                [job.id, job.function, ", ".join(job.dependencies) or "-", _short(job.title, 40)]
                for job in jobs
            ]
            print(_table(["id", "function", "dependencies", "title"], rows))
        return 0
    if args.jobs_command == "builds":
        builds = engine.get_job_builds(args.job_id, order="desc", limit=args.limit)
        if args.json:
            _print_json([_build_summary(build) for build in builds])
        else:
            rows = [
                [str(b.id), b.state, _iso(b.start_time), _iso(b.end_time), _short(_outcome(b), 50)]
                for b in builds
            ]
            print(_table(["build", "state", "started", "finished", "outcome"], rows))
        return 0
    pins = dict(args.pins or [])
    build_id = engine.create_build(args.job_id, {"dependency_builds": pins} if pins else None)
    if not args.wait:
        if args.json:
            _print_json({"build_id": build_id, "job_id": args.job_id})
        else:
            print(f"created build {build_id} of job {args.job_id}")
        return 0
    build = _wait(engine, build_id, args.wait_timeout, sys.stderr if args.json else sys.stdout)
    if args.json:
        _print_json(_build_summary(build))
    else:
        _show_build(build)
    return 0 if build.success else 1


def _outcome(build: Build) -> str:
    error = build.exception
    if error:
        return f"{error['type']}: {error['message']}"
    return _short(build.retval) if build.finished else "-"
