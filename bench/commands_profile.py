"""Where command tasks spend their time: ``python -m bench.commands_profile``.

Two ways to run N command tasks that run ``true`` on one ``taskengine-worker``:

- ``drain``: queued with no worker running, then the worker starts; tasks/s from the
  store's own timestamps (the first ``started_at`` to the last ``finished_at``), so
  single-call dispatch does not bound the figure.
- ``e2e``: as the ``commands`` workload of bench/compare.py, one ``dispatch`` call per task
  to a running, warmed-up worker; tasks/s from the first dispatch to the last
  ``finished_at``, and the dispatch loop's own rate.

Both report CPU time per task, which the load of other work on a shared machine moves less
than wall time: the dispatching client (this process, e2e only), the worker with its
children, i.e. the commands (``wait4``), and, on PostgreSQL, the server processes serving
the scratch database (``/proc/<pid>/stat`` of its backends, read before the worker stops).
Runs from the project's .venv; PostgreSQL runs need ``psql``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import taskengine

STOP_TIMEOUT = 30.0
WARM_UP = 4  # commands run before an e2e measurement, so both slots have spawned once


def psql(admin_url: str, sql: str) -> str:
    done = subprocess.run(
        ["psql", "-X", "-A", "-t", "-q", "-d", admin_url, "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def backend_pids(admin_url: str | None, database: str) -> set[str]:
    """The server processes connected to ``database`` now."""
    if admin_url is None:
        return set()
    sql = f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"
    return set(psql(admin_url, sql).split())


def backend_cpu(admin_url: str | None, database: str) -> dict[str, float]:
    """CPU seconds used so far by each server process connected to ``database``."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid in backend_pids(admin_url, database):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


