"""Where no-op Python function tasks spend CPU: ``python -m bench.noop_profile``.

One ``taskengine-worker --concurrency C`` with its Python executors, warmed up, then N no-op
tasks (the benchmark's own ``bench.peers.te_tasks:noop``) dispatched in batches of 1,000, as
the ``throughput`` workload of bench/compare.py does. Reports tasks/s (the first dispatch to
the last task's start, from the sink) and CPU time per task split by process, read from
``/proc/<pid>/stat`` just before the first dispatch and once every result is stored: the
dispatching client (this process, while it dispatches), the native worker, its executors,
and on PostgreSQL the server processes serving the scratch database (the client's connection
and the worker's). CPU time moves less than wall time with the load of other work on a
shared machine. Runs from the project's .venv (``--python`` takes another venv's); PostgreSQL
runs need ``psql``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import taskengine

from bench.commands_profile import (
    add_run_options,
    backend_cpu,
    backend_pids,
    psql,
    run_series,
    scratch_store,
    stop,
)
from bench.harness import sink
from bench.harness.procs import tree

NOOP = "bench.peers.te_tasks:noop"
BATCH = 1000
SETTLE = 0.5  # seconds after the last start: the last results are stored meanwhile
REPO = Path(__file__).resolve().parent.parent


def process_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system, all threads) used so far by each process of ``pids``."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def completed(url: str, admin_url: str | None) -> int:
    sql = "SELECT count(*) FROM taskengine_tasks WHERE state = 'completed'"
    if admin_url is None:
        with sqlite3.connect(url.removeprefix("sqlite://")) as db:
            return int(db.execute(sql).fetchone()[0])
    return int(psql(url, sql).strip())


def wait_started(directory: Path, count: int, pid: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while sink.count(directory) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sink.count(directory)} of {count} tasks started")
        if os.waitpid(pid, os.WNOHANG)[0]:
            raise RuntimeError("the worker exited before its tasks were done")
        time.sleep(0.05)


def measure(
    url: str, admin_url: str | None, database: str, args: argparse.Namespace
) -> dict[str, Any]:
    engine = taskengine.connect(url)
    engine.install()
    sink_dir = Path(tempfile.mkdtemp(prefix="te-noop-sink-"))
    env = {**os.environ, sink.SINK_ENV: str(sink_dir), "PYTHONPATH": str(REPO)}
    worker = [args.worker, "--url", url, "--concurrency", str(args.concurrency)]
    worker += ["--import", "bench.peers.te_tasks", "--python", args.python]
    client_backends = backend_pids(admin_url, database)
    process = subprocess.Popen([*worker, "--log-level", "warning"], env=env, start_new_session=True)
    tasks = args.tasks
    try:
        warm = 2 * args.concurrency
        engine.dispatch_many(NOOP, [(-1 - i, 0.0) for i in range(warm)])
        wait_started(sink_dir, warm, process.pid)
        time.sleep(SETTLE)
        load = os.getloadavg()[0]
        pids = tree(process.pid)
        executors = [pid for pid in pids if pid != process.pid]
        server_before = backend_cpu(admin_url, database)
        before = process_cpu(pids)
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.time()
        for first in range(0, tasks, BATCH):
            ids = range(first, min(first + BATCH, tasks))
            engine.dispatch_many(NOOP, [(i, 0.0) for i in ids])
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        wait_started(sink_dir, warm + tasks, process.pid)
        time.sleep(SETTLE)
        after = process_cpu(pids)
        server_after = backend_cpu(admin_url, database)
        done = completed(url, admin_url)
    finally:
        stop(process.pid)
        process.returncode = 0  # reaped by stop(), not by Popen
    records = [(i, at) for i, at in sink.read(sink_dir) if i >= 0]
    shutil.rmtree(sink_dir, ignore_errors=True)
    problem = sink.verify(records, range(tasks))
    if problem is None and done != warm + tasks:
        problem = f"{done} completed of {warm + tasks}"
    used = {pid: after.get(pid, 0.0) - before.get(pid, 0.0) for pid in pids}
    server = {pid: cpu - server_before.get(pid, 0.0) for pid, cpu in server_after.items()}
    client = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    per_task = 1e6 / tasks
    return {
        "problem": problem,
        "tasks_per_s": tasks / (max(at for _, at in records) - started),
        "client_us": client * per_task,
        "worker_us": used.get(process.pid, 0.0) * per_task,
        "executors_us": sum(used[pid] for pid in executors) * per_task,
        "pg_client_us": sum(c for p, c in server.items() if p in client_backends) * per_task,
        "pg_worker_us": sum(c for p, c in server.items() if p not in client_backends) * per_task,
        "postgresql": admin_url is not None,
        "load_average": load,
    }


def describe(result: dict[str, Any]) -> str:
    parts = [f"tasks_per_s={result['tasks_per_s']:,.0f} CPU us/task:"]
    for key in ("client", "worker", "executors"):
        parts.append(f"{key}={result[key + '_us']:.1f}")
    if result["postgresql"]:
        parts.append(
            f"postgresql={result['pg_client_us'] + result['pg_worker_us']:.1f} "
            f"(client's {result['pg_client_us']:.1f}, worker's {result['pg_worker_us']:.1f})"
        )
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser, tasks=20000)
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python of the executors, a venv's with taskengine (default: this one)",
    )
    parser.add_argument("--worker", default="", help="the worker binary (default: --python's)")
    args = parser.parse_args(argv)
    args.worker = args.worker or str(Path(args.python).parent / "taskengine-worker")
    failed = False
    for store in args.stores.split(","):

        def one_run(store: str = store) -> dict[str, Any]:
            with scratch_store(store, args.postgres_admin, "noop") as scratch:
                return measure(*scratch, args)

        failed = not run_series(f"{store:<10}", args.runs, args.tasks, one_run, describe) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
