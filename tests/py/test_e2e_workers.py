"""End to end: real ``taskengine-worker`` processes on both stores.

Resource safety and fairness across several workers, a worker killed or frozen mid-task
(recovery, retries, fencing), cancel and timeout killing whole process groups, many workers
on one SQLite file, and a clean shutdown that hands a running task back. The tasks
(``e2e_tasks``) record their own start and end times, worker, pid and process group, so the
assertions judge the engine from the outside.

Every process a test starts is stopped at teardown by the ``cluster`` fixture: workers get
SIGCONT and SIGTERM, then SIGKILL; process groups the tasks reported are SIGKILLed when
anything in them still runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import e2e_tasks
import pytest
import taskengine
from conftest import worker_env
from taskengine._binaries import find_worker_binary
from taskengine.engine import Engine
from taskengine.task import Task

HEARTBEAT = 0.3
HEARTBEAT_TIMEOUT = 1.5
MARGIN = 6.0
"""Slack on every deadline: a 2-core machine running CI is slow and noisy."""
TEARDOWN_GRACE = 5.0


# -- processes -----------------------------------------------------------------------------


def proc_state(pid: int) -> str | None:
    """The state letter of ``/proc/PID/stat`` (``R``, ``S``, ``Z``...), None if no such pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 1 :].split()
    return fields[0] if fields else None


def is_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def live_group_members(pgid: int) -> list[int]:
    """Pids of the processes of group ``pgid`` that are not zombies."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text(errors="replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 1 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    cluster: Cluster | None = None,
    details: Callable[[], str] = str,
) -> float:
    """Poll ``predicate`` until true; return the seconds it took.

    Fails after ``timeout``, or at once when a worker of ``cluster`` exited unasked, with
    ``details()`` and the workers' logs in the message.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():
            return time.monotonic() - start
        if cluster is not None:
            cluster.check_workers(f"while waiting for {what}")
        if time.monotonic() >= deadline:
            logs = "" if cluster is None else "\n" + cluster.logs()
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}\n{details()}{logs}")
        time.sleep(0.02)


def read_lines(path: Path) -> list[str]:
    """The lines of ``path`` (none when it does not exist yet)."""
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def read_events(path: Path) -> list[dict[str, Any]]:
    """The JSON lines ``e2e_tasks.hang_first`` appended to ``path``."""
    return [json.loads(line) for line in read_lines(path) if line.strip()]


def describe(task: Task) -> str:
    """A task's row, for failure messages."""
    return json.dumps(task.refresh().as_dict(), default=str, indent=1)


# -- workers -------------------------------------------------------------------------------