@contextlib.contextmanager
def scratch_store(
    store: str, postgres_admin: str, name: str
) -> Iterator[tuple[str, str | None, str]]:
    """A store for one run, removed afterwards: its URL, the admin URL (None for SQLite) and
    the scratch database's name."""
    scratch = Path(tempfile.mkdtemp(prefix=f"te-{name}-"))
    database = f"bench_{name}_{uuid.uuid4().hex[:10]}"
    admin = None if store == "sqlite" else postgres_admin
    if admin is None:
        url = f"sqlite://{scratch / 'taskengine.db'}"
    else:
        psql(admin, f'CREATE DATABASE "{database}"')
        url = admin.rsplit("/", 1)[0] + "/" + database
    try:
        yield url, admin, database
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if admin is not None:
            psql(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def wait_exit(pid: int, timeout: float) -> resource.struct_rusage | None:
    """Reap ``pid`` once it exits, within ``timeout``; its resource usage, which includes
    the children it reaped itself (the commands). None if it still runs."""
    deadline = time.monotonic() + timeout
    while True:
        done, _, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return usage
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def wait_last(last: taskengine.Task | None, pid: int) -> None:
    """Wait for the last task dispatched (one row per poll, so the polling costs the
    server little), watching the worker."""
    assert last is not None
    while True:
        try:
            last.wait(timeout=1.0)
            return
        except TimeoutError:
            if wait_exit(pid, 0.0) is not None:
                raise RuntimeError("the worker exited before its tasks were done") from None


def wait_all(
    engine: taskengine.Engine, group: taskengine.TaskGroup, tasks: int
) -> list[taskengine.Task]:
    """All tasks of the group, once each is done (two slots may finish out of order)."""
    while True:
        listed = engine.list_tasks(task_group=group, limit=tasks + 1)
        if all(task.done for task in listed):
            return listed
        time.sleep(0.05)


def stop(pid: int) -> resource.struct_rusage:
    os.killpg(pid, signal.SIGTERM)
    usage = wait_exit(pid, STOP_TIMEOUT)
    if usage is None:
        os.killpg(pid, signal.SIGKILL)
        usage = os.wait4(pid, 0)[2]
    return usage


def measure(
    mode: str, url: str, admin_url: str | None, database: str, args: argparse.Namespace
) -> dict[str, Any]:
    tasks = args.tasks
    engine = taskengine.connect(url)
    engine.install()
    group = engine.create_task_group(f"commands-{mode}")
    command = taskengine.Command(["true"])
    last: taskengine.Task | None = None
    if mode == "drain":
        for _ in range(tasks):
            last = engine.dispatch(command, task_group=group)
    client_backends = backend_pids(admin_url, database)  # before the worker connects
    worker = [args.worker, "--url", url, "--concurrency", str(args.concurrency)]
    process = subprocess.Popen([*worker, "--log-level", "warning"], start_new_session=True)
    try:
        if mode == "e2e":
            for warm in [engine.dispatch(command) for _ in range(WARM_UP)]:
                warm.wait(timeout=120)
        load = os.getloadavg()[0]
        server_before = backend_cpu(admin_url, database)
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.time()
        if mode == "e2e":
            for _ in range(tasks):
                last = engine.dispatch(command, task_group=group)
        dispatched = time.time()
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        wait_last(last, process.pid)
        server_after = backend_cpu(admin_url, database)
        listed = wait_all(engine, group, tasks)
    finally:
        usage = stop(process.pid)
        process.returncode = 0  # reaped by stop(), not by Popen
    states: dict[str, int] = {}
    for task in listed:
        states[task.state] = states.get(task.state, 0) + 1
    finished = max(t.finished_at for t in listed if t.finished_at is not None).timestamp()
    if mode == "drain":
        started = min(t.started_at for t in listed if t.started_at is not None).timestamp()
    server = {pid: used - server_before.get(pid, 0.0) for pid, used in server_after.items()}
    server_client = sum(used for pid, used in server.items() if pid in client_backends)
    server_worker = sum(used for pid, used in server.items() if pid not in client_backends)
    client = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    return {
        "problem": None if states == {"completed": tasks} else f"states {states}",
        "tasks_per_s": tasks / (finished - started),
        "dispatch_per_s": tasks / (dispatched - started) if mode == "e2e" else None,
        "client_us": client / tasks * 1e6 if mode == "e2e" else None,
        # includes the worker's start and stop, spread over the tasks
        "worker_us": (usage.ru_utime + usage.ru_stime) / tasks * 1e6,
        # the client's connection (dispatch) and the worker's (claim, results, ...)
        "server_client_us": server_client / tasks * 1e6 if admin_url else None,
        "server_worker_us": server_worker / tasks * 1e6 if admin_url else None,
        "load_average": load,
    }


def describe(result: dict[str, Any]) -> str:
    parts = [f"tasks_per_s={result['tasks_per_s']:,.0f}"]
    if result["dispatch_per_s"] is not None:
        parts.append(f"dispatch_per_s={result['dispatch_per_s']:,.0f}")
    parts.append("CPU us/task:")
    for key, label in (("client_us", "client"), ("worker_us", "worker+commands")):
        if result[key] is not None:
            parts.append(f"{label}={result[key]:,.0f}")
    if result["server_client_us"] is not None:
        parts.append(
            f"postgresql={result['server_client_us'] + result['server_worker_us']:,.0f} "
            f"(client's connection {result['server_client_us']:,.0f}, "
            f"worker's {result['server_worker_us']:,.0f})"
        )
    return " ".join(parts)


def add_run_options(parser: argparse.ArgumentParser, tasks: int) -> None:
    """The options of a profile's runs: stores, tasks, runs, slots, PostgreSQL."""
    parser.add_argument("--stores", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--tasks", type=int, default=tasks)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--postgres-admin",
        default=os.environ.get(
            "TASKENGINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="admin URL; each run creates and drops a scratch database [TASKENGINE_TEST_POSTGRES]",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="drain,e2e", help="drain,e2e")
    add_run_options(parser, tasks=2000)
    parser.add_argument(
        "--worker",
        default=str(Path(sys.executable).parent / "taskengine-worker"),
        help="the worker binary (default: the one beside this Python)",
    )
    args = parser.parse_args(argv)
    failed = False
    for mode in args.modes.split(","):
        for store in args.stores.split(","):

            def one_run(store: str = store, mode: str = mode) -> dict[str, Any]:
                with scratch_store(store, args.postgres_admin, "commands") as scratch:
                    return measure(mode, *scratch, args)

            label = f"{mode:<5} {store:<10}"
            failed = not run_series(label, args.runs, args.tasks, one_run, describe) or failed
    return 1 if failed else 0


def run_series(
    label: str,
    runs: int,
    tasks: int,
    measure_run: Callable[[], dict[str, Any]],
    describe_result: Callable[[dict[str, Any]], str],
) -> bool:
    """Measure ``runs`` times, printing each run and the median rate; whether all were ok."""
    ok = True
    rates: list[float] = []
    for run in range(runs):
        result = measure_run()
        ok = ok and not result["problem"]
        status = "ok" if not result["problem"] else f"FAILED: {result['problem']}"
        print(
            f"  run {run + 1} {label} n={tasks} {describe_result(result)} "
            f"[load {result['load_average']:.1f}] {status}",
            flush=True,
        )
        rates.append(result["tasks_per_s"])
    print(
        f"{label.strip()}: {statistics.median(rates):,.0f} tasks/s "
        f"({min(rates):,.0f}-{max(rates):,.0f})",
        flush=True,
    )
    return ok


if __name__ == "__main__":
    sys.exit(main())
