"""End to end: poison tasks that kill their executor or their worker, on both stores.

A task that kills what runs it, again on every attempt, must end ``failed`` once its attempts
are used up, while the other tasks keep flowing and the surviving workers keep working. The
poison tasks (``poison_tasks``) record each run (worker, pid, parent pid, process group) before
they strike, so the assertions judge the engine from the outside.

The workers come from the ``cluster`` helpers of ``test_e2e_workers`` (heartbeat 0.3 s,
heartbeat timeout 1.5 s); every process a test starts is stopped at teardown.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import poison_tasks
import pytest
from taskengine.engine import Engine
from taskengine.task import Task
from test_e2e_workers import (
    HEARTBEAT_TIMEOUT,
    MARGIN,
    Cluster,
    Worker,
    describe,
    is_alive,
    read_events,
    wait_done,
    wait_for,
)

NORMAL_TASKS = 30
IMPORT_POISON = ("--import", "poison_tasks")


def start_workers(engine: Engine, cluster: Cluster, count: int) -> list[Worker]:
    """Start ``count`` workers (concurrency 2) importing ``poison_tasks``; wait until all
    registered."""
    workers = [
        cluster.start(engine.url, concurrency=2, extra_args=IMPORT_POISON) for _ in range(count)
    ]
    for w in workers:
        w.wait_registered(engine)
    return workers


def dispatch_quick(
    engine: Engine, count: int, retries: int = 0, retry_backoff: float | None = None
) -> list[Task]:
    """Dispatch ``count`` ``poison_tasks.quick`` tasks tagged 0, 1..."""
    return [
        engine.dispatch(
            poison_tasks.quick, args=(tag,), retries=retries, retry_backoff=retry_backoff
        )
        for tag in range(count)
    ]


def assert_completed(tasks: list[Task], workers: set[str]) -> None:
    """The tasks (tagged 0, 1...) completed, each with its own tag, on one of ``workers``,
    the worker the store names being the one the task saw."""
    for tag, task in enumerate(tasks):
        assert task.state == "completed", describe(task)
        assert task.result["tag"] == tag, describe(task)
        assert task.worker in workers, describe(task)
        assert task.result["worker"] == task.worker, describe(task)


def state_counts(engine: Engine) -> dict[str, int]:
    """How many tasks of the store are in each state."""
    counts: dict[str, int] = {}
    for task in engine.list_tasks(limit=10_000):
        counts[task.state] = counts.get(task.state, 0) + 1
    return counts


def unfinished(engine: Engine) -> list[Task]:
    """The store's running and canceling tasks."""
    return engine.list_tasks(state="running", limit=10_000) + engine.list_tasks(
        state="canceling", limit=10_000
    )


# -- 1. a task that kills its executor -----------------------------------------------------


def test_executor_killer_fails_after_its_attempts(
    engine: Engine, cluster: Cluster, tmp_path: Path
) -> None:
    """``os._exit(3)`` in the executor, retries=2, among 30 quick tasks on two workers: the
    poison task ends ``failed`` at attempt 3 with ``ExecutorLost``; the 30 complete; both
    workers live on and then run four tasks at once (every slot works)."""
    events = tmp_path / "exits.jsonl"
    workers = start_workers(engine, cluster, 2)
    names = {w.name for w in workers}
    poison = engine.dispatch(
        poison_tasks.exit_executor, args=(str(events),), retries=2, retry_backoff=0
    )
    normal = dispatch_quick(engine, NORMAL_TASKS)

    wait_done([poison, *normal], 60 + MARGIN, cluster)
    runs = read_events(events)
    for run in runs:
        cluster.track(pid=run["pid"], pgid=run["pgid"])
    assert poison.state == "failed", describe(poison)
    assert poison.attempt == 3, describe(poison)
    assert poison.error is not None and poison.error["type"] == "ExecutorLost", describe(poison)
    assert [r["run"] for r in runs] == [1, 2, 3], runs
    assert {r["worker"] for r in runs} <= names, runs
    assert_completed(normal, names)

    for w in workers:
        assert w.process.poll() is None, f"worker {w.name} exited\n{cluster.logs()}"
    assert {r.name for r in engine.workers()} == names, engine.workers()

    # Four tasks that only complete when all four run at once: both workers, every slot.
    meet = tmp_path / "meet"
    after = [
        engine.dispatch(poison_tasks.rendezvous, args=(str(meet), tag, 4, 30 + MARGIN))
        for tag in range(4)
    ]
    wait_done(after, 30 + 2 * MARGIN, cluster)
    for task in after:
        assert task.state == "completed", describe(task)
    assert {t.worker for t in after} == names, [describe(t) for t in after]
    assert not unfinished(engine)
    assert state_counts(engine) == {"completed": NORMAL_TASKS + 4, "failed": 1}


