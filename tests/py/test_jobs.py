"""Jobs and builds (jobcontrol's vocabulary): the YAML format and every validation error, then
the API on both stores, then builds run end to end by real workers."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import WorkerProcess
from taskengine.errors import InvalidArgument, JobConfigError, NotFound
from taskengine.jobs import Build, Retval, parse_jobs

if TYPE_CHECKING:
    from taskengine import Engine

CHAIN = """
jobs:
  - id: fetch
    title: Fetch the numbers
    notes: "First **step**."
    function: job_tasks:fetch
    args: [4]
  - id: total
    function: job_tasks:total
    args: [!retval fetch]
    kwargs: {factor: 10}
    dependencies: [fetch]
  - id: size
    function: job_tasks:size
    kwargs:
      data: !retval fetch
    dependencies: [fetch]
  - id: report
    function: job_tasks:report
    args: [!retval total, !retval size]
    kwargs: {label: sum}
    dependencies: [total, size]
"""

SIMPLE = """
jobs:
  - id: fetch
    function: job_tasks:fetch
    args: [3]
  - id: total
    function: job_tasks:total
    args: [!retval fetch]
    dependencies: [fetch]
"""

FAILING = """
jobs:
  - id: fetch
    function: job_tasks:fetch
    args: [2]
  - id: boom
    function: job_tasks:explode
    args: [21]
    dependencies: [fetch]
  - id: after
    function: job_tasks:total
    args: [!retval boom]
    dependencies: [boom]