@dataclass
class Worker:
    """A ``taskengine-worker`` process started by the ``cluster`` fixture."""

    process: subprocess.Popen[bytes]
    name: str
    out_path: Path
    err_path: Path
    argv: list[str]
    signaled: bool = False
    """Whether the test sent SIGTERM or SIGKILL (so an exit is expected)."""

    @property
    def pid(self) -> int:
        """The worker's pid."""
        return self.process.pid

    def log(self) -> str:
        """What the worker wrote to stdout and stderr so far."""
        parts = []
        for path in (self.out_path, self.err_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts)

    def wait_registered(self, engine: Engine, timeout: float = 20.0) -> None:
        """Wait until the worker is listed as online by ``engine.workers()``."""

        def registered() -> bool:
            if self.process.poll() is not None:
                pytest.fail(
                    f"worker {self.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            return any(record.name == self.name for record in engine.workers())

        wait_for(registered, timeout, f"worker {self.name} to register", details=self.log)

    def send(self, sig: int) -> None:
        """Send ``sig`` to the worker; after SIGTERM or SIGKILL its exit is expected."""
        if sig in (signal.SIGTERM, signal.SIGKILL):
            self.signaled = True
        self.process.send_signal(sig)

    def terminate(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM; return (exit status or None if still running after ``timeout``, seconds)."""
        start = time.monotonic()
        self.send(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - start


@dataclass
class Cluster:
    """Starts workers and remembers every process to clean up."""

    tmp_path: Path
    workers: list[Worker] = field(default_factory=list)
    groups: set[int] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)

    def start(
        self,
        url: str,
        *,
        concurrency: int = 2,
        kill_grace: float = 1.0,
        shutdown_grace: float = 10.0,
        extra_args: tuple[str, ...] = (),
    ) -> Worker:
        """Start a worker importing ``e2e_tasks`` with the short heartbeat of these tests."""
        name = f"e2e-{uuid.uuid4().hex[:8]}"
        argv = [
            find_worker_binary(),
            "--url",
            url,
            "--name",
            name,
            "--import",
            "e2e_tasks",
            "--concurrency",
            str(concurrency),
            "--heartbeat",
            f"{HEARTBEAT:g}",
            "--heartbeat-timeout",
            f"{HEARTBEAT_TIMEOUT:g}",
            "--kill-grace",
            f"{kill_grace:g}",
            "--shutdown-grace",
            f"{shutdown_grace:g}",
            *extra_args,
        ]
        out_path = self.tmp_path / f"{name}.out"
        err_path = self.tmp_path / f"{name}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=worker_env(),
                cwd=self.tmp_path,
                start_new_session=True,
            )
        worker = Worker(process, name, out_path, err_path, argv)
        self.workers.append(worker)
        return worker

    def track(self, pid: int | None = None, pgid: int | None = None) -> None:
        """Remember a task's process (group) to SIGKILL at teardown if still running."""
        if pid is not None:
            self.pids.add(pid)
        if pgid is not None:
            self.groups.add(pgid)

    def check_workers(self, when: str) -> None:
        """Fail if a worker exited without the test asking it to."""
        for w in self.workers:
            code = w.process.poll()
            if code is not None and not w.signaled:
                pytest.fail(f"worker {w.name} exited with {code} {when}\n{self.logs()}")

    def logs(self) -> str:
        """Every worker's log."""
        return "\n".join(f"=== worker {w.name} (pid {w.pid}) ===\n{w.log()}" for w in self.workers)

    def cleanup(self) -> None:
        """Stop every worker (SIGCONT, SIGTERM, SIGKILL) and every tracked process."""
        running = [w for w in self.workers if w.process.poll() is None]
        for w in running:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError):
                    w.process.send_signal(sig)
        deadline = time.monotonic() + TEARDOWN_GRACE
        for w in running:
            try:
                w.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
        for pgid in self.groups:
            if pgid > 1 and pgid != os.getpgrp() and live_group_members(pgid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        for pid in self.pids:
            if pid > 1 and is_alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


def wait_done(tasks: list[Task], timeout: float, cluster: Cluster) -> None:
    """Wait until every task reached a final state."""
    pending = list(tasks)

    def all_done() -> bool:
        while pending and pending[0].refresh().done:
            pending.pop(0)
        return not pending

    wait_for(
        all_done,
        timeout,
        f"{len(tasks)} tasks to finish",
        cluster,
        lambda: f"first pending: {describe(pending[0])}",
    )


# -- 1. resources across workers -----------------------------------------------------------


def conflicts(a: tuple[set[str], set[str]], b: tuple[set[str], set[str]]) -> set[str]:
    """Resources on which two (exclusive, shared) sets conflict."""
    (a_excl, a_shared), (b_excl, b_shared) = a, b
    return (a_excl & (b_excl | b_shared)) | (b_excl & a_shared)


def test_resources_across_workers(engine: Engine, cluster: Cluster) -> None:
    """40 tasks over three workers: conflicting tasks never overlap and start in dispatch
    order; all complete."""
    workers = [cluster.start(engine.url, concurrency=2) for _ in range(3)]
    for w in workers:
        w.wait_registered(engine)
    rng = random.Random(20240601)
    pool = ["res-a", "res-b", "res-c"]
    dispatched: list[tuple[Task, set[str], set[str]]] = []
    for _ in range(40):
        names = rng.sample(pool, rng.choice([0, 1, 1, 2, 2, 3]))
        exclusive = {n for n in names if rng.random() < 0.4}
        shared = set(names) - exclusive
        task = engine.dispatch(
            e2e_tasks.timed,
            args=(round(rng.uniform(0.02, 0.08), 3),),
            exclusive_resources=sorted(exclusive),
            shared_resources=sorted(shared),
        )
        dispatched.append((task, exclusive, shared))
    wait_done([t for t, _, _ in dispatched], 60, cluster)

    records = []
    for task, exclusive, shared in dispatched:
        assert task.state == "completed", describe(task)
        result = task.result
        assert result["worker"] == task.worker, (result, describe(task))
        records.append((task.id, result, (exclusive, shared)))
    used = {r["worker"] for _, r, _ in records}
    assert used <= {w.name for w in workers}

    problems = []
    for i, (a_id, a, a_res) in enumerate(records):
        for b_id, b, b_res in records[i + 1 :]:
            on = conflicts(a_res, b_res)
            if not on:
                continue
            assert a_id < b_id
            if a["start"] < b["end"] and b["start"] < a["end"]:
                problems.append(
                    f"tasks {a_id} {a_res} and {b_id} {b_res} overlapped on {on}: "
                    f"{a['start']:.4f}-{a['end']:.4f} vs {b['start']:.4f}-{b['end']:.4f}"
                )
            elif b["start"] < a["start"]:
                problems.append(
                    f"task {b_id} {b_res} started before the earlier-dispatched "
                    f"conflicting task {a_id} {a_res} (on {on})"
                )
    assert not problems, "\n".join(problems)


# -- 2. kill -9 of a worker mid-task -------------------------------------------------------


def test_worker_killed_mid_task(engine: Engine, cluster: Cluster, tmp_path: Path) -> None:
    """kill -9 a worker running two long tasks: the one with a retry runs again elsewhere
    (attempt 2) and completes, the other fails "worker lost"; the killed attempts' process
    groups are gone and never finish."""
    events = tmp_path / "events.jsonl"
    doomed = cluster.start(engine.url, concurrency=2)
    doomed.wait_registered(engine)
    retried = engine.dispatch(
        e2e_tasks.hang_first, args=(str(events), "retried", 60, 0.2), retries=1, retry_backoff=0
    )
    single = engine.dispatch(e2e_tasks.hang_first, args=(str(events), "single", 60, 0.2))

    def both_started() -> bool:
        return {e["tag"] for e in read_events(events) if e["event"] == "start"} == {
            "retried",
            "single",
        }

    wait_for(both_started, 20, "both tasks to start", cluster)
    first_runs = [e for e in read_events(events) if e["event"] == "start"]
    for e in first_runs:
        cluster.track(pid=e["pid"], pgid=e["pgid"])
        assert e["worker"] == doomed.name, e
    for task in (retried, single):
        assert task.refresh().state == "running", describe(task)
        assert task.worker == doomed.name and task.attempt == 1, describe(task)

    survivor = cluster.start(engine.url, concurrency=2)
    survivor.wait_registered(engine)
    doomed.send(signal.SIGKILL)
    killed_at = time.monotonic()
    doomed.process.wait()

    wait_done([single, retried], HEARTBEAT_TIMEOUT + MARGIN, cluster)
    single_after = time.monotonic() - killed_at
    assert single.state == "failed", describe(single)
    assert single.reason == "worker lost", describe(single)
    assert single.error is not None and single.error["type"] == "WorkerLost", describe(single)
    assert retried.state == "completed", describe(retried)
    assert retried.attempt == 2, describe(retried)
    assert retried.worker == survivor.name, describe(retried)
    assert retried.result["run"] == 2 and retried.result["worker"] == survivor.name
    assert single_after <= HEARTBEAT_TIMEOUT + MARGIN

    # The killed worker's executors must not go on running the lost attempts.
    def groups_gone() -> bool:
        return not any(live_group_members(e["pgid"]) for e in first_runs)

    def group_details() -> str:
        return "\n".join(
            f"{e['tag']} attempt 1: pgid {e['pgid']} live members {live_group_members(e['pgid'])}"
            for e in first_runs
        )

    wait_for(
        groups_gone,
        HEARTBEAT_TIMEOUT + MARGIN,
        "the killed worker's executor process groups to be gone",
        cluster,
        group_details,
    )
    ends = [e for e in read_events(events) if e["event"] == "end"]
    assert [(e["tag"], e["run"]) for e in ends] == [("retried", 2)], ends


# -- 3. a frozen worker comes back ---------------------------------------------------------


def test_stopped_worker_cannot_overwrite_newer_attempt(
    engine: Engine, cluster: Cluster, tmp_path: Path
) -> None:
    """SIGSTOP a worker mid-task until the task is retried and completed elsewhere, then
    SIGCONT: the newer attempt's state, result and worker stay; the old worker survives or
    exits cleanly on SIGTERM."""
    events = tmp_path / "events.jsonl"
    frozen = cluster.start(engine.url, concurrency=2)
    frozen.wait_registered(engine)
    task = engine.dispatch(
        e2e_tasks.hang_first, args=(str(events), "t", 3.0, 0.2), retries=1, retry_backoff=0
    )
    wait_for(lambda: bool(read_events(events)), 20, "the task to start", cluster)
    (first,) = read_events(events)
    cluster.track(pid=first["pid"], pgid=first["pgid"])
    assert first["worker"] == frozen.name

    other = cluster.start(engine.url, concurrency=2)
    other.wait_registered(engine)
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        wait_done([task], HEARTBEAT_TIMEOUT + MARGIN, cluster)
        assert task.state == "completed", describe(task)
        assert task.attempt == 2 and task.worker == other.name, describe(task)
        final = task.as_dict()
        assert final["result"]["run"] == 2 and final["result"]["worker"] == other.name, final
        # Let the first attempt finish too (its executor was not stopped), so its result
        # waits in the frozen worker's pipe when it resumes.
        wait_for(
            lambda: any(e["event"] == "end" and e["run"] == 1 for e in read_events(events)),
            5 + MARGIN,
            "the first attempt's sleep to end",
        )
    finally:
        os.kill(frozen.pid, signal.SIGCONT)

    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        now = task.refresh().as_dict()
        for key in ("state", "attempt", "worker", "result", "error", "finished_at"):
            assert now.get(key) == final.get(key), (key, now, final, cluster.logs())
        time.sleep(0.05)

    code = frozen.process.poll()
    assert code in (None, 0), f"resumed worker exited with {code}\n{frozen.log()}"
    if code is None:
        code, took = frozen.terminate(10 + MARGIN)
        assert code == 0, f"resumed worker: SIGTERM gave {code} after {took:.1f}s\n{frozen.log()}"
    assert [e["run"] for e in read_events(events) if e["event"] == "start"] == [1, 2]


# -- 4. cancel kills the whole process group -----------------------------------------------


def test_cancel_running_command_kills_grandchildren(
    engine: Engine, cluster: Cluster, tmp_path: Path
) -> None:
    """Cancel a running shell with two background sleeps: ``canceled`` within the kill grace
    plus a margin, and the shell and both sleeps are dead."""
    kill_grace = 1.0
    pid_file = tmp_path / "pids"
    w = cluster.start(engine.url, concurrency=2, kill_grace=kill_grace)
    w.wait_registered(engine)
    script = (
        f"echo $$ >> {pid_file}; sleep 300 & echo $! >> {pid_file}; "
        f"sleep 300 & echo $! >> {pid_file}; wait"
    )
    task = engine.dispatch(taskengine.Command(["sh", "-c", script]))
    wait_for(lambda: len(read_lines(pid_file)) == 3, 20, "the command to start", cluster)
    pids = [int(line) for line in read_lines(pid_file)]
    for pid in pids:
        cluster.track(pid=pid, pgid=pids[0])
    assert task.refresh().state == "running", describe(task)
    assert all(is_alive(pid) for pid in pids)

    canceled_at = time.monotonic()
    engine.cancel_task(task)
    wait_done([task], kill_grace + MARGIN, cluster)
    took = time.monotonic() - canceled_at
    assert task.state == "canceled", describe(task)
    alive = {pid: proc_state(pid) for pid in pids if is_alive(pid)}
    assert not alive, f"still alive after cancel (pid: state): {alive}\n{cluster.logs()}"
    assert took <= kill_grace + MARGIN


# -- 5. timeouts ---------------------------------------------------------------------------


def test_timeout_kills_command_and_function(
    engine: Engine, cluster: Cluster, tmp_path: Path
) -> None:
    """A command and a Python function that outlive ``timeout=1`` end ``failed`` with reason
    "timeout" and error type "Timeout"; their grandchildren are gone. The worker then still
    runs function tasks."""
    kill_grace = 1.0
    w = cluster.start(engine.url, concurrency=2, kill_grace=kill_grace)
    w.wait_registered(engine)
    cmd_pids = tmp_path / "cmd-pids"
    fn_pids = tmp_path / "fn-pids"
    script = f"echo $$ >> {cmd_pids}; sleep 300 & echo $! >> {cmd_pids}; wait"
    dispatched_at = time.monotonic()
    command = engine.dispatch(taskengine.Command(["sh", "-c", script]), timeout=1)
    function = engine.dispatch(e2e_tasks.spawn_and_sleep, args=(str(fn_pids), 300), timeout=1)
    wait_for(
        lambda: len(read_lines(cmd_pids)) == 2 and len(read_lines(fn_pids)) == 2,
        20,
        "both tasks to start",
        cluster,
    )
    pids = [int(line) for line in read_lines(cmd_pids) + read_lines(fn_pids)]
    for pid in pids:
        cluster.track(pid=pid)
    cluster.track(pgid=pids[0])
    cluster.track(pgid=pids[2])

    wait_done([command, function], 1 + kill_grace + MARGIN, cluster)
    took = time.monotonic() - dispatched_at
    for task in (command, function):
        assert task.state == "failed", describe(task)
        assert task.reason == "timeout", describe(task)
        assert task.error is not None and task.error["type"] == "Timeout", describe(task)
        assert task.duration is not None and task.duration.total_seconds() >= 0.9, describe(task)
    alive = {pid: proc_state(pid) for pid in pids if is_alive(pid)}
    assert not alive, f"still alive after the timeout (pid: state): {alive}\n{cluster.logs()}"
    assert took <= 1 + kill_grace + MARGIN

    after = engine.dispatch(e2e_tasks.timed, args=(0,))
    wait_done([after], 10 + MARGIN, cluster)
    assert after.state == "completed", describe(after)


# -- 6. many workers on one SQLite file ----------------------------------------------------


def test_sqlite_many_workers(tmp_path: Path, cluster: Cluster) -> None:
    """Eight workers on one SQLite file, 2,000 tasks dispatched in batches while they run:
    no "database is locked", every task runs exactly once, all workers exit 0 on SIGTERM."""
    engine = taskengine.connect(f"sqlite:///{tmp_path / 'many.db'}")
    engine.install()
    workers = [cluster.start(engine.url, concurrency=2) for _ in range(8)]
    for w in workers:
        w.wait_registered(engine)
    out = tmp_path / "ids.txt"
    tasks: list[Task] = []
    total, batch = 2000, 100
    for first in range(0, total, batch):
        # 5 ms tasks: short enough for the workers to claim ahead in batches, long enough
        # that one worker's batch is not the whole queue.
        tasks += engine.dispatch_many(
            e2e_tasks.append_id_and_sleep,
            [(str(out), i, 0.005) for i in range(first, first + batch)],
        )
    assert len(tasks) == total

    wait_for(
        lambda: len(read_lines(out)) >= total,
        60 + MARGIN,
        f"{total} tasks to run",
        cluster,
        lambda: f"{len(read_lines(out))} ran",
    )
    wait_done(tasks, 10 + MARGIN, cluster)
    states: dict[str, int] = {}
    for task in tasks:
        states[task.state] = states.get(task.state, 0) + 1
    assert states == {"completed": total}, states

    counts: dict[int, int] = {}
    for line in read_lines(out):
        tag = int(line.split()[0])
        counts[tag] = counts.get(tag, 0) + 1
    assert sorted(counts) == list(range(total))
    twice = {i: n for i, n in counts.items() if n != 1}
    assert not twice, f"tasks run more than once (id: runs): {twice}"
    ran_on = {task.worker for task in tasks}

    codes: dict[str, int | None] = {}
    for w in workers:
        w.send(signal.SIGTERM)
    for w in workers:
        try:
            codes[w.name] = w.process.wait(10 + MARGIN)
        except subprocess.TimeoutExpired:
            codes[w.name] = None
    locked = [w.name for w in workers if "database is locked" in w.log().lower()]
    assert not locked, f"'database is locked' in the logs of {locked}\n{cluster.logs()}"
    assert all(code == 0 for code in codes.values()), f"{codes}\n{cluster.logs()}"
    assert len(ran_on) > 1, ran_on


# -- 7. SIGTERM hands a running task back --------------------------------------------------


def test_sigterm_requeues_running_task(engine: Engine, cluster: Cluster, tmp_path: Path) -> None:
    """SIGTERM with --shutdown-grace 1 on a worker running a long task: it exits 0 within
    the grace, kill grace and a margin; the task is waiting again at attempt 0, then
    completes on another worker at attempt 1."""
    shutdown_grace, kill_grace = 1.0, 1.0
    events = tmp_path / "events.jsonl"
    stopping = cluster.start(
        engine.url, concurrency=2, shutdown_grace=shutdown_grace, kill_grace=kill_grace
    )
    stopping.wait_registered(engine)
    task = engine.dispatch(e2e_tasks.hang_first, args=(str(events), "t", 60, 0.2))
    wait_for(lambda: bool(read_events(events)), 20, "the task to start", cluster)
    (first,) = read_events(events)
    cluster.track(pid=first["pid"], pgid=first["pgid"])
    assert task.refresh().state == "running" and task.attempt == 1, describe(task)

    code, took = stopping.terminate(shutdown_grace + kill_grace + MARGIN)
    assert code == 0, f"SIGTERM: exit status {code} after {took:.1f}s\n{stopping.log()}"
    assert took <= shutdown_grace + kill_grace + MARGIN
    assert not live_group_members(first["pgid"]), "the interrupted attempt still runs"
    task.refresh()
    assert task.state == "waiting" and task.attempt == 0, describe(task)

    other = cluster.start(engine.url, concurrency=2)
    other.wait_registered(engine)
    wait_done([task], 10 + MARGIN, cluster)
    assert task.state == "completed", describe(task)
    assert task.attempt == 1 and task.worker == other.name, describe(task)
    assert task.result["run"] == 2 and task.result["worker"] == other.name, describe(task)
    ends = [(e["run"], e["worker"]) for e in read_events(events) if e["event"] == "end"]
    assert ends == [(2, other.name)], ends