# -- 2. a task that kills its worker -------------------------------------------------------


def test_worker_killer_fails_after_its_attempts(
    engine: Engine, cluster: Cluster, tmp_path: Path
) -> None:
    """A task that SIGKILLs its worker, retries=1, on three workers with 30 quick tasks
    dispatched after it: it kills a first worker, is retried (attempt 2) on a second and kills
    it too, then ends ``failed``, "worker lost" (``WorkerLost``). The third worker lives on;
    every quick task completes (those lost with a killed worker are retried), later ones on
    the third worker; nothing stays running."""
    events = tmp_path / "kills.jsonl"
    workers = start_workers(engine, cluster, 3)
    by_name = {w.name: w for w in workers}
    poison = engine.dispatch(
        poison_tasks.kill_worker, args=(str(events),), retries=1, retry_backoff=0
    )
    # Quick tasks running on a worker the poison kills are lost with it: their retries let
    # them complete anyway (two kills, three attempts).
    normal = dispatch_quick(engine, NORMAL_TASKS, retries=2, retry_backoff=0)

    def poison_done() -> bool:
        for run in read_events(events):
            cluster.track(pid=run["pid"], pgid=run["pgid"])
        if all(w.process.poll() is not None for w in workers):
            pytest.fail(f"every worker died\n{describe(poison)}\n{cluster.logs()}")
        return poison.refresh().done

    wait_for(
        poison_done,
        2 * (HEARTBEAT_TIMEOUT + 10) + MARGIN,
        "the poison task to finish",
        details=lambda: f"{describe(poison)}\nruns: {read_events(events)}\n{cluster.logs()}",
    )
    runs = read_events(events)
    assert [r["run"] for r in runs] == [1, 2], f"{runs}\n{cluster.logs()}"
    first, second = (by_name[r["worker"]] for r in runs)
    assert first is not second, runs
    for run, victim in zip(runs, (first, second), strict=True):
        assert run["ppid"] == victim.pid, (run, victim.pid)
        try:
            code = victim.process.wait(10 + MARGIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {victim.name} survived its poison run {run}\n{cluster.logs()}")
        assert code == -signal.SIGKILL, f"worker {victim.name} exited with {code}"
        victim.signaled = True  # an expected death, for cluster.check_workers
    (survivor,) = (w for w in workers if w not in (first, second))

    assert poison.state == "failed", describe(poison)
    assert poison.attempt == 2, describe(poison)
    assert poison.reason == "worker lost", describe(poison)
    assert poison.error is not None and poison.error["type"] == "WorkerLost", describe(poison)

    wait_done(normal, 30 + MARGIN, cluster)
    assert_completed(normal, set(by_name))
    assert survivor.process.poll() is None, f"the third worker exited\n{cluster.logs()}"

    # The third worker alone runs what comes next.
    later = dispatch_quick(engine, 10)
    wait_done(later, 30 + MARGIN, cluster)
    assert_completed(later, {survivor.name})
    assert {r.name for r in engine.workers()} == {survivor.name}, engine.workers()
    assert not unfinished(engine), [describe(t) for t in unfinished(engine)]
    assert state_counts(engine) == {"completed": NORMAL_TASKS + 10, "failed": 1}

    # The killed workers took the poison's executors with them (PR_SET_PDEATHSIG).
    wait_for(
        lambda: not any(is_alive(r["pid"]) for r in runs),
        5 + MARGIN,
        "the poison's executors to die with their workers",
        cluster,
        lambda: str(runs),
    )