"""

# -- the file format (no store needed) -------------------------------------------------------


def test_parse_turns_retval_into_markers_anywhere() -> None:
    jobs = parse_jobs(CHAIN)
    assert [job["id"] for job in jobs] == ["fetch", "total", "size", "report"]
    fetch, total, size, report = jobs
    assert fetch == {
        "id": "fetch",
        "function": "job_tasks:fetch",
        "args": [4],
        "kwargs": {},
        "title": "Fetch the numbers",
        "notes": "First **step**.",
        "dependencies": [],
    }
    assert total["args"] == [{"$retval": "fetch"}]
    assert total["kwargs"] == {"factor": 10}
    assert size["kwargs"] == {"data": {"$retval": "fetch"}}
    assert report["args"] == [{"$retval": "total"}, {"$retval": "size"}]
    assert report["kwargs"] == {"label": "sum"}
    nested = parse_jobs("jobs:\n- {id: a, function: m:f, kwargs: {x: [{y: !retval b}]}}")
    assert nested[0]["kwargs"] == {"x": [{"y": {"$retval": "b"}}]}
    assert parse_jobs("jobs:\n") == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("jobs: [", "not valid YAML"),
        ("- id: a", "top-level 'jobs' list"),
        ("jobs: []\nstorage: x", "unknown top-level key 'storage'"),
        ("jobs: {a: 1}", "'jobs' must be a list"),
        ("jobs:\n- just-a-string", "jobs[0] must be a mapping"),
        ("jobs:\n- function: m:f", "jobs[0] needs an 'id'"),
        ("jobs:\n- {id: 12, function: m:f}", "quote numbers"),
        ("jobs:\n- {id: a, function: m:f, colour: red}", "job 'a', field 'colour': unknown key"),
        ("jobs:\n- {id: a}", "job 'a', field 'function': is missing"),
        ("jobs:\n- {id: a, function: no_colon}", "job 'a', field 'function': must be module"),
        ("jobs:\n- {id: a, function: m:f, args: 3}", "job 'a', field 'args': must be a list"),
        ("jobs:\n- {id: a, function: m:f, kwargs: [1]}", "field 'kwargs': must be a mapping"),
        ("jobs:\n- {id: a, function: m:f, title: [1]}", "field 'title': must be a string"),
        ("jobs:\n- {id: a, function: m:f, dependencies: b}", "field 'dependencies'"),
        ("jobs:\n- {id: a, function: m:f, args: [2024-01-02]}", "field 'args': holds a date"),
        ("jobs:\n- {id: a, function: m:f, args: [.nan]}", "JSON cannot store"),
        ("jobs:\n- {id: a, function: m:f, kwargs: {1: x}}", "JSON keys are strings"),
        ("jobs:\n- {id: a, function: m:f, args: [{$retval: b}]}", "write `!retval JOB`"),
        ("jobs:\n- {id: a, function: m:f, args: [!retval ]}", "!retval needs a job id"),
        ("jobs:\n- {id: a, function: m:f, args: [!retval [b]]}", "!retval takes a job id"),
        ("jobs:\n- {id: a, function: m:f, args: [!!python/object:os.system x]}", "not valid YAML"),
    ],
)
def test_every_format_error_names_the_job_and_field(text: str, words: str) -> None:
    with pytest.raises(JobConfigError) as caught:
        parse_jobs(text)
    assert words in str(caught.value)


# -- the API on both stores ------------------------------------------------------------------


def test_load_jobs_from_a_path_or_text_and_read_them_back(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(CHAIN)
    loaded = engine.load_jobs(path)
    assert loaded.created == ["fetch", "total", "size", "report"]
    assert [job.id for job in engine.list_jobs()] == ["fetch", "report", "size", "total"]
    report = engine.get_job("report")
    assert report.function == "job_tasks:report"
    assert report.args == [Retval("total"), Retval("size")]
    assert report.kwargs == {"label": "sum"}
    assert report.dependencies == ["total", "size"]
    assert engine.get_job("size").kwargs == {"data": Retval("fetch")}
    assert engine.get_job("fetch").title == "Fetch the numbers"
    assert isinstance(engine.get_job("fetch").updated_at, datetime.datetime)
    with pytest.raises(NotFound):
        engine.get_job("nope")

    again = engine.load_jobs(str(path))  # a string naming a file is read as a path
    assert again.unchanged == ["fetch", "total", "size", "report"]
    assert (again.created, again.updated, again.removed) == ([], [], [])
    with pytest.raises(JobConfigError, match="does not exist"):
        engine.load_jobs(str(tmp_path / "missing.yaml"))


def test_reload_updates_changed_jobs_and_removes_jobs_no_longer_in_the_file(
    engine: Engine,
) -> None:
    engine.load_jobs(CHAIN)
    old_build = engine.create_build("fetch")
    engine.cancel_task(old_build)  # finished, so its job may go
    changed = SIMPLE.replace("args: [3]", "args: [5]")
    loaded = engine.load_jobs(changed)
    assert loaded.updated == ["fetch", "total"]  # total lost its kwargs
    assert loaded.unchanged == []
    assert loaded.removed == ["report", "size"]
    assert engine.get_job("fetch").args == [5]
    assert [job.id for job in engine.list_jobs()] == ["fetch", "total"]
    # An existing build keeps the definition it was created with.
    assert engine.get_build(old_build).job.args == [4]


def test_removing_a_job_with_an_unfinished_build_is_refused_and_changes_nothing(
    engine: Engine,
) -> None:
    engine.load_jobs(CHAIN)
    build_id = engine.create_build("report")
    with pytest.raises(InvalidArgument, match="job 'report' is no longer in the job set"):
        engine.load_jobs(SIMPLE.replace("args: [3]", "args: [5]"))
    assert [job.id for job in engine.list_jobs()] == ["fetch", "report", "size", "total"]
    assert engine.get_job("fetch").args == [4]
    assert engine.get_build(build_id).state == "blocked"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("jobs:\n- {id: a, function: m:f, dependencies: [zz]}", "names unknown job 'zz'"),
        (
            "jobs:\n- {id: a, function: m:f, dependencies: [b]}\n"
            "- {id: b, function: m:f, dependencies: [a]}",
            "dependency cycle",
        ),
        ("jobs:\n- {id: a, function: m:f, dependencies: [a]}", "cannot depend on itself"),
        (
            "jobs:\n- {id: a, function: m:f}\n- {id: b, function: m:f, kwargs: {x: !retval a}}",
            "job 'b', field 'kwargs': !retval a names a job that is not among",
        ),
        ("jobs:\n- {id: a, function: m:f}\n- {id: a, function: m:g}", "job 'a', field 'id'"),
        (
            "jobs:\n- {id: a, function: m:f}\n- {id: b, function: m:f, dependencies: [a, a]}",
            "lists 'a' twice",
        ),
    ],
)
def test_invalid_job_sets_raise_and_store_nothing(engine: Engine, text: str, words: str) -> None:
    engine.load_jobs(SIMPLE)
    with pytest.raises(JobConfigError) as caught:
        engine.load_jobs(text)
    assert words in str(caught.value)
    assert [job.id for job in engine.list_jobs()] == ["fetch", "total"]


def test_create_build_validates_its_config(engine: Engine) -> None:
    engine.load_jobs(SIMPLE)
    with pytest.raises(NotFound, match="job 'nope'"):
        engine.create_build("nope")
    for config, words in [
        ({"pins": {}}, "unknown build config key 'pins'"),
        ({"dependency_builds": {"fetch": "x"}}, "dependency_builds['fetch']"),
        ({"dependency_builds": {"fetch": 987654}}, "not a build of that job"),
        ({"dependency_builds": {"total": None}}, "not a dependency of job 'total'"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            engine.create_build("total", config)
        assert words in str(caught.value)
    waiting = engine.create_build("fetch")
    with pytest.raises(InvalidArgument, match="is waiting, not completed"):
        engine.create_build("total", {"dependency_builds": {"fetch": waiting}})
    assert [b.id for b in engine.get_job_builds("fetch")] == [waiting]
    assert engine.get_job_builds("total") == []


def test_get_build_of_a_plain_task_and_delete_build(engine: Engine) -> None:
    engine.load_jobs(SIMPLE)
    task = engine.dispatch("job_tasks:fetch", args=(1,), validate=False)
    with pytest.raises(NotFound):
        engine.get_build(task.id)
    with pytest.raises(NotFound):
        engine.delete_build(task.id)
    build_id = engine.create_build("fetch")
    with pytest.raises(InvalidArgument, match="is waiting"):
        engine.delete_build(build_id)
    engine.cancel_task(build_id)
    engine.delete_build(build_id)
    with pytest.raises(NotFound):
        engine.get_build(build_id)
    with pytest.raises(NotFound):
        engine.get_task(build_id)


def test_get_job_builds_filters_unfinished_and_canceled_builds(engine: Engine) -> None:
    engine.load_jobs(SIMPLE)
    total = engine.create_build("total")  # blocked on its fetch build
    fetch = engine.get_build(total).dependency_builds["fetch"]
    canceled = engine.create_build("fetch")
    engine.cancel_task(canceled)
    assert [b.id for b in engine.get_job_builds("fetch", finished=False)] == [fetch]
    assert [b.id for b in engine.get_job_builds("fetch", finished=True)] == [canceled]
    assert [b.id for b in engine.get_job_builds("fetch", started=False)] == [fetch, canceled]
    assert [b.id for b in engine.get_job_builds("fetch", success=False)] == [fetch, canceled]
    assert engine.get_job_builds("fetch", success=True) == []
    assert [b.state for b in engine.get_job_builds("total")] == ["blocked"]
    with pytest.raises(InvalidArgument, match="is waiting"):
        engine.delete_build(fetch)


def test_get_job_builds_checks_its_arguments(engine: Engine) -> None:
    engine.load_jobs(SIMPLE)
    for kwargs in [{"order": "up"}, {"limit": -1}, {"limit": "3"}, {"success": 1}]:
        with pytest.raises(InvalidArgument):
            engine.get_job_builds("fetch", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        engine.get_job_builds("nope")
    assert engine.get_latest_successful_build("fetch") is None


# -- builds run by real workers --------------------------------------------------------------


def run_worker(worker: Callable[..., WorkerProcess]) -> None:
    worker(concurrency=2, imports=("job_tasks",))


def test_a_dependency_chain_passes_return_values_through_retval(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    engine.load_jobs(CHAIN)
    build_id = engine.create_build("report")
    run_worker(worker)
    build = engine.get_build(build_id).wait(timeout=60)
    assert build.success and build.finished and build.started and not build.skipped
    assert build.retval == "sum: 100 + 4 = 104"
    total = engine.get_build(build.dependency_builds["total"])
    size = engine.get_build(build.dependency_builds["size"])
    fetch = engine.get_build(total.dependency_builds["fetch"])
    assert fetch.retval == {"numbers": [1, 2, 3, 4]}
    assert (total.retval, size.retval) == (100, 4)
    assert size.dependency_builds == {"fetch": fetch.id}  # the diamond builds fetch once
    assert [b.id for b in engine.get_job_builds("fetch")] == [fetch.id]
    assert build.start_time is not None and build.end_time is not None
    assert build.start_time >= total.end_time  # type: ignore[operator]
    assert build.title == ""
    assert fetch.title == "Fetch the numbers"
    assert build.config["job"]["function"] == "job_tasks:report"
    assert build.task.state == "completed"
    assert build.task.payload["args"] == [{"$retval": total.id}, {"$retval": size.id}]
    assert size.task.payload["kwargs"] == {"data": {"$retval": fetch.id}}
    assert build.exception is None and build.exception_tb is None


def test_pinned_dependencies_are_reused_and_none_rebuilds_them(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    engine.load_jobs(SIMPLE)
    run_worker(worker)
    first = engine.get_build(engine.create_build("total")).wait(timeout=60)
    assert first.retval == 6
    fetch_id = first.dependency_builds["fetch"]

    pinned = engine.get_build(
        engine.create_build("total", {"dependency_builds": {"fetch": fetch_id}})
    ).wait(timeout=60)
    assert pinned.retval == 6
    assert pinned.dependency_builds == {"fetch": fetch_id}
    assert pinned.config["dependency_builds"] == {"fetch": fetch_id}
    assert [b.id for b in engine.get_job_builds("fetch")] == [fetch_id]  # not rebuilt

    pinned_by_object = engine.create_build(
        "total", {"dependency_builds": {"fetch": engine.get_build(fetch_id)}}
    )
    assert engine.get_build(pinned_by_object).dependency_builds == {"fetch": fetch_id}
    engine.get_build(pinned_by_object).wait(timeout=60)

    rebuilt = engine.get_build(
        engine.create_build("total", {"dependency_builds": {"fetch": None}})
    ).wait(timeout=60)
    assert rebuilt.success
    assert rebuilt.dependency_builds["fetch"] != fetch_id
    assert len(engine.get_job_builds("fetch")) == 2


def test_a_failing_build_records_exception_and_traceback_and_skips_dependents(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    engine.load_jobs(FAILING)
    after_id = engine.create_build("after")
    run_worker(worker)
    after = engine.get_build(after_id).wait(timeout=60)
    assert after.skipped and after.finished and not after.success and not after.started
    boom = engine.get_build(after.dependency_builds["boom"])
    assert boom.finished and boom.started and not boom.success and not boom.skipped
    assert boom.retval is None
    assert boom.exception is not None
    assert boom.exception["type"] == "ValueError"
    assert boom.exception["message"] == "over the limit 42"
    frames = boom.exception_tb
    assert frames is not None and frames == boom.traceback
    assert frames[-1]["name"] == "explode"
    assert frames[-1]["locals"] == {"threshold": "21", "limit": "42"}
    assert "dependency" in (after.reason or "")
    assert engine.get_build(boom.dependency_builds["fetch"]).success


def test_get_job_builds_filters_orders_and_limits(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    engine.load_jobs(FAILING)
    run_worker(worker)
    fetch_ok = engine.get_build(engine.create_build("fetch")).wait(timeout=60)
    boom_failed = engine.get_build(engine.create_build("boom")).wait(timeout=60)
    after_skipped = engine.get_build(engine.create_build("after")).wait(timeout=60)
    assert after_skipped.skipped
    fetch_ok2 = engine.get_build(engine.create_build("fetch")).wait(timeout=60)

    def ids(job: str, **filters: object) -> list[int]:
        return [b.id for b in engine.get_job_builds(job, **filters)]  # type: ignore[arg-type]

    fetches = ids("fetch")
    assert fetches[0] == fetch_ok.id and fetches[-1] == fetch_ok2.id
    assert fetches == sorted(fetches)
    assert ids("fetch", order="desc") == fetches[::-1]
    assert ids("fetch", order="desc", limit=1) == [fetch_ok2.id]
    assert ids("fetch", limit=2) == fetches[:2]
    assert ids("fetch", limit=0) == []
    assert ids("fetch", success=True) == fetches
    assert ids("fetch", success=False) == []
    boom_ids = ids("boom")
    assert boom_failed.id in boom_ids
    assert ids("boom", success=False) == boom_ids
    assert ids("boom", finished=True, success=False, skipped=False) == boom_ids
    assert ids("after", skipped=True) == [after_skipped.id]
    assert ids("after", skipped=False) == []
    assert ids("after", started=False) == [after_skipped.id]
    assert ids("after", started=True) == []
    assert ids("boom", started=True) == boom_ids
    assert ids("fetch", finished=False) == []
    latest = engine.get_latest_successful_build("fetch")
    assert isinstance(latest, Build) and latest.id == fetch_ok2.id
    assert engine.get_latest_successful_build("boom") is None

    # delete_build of a finished build; the next latest successful build takes its place.
    engine.delete_build(fetch_ok2.id)
    latest = engine.get_latest_successful_build("fetch")
    assert latest is not None and latest.id != fetch_ok2.id
    assert fetch_ok2.id not in ids("fetch")
