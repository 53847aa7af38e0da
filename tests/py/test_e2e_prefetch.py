"""End to end: short tasks are claimed ahead in batches (the worker's prefetch), on both stores.

A worker holds claimed tasks that are short (by their recent run times) in a local queue, up to
about ``--prefetch-window`` of work per slot, so that it claims in batches. These tests check
that it does, and that the tasks it holds are never lost: SIGTERM hands them back without
counting an attempt, and cancel reaches them before they start.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import WorkerProcess
from taskengine.engine import Engine
from taskengine.task import Task

UNFINISHED = ("blocked", "waiting", "running", "canceling")


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, details: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{details()}")
        time.sleep(0.02)


def states_of(tasks: list[Task]) -> str:
    """Each state's count, and the tasks not finished, for a failure message."""
    refreshed = [task.refresh() for task in tasks]
    counts = Counter(task.state for task in refreshed)
    stuck = [(t.id, t.state, t.reason) for t in refreshed if t.state in UNFINISHED][:10]
    return f"{dict(counts)} unfinished: {stuck}"


def count(engine: Engine, state: str) -> int:
    return len(engine.list_tasks(state=state, limit=100_000))


def all_finished(engine: Engine) -> bool:
    return all(count(engine, state) == 0 for state in UNFINISHED)


def distinct_starts(tasks: list[Task]) -> int:
    """How many claim transactions started these tasks: one claim gives all it takes the
    same ``started_at``."""
    return len({task.refresh().started_at for task in tasks})


@pytest.mark.parametrize("window", ["0.02", "0"])
def test_short_tasks_are_claimed_in_batches(
    engine: Engine, worker: Callable[..., WorkerProcess], window: str
) -> None:
    tasks = engine.dispatch_many("sample_tasks:noop", [() for _ in range(2000)])
    worker(concurrency=2, extra_args=("--prefetch-window", window))
    wait_until(lambda: all_finished(engine), 60, "every task to finish")
    assert count(engine, "completed") == len(tasks)
    claims = distinct_starts(tasks)
    if window == "0":
        # Claims only for idle slots: at most two tasks per claim.
        assert claims >= len(tasks) // 2, claims
    else:
        # Batches: a few claims of one or two while the run time is learned, then large
        # ones (up to 256). Five tasks per claim on average leaves room for a loaded machine.
        assert claims <= len(tasks) // 5, claims


def test_sigterm_hands_back_held_tasks_without_counting_an_attempt(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    tasks = engine.dispatch_many("sample_tasks:sleep", [(0.002,) for _ in range(3000)])
    first = worker(concurrency=2, extra_args=("--prefetch-window", "0.05"))
    # More running than slots: the worker holds claimed tasks locally.
    wait_until(lambda: count(engine, "running") > 2, 60, "the worker to claim ahead")
    assert first.stop() == 0, first.log()
    assert count(engine, "running") == 0 and count(engine, "canceling") == 0
    assert count(engine, "failed") == 0
    waiting = engine.list_tasks(state="waiting", limit=100_000)
    assert waiting, "the worker finished everything before SIGTERM; nothing was handed back"
    assert all(task.attempt == 0 for task in waiting), [t.attempt for t in waiting][:20]

    worker(concurrency=2)
    wait_until(lambda: all_finished(engine), 120, "every task to finish")
    finished = [task.refresh() for task in tasks]
    assert {task.state for task in finished} == {"completed"}
    assert {task.attempt for task in finished} == {1}


def test_cancel_reaches_tasks_held_before_they_start(
    engine: Engine, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    started = tmp_path / "started.txt"
    group = engine.create_task_group("held")
    tasks = engine.dispatch_many(
        "e2e_tasks:append_id_and_sleep",
        [(str(started), i, 0.02) for i in range(400)],
        task_group=group,
    )
    # About 0.5 s of work per slot held: some 50 tasks.
    held = worker(concurrency=2, imports=("e2e_tasks",), extra_args=("--prefetch-window", "0.5"))
    wait_until(lambda: count(engine, "running") > 20, 60, "the worker to claim ahead")
    engine.cancel_task_group(group)
    canceled_at = time.time()
    # No task stays canceling: held ones end canceled without running.
    wait_until(
        lambda: all_finished(engine),
        20,
        "every task to finish",
        lambda: f"{states_of(tasks)}\nworker exited {held.stop()}:\n{held.log()}",
    )
    states = {task.refresh().state for task in tasks}
    assert states <= {"completed", "canceled"}, states
    starts = [line.split() for line in started.read_text().splitlines()]
    late = [int(tag) for tag, at in starts if float(at) > canceled_at]
    # Held tasks would keep starting for ~0.5 s if cancel did not reach them; only the
    # worker's reaction time (a wake-up and one pass of its loop) may let a few through.
    assert len(late) <= 10, f"{len(late)} tasks started after the cancel: {late}"
    assert sum(task.state == "canceled" for task in tasks) > 20


def distinct_ends(tasks: list[Task]) -> int:
    """How many transactions stored these tasks' results: one gives all it stores the same
    ``finished_at``."""
    return len({task.refresh().finished_at for task in tasks})


@pytest.mark.parametrize("window", ["0.5", "0"])
def test_results_are_stored_in_batches(
    engine: Engine, worker: Callable[..., WorkerProcess], window: str
) -> None:
    # Tasks of 5 ms: without a window each result is stored as it comes (a transaction takes
    # less than a task), with one they wait for their batch.
    tasks = engine.dispatch_many("sample_tasks:sleep", [(0.005,) for _ in range(300)])
    started = time.monotonic()
    worker(concurrency=2, extra_args=("--completion-window", window))
    wait_until(lambda: all_finished(engine), 60, "every task to finish")
    elapsed = time.monotonic() - started
    assert count(engine, "completed") == len(tasks)
    ends = distinct_ends(tasks)
    if window == "0":
        assert ends >= 50, ends
    else:
        # At most one transaction per 0.5 s window, plus the first (stored at once).
        assert ends <= elapsed / 0.5 + 2, (ends, elapsed)


def test_a_lone_result_is_stored_at_once_whatever_the_window(
    engine: Engine, worker: Callable[..., WorkerProcess]
) -> None:
    # After a quiet spell the first result does not wait for its batch: with a 30 s window
    # the task still ends well within the 20 s this allows.
    worker(concurrency=1, extra_args=("--completion-window", "30"))
    task = engine.dispatch("sample_tasks:noop")
    assert task.wait(timeout=20).state == "completed"
