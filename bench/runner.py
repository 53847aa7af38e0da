"""One measurement of one system: ``python -m bench.runner --system S --workload W ...``.

Runs in the system's own environment (the project's .venv for taskengine, the peers' venv for
the others), starts the system's workers, measures, checks in the sink that every task ran
exactly once, stops the workers and prints one JSON object on its last line. compare.py drives
it; it can also be run by hand to look at one system.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.harness import soak
from bench.harness.procs import Workers
from bench.harness.runwait import SinkWatcher, task_records, wait_sink
from bench.harness.sink import verify
from bench.peers import ADAPTERS
from bench.peers.base import Adapter, Context

CHUNK = 1_000  # tasks per batched dispatch call
COMMIT_ROUND = 25  # single dispatch calls between two rounds of timed commits
DISPATCH_WARMUP = 10  # untimed single dispatch calls first
STARTUP_TIMEOUT = 120.0  # workers importing, pools forking, on a loaded machine


def warm_up(adapter: Adapter, workers: Workers) -> None:
    """Run 2 x C tasks (negative ids) so every pool process is up before timing starts."""
    count = 2 * adapter.ctx.concurrency
    watcher = SinkWatcher(adapter.ctx.sink)
    for i in range(1, count + 1):
        adapter.dispatch(-i, 0.0)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while watcher.poll() < count:
        workers.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"warm-up tasks did not run within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.05)
    adapter.warmups = count


def start_workers(adapter: Adapter) -> Workers:
    return Workers(adapter.worker_commands(), adapter.worker_env(), adapter.ctx.work / "worker.log")


def task_timeout(size: int) -> float:
    # generous (20 tasks/s): a slow peer on a loaded machine must finish, not be cut off
    return 120.0 + size / 20.0


def throughput(adapter: Adapter, size: int) -> dict[str, Any]:
    """``size`` no-op tasks dispatched in batches to idle workers; tasks/s to the last start."""
    workers = start_workers(adapter)
    try:
        warm_up(adapter, workers)
        workers.start_sampling()
        started = time.time()
        for first in range(0, size, CHUNK):
            adapter.dispatch_batch(range(first, min(size, first + CHUNK)), 0.0)
        dispatched = time.time()
        problem, last_start = wait_sink(
            adapter.ctx.sink, range(size), task_timeout(size), adapter.warmups
        )
        workers.sample()
    finally:
        workers.stop()
    elapsed = last_start - started
    return {
        "problem": problem,
        "tasks_per_s": size / elapsed if elapsed > 0 else 0.0,
        "seconds": elapsed,
        "dispatch_seconds": dispatched - started,
        "peak_rss_parent_kib": workers.peak_parent_kib,
        "peak_rss_tree_kib": workers.peak_tree_kib,
    }


def dispatch(adapter: Adapter, size: int) -> dict[str, Any]:
    """Dispatch rate with no worker running: ``size // 10`` single calls, ``size`` batched,
    after ``DISPATCH_WARMUP`` untimed single calls.

    Where the system reports its store's durable commit rate (taskengine), the single calls
    go in rounds of ``COMMIT_ROUND``, each after as many commits timed on the same database,
    so that both figures see the same moments of a shared machine. The workers start
    afterwards, untimed, only to check that every task runs.
    """
    single = max(1, size // 10)
    # Untimed first calls (negative ids, run by the workers too): a system's first dispatch
    # may import, connect or prepare what every later one reuses.
    for i in range(1, DISPATCH_WARMUP + 1):
        adapter.dispatch(-i, 0.0)
    probe = adapter.commit_probe()
    single_seconds = commit_seconds = 0.0
    commits = 0
    try:
        for first in range(0, single, COMMIT_ROUND):
            last = min(single, first + COMMIT_ROUND)
            if probe is not None:
                commit_seconds += probe.time(last - first)
                commits += last - first
            started = time.perf_counter()
            for i in range(first, last):
                adapter.dispatch(i, 0.0)
            single_seconds += time.perf_counter() - started
    finally:
        if probe is not None:
            probe.close()
    started = time.perf_counter()
    for first in range(single, single + size, CHUNK):
        adapter.dispatch_batch(range(first, min(single + size, first + CHUNK)), 0.0)
    batch_seconds = time.perf_counter() - started
    workers = start_workers(adapter)
    try:
        problem, _ = wait_sink(
            adapter.ctx.sink, range(single + size), task_timeout(size), DISPATCH_WARMUP
        )
    finally:
        workers.stop()
    result: dict[str, Any] = {
        "problem": problem,
        "single_per_s": single / single_seconds,
        "batch_per_s": size / batch_seconds,
        "single_tasks": single,
        "batch_tasks": size,
    }
    if commits:
        commit_per_s = commits / commit_seconds
        result["commit_per_s"] = commit_per_s
        result["single_to_commit"] = result["single_per_s"] / commit_per_s
    return result


def latency(adapter: Adapter, size: int) -> dict[str, Any]:
    """``size`` tasks one at a time on idle workers; each records start - dispatch."""
    workers = start_workers(adapter)
    try:
        warm_up(adapter, workers)
        watcher = SinkWatcher(adapter.ctx.sink)
        watcher.poll()
        for i in range(size):
            dispatched_at = time.time()
            adapter.dispatch(i, dispatched_at)
            deadline = time.monotonic() + 30.0
            while watcher.poll() < adapter.warmups + i + 1:
                if time.monotonic() > deadline:
                    workers.check_alive()
                    raise RuntimeError(f"latency task {i} did not start within 30 s")
                time.sleep(0.0005)
            time.sleep(0.005)  # let the worker go idle again
    finally:
        workers.stop()
    records = task_records(adapter.ctx.sink)
    values = sorted(value * 1000.0 for _, value in records)
    return {
        "problem": verify(records, range(size)),
        "p50_ms": statistics.median(values) if values else 0.0,
        "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0.0,
        "max_ms": values[-1] if values else 0.0,
    }


def commands(adapter: Adapter, size: int) -> dict[str, Any]:
    """``size`` tasks that run ``true``, dispatched one call each to idle workers."""
    workers = start_workers(adapter)
    try:
        warm_up(adapter, workers)
        started = time.time()
        for i in range(size):
            adapter.dispatch_command(i)
        dispatched = time.time()
        problem, last_end = adapter.commands_done(range(size), task_timeout(size * 5))
    finally:
        workers.stop()
    elapsed = last_end - started
    return {
        "problem": problem,
        "tasks_per_s": size / elapsed if elapsed > 0 else 0.0,
        # the dispatch loop's own rate, which bounds tasks_per_s
        "dispatch_per_s": size / (dispatched - started) if dispatched > started else 0.0,
    }


def soak_workload(adapter: Adapter, size: int) -> dict[str, Any]:
    """``size`` no-op tasks streamed through one worker; its memory over the run."""
    adapter.extra_worker_args = adapter.soak_worker_args()
    workers = start_workers(adapter)
    try:
        warm_up(adapter, workers)
        return soak.soak(adapter, size, workers, task_timeout(size))
    finally:
        workers.stop()


WORKLOADS = {
    "throughput": throughput,
    "dispatch": dispatch,
    "latency": latency,
    "commands": commands,
    "footprint": throughput,  # the same run, larger; compare.py reports its memory figures
    "soak": soak_workload,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=sorted(ADAPTERS))
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--work", type=Path, required=True, help="scratch directory (exists)")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--postgres-url", required=True)
    args = parser.parse_args(argv)

    sink_dir = args.work / "sink"
    sink_dir.mkdir()
    ctx = Context(
        repo=Path(__file__).resolve().parent.parent,
        work=args.work,
        sink=sink_dir,
        concurrency=args.concurrency,
        redis_url=args.redis_url,
        postgres_url=args.postgres_url,
    )
    module_name, class_name = ADAPTERS[args.system]
    result: dict[str, Any] = {"system": args.system, "workload": args.workload, "size": args.size}
    try:
        adapter: Adapter = getattr(importlib.import_module(module_name), class_name)(ctx)
        result["setup"] = adapter.setup_notes
        adapter.setup()
        try:
            result.update(WORKLOADS[args.workload](adapter, args.size))
        finally:
            adapter.teardown()
    except Exception as exc:  # reported to compare.py, which marks the system failed
        traceback.print_exc()
        result["problem"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
