"""What keeping several requests in flight per Python executor would save:
``python -m bench.executor_pipelining``.

Starts one real executor (``python -m taskengine._executor --import bench.peers.te_tasks``)
and feeds it N no-op requests over its pipes, keeping D of them written ahead of the
responses read (D = 1 is what a worker slot does today: one request, wait for its response).
Reports, per depth, the executor's CPU per task (``/proc/<pid>/stat``), this driver's (it
plays the slot thread: one write and one read per task at D = 1, fewer reads when responses
come several at a time) and tasks/s. No worker and no store: the executor and its pipes alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import sink
from bench.noop_profile import REPO, process_cpu

NOOP = "bench.peers.te_tasks:noop"


def request_line(task_id: int) -> bytes:
    request = {"id": task_id, "attempt": 1, "function": NOOP, "args": [task_id, 0.0], "kwargs": {}}
    return json.dumps(request, separators=(",", ":")).encode() + b"\n"


def run(python: str, depth: int, tasks: int) -> dict[str, float]:
    sink_dir = Path(tempfile.mkdtemp(prefix="te-pipelining-"))
    env = {**os.environ, sink.SINK_ENV: str(sink_dir), "PYTHONPATH": str(REPO)}
    command = [python, "-m", "taskengine._executor", "--import", "bench.peers.te_tasks"]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=sink_dir
    )
    assert process.stdin is not None and process.stdout is not None
    requests, responses = process.stdin.fileno(), process.stdout.fileno()
    lines = [request_line(i) for i in range(tasks)]
    try:
        assert b'"ready":true' in os.read(responses, 65536)
        os.write(requests, request_line(-1))  # one task first: the working directory exists
        assert os.read(responses, 65536).count(b"\n") == 1
        before = process_cpu([process.pid])[process.pid]
        driver_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        sent = answered = 0
        while sent < min(depth, tasks):
            os.write(requests, lines[sent])
            sent += 1
        while answered < tasks:
            answered += os.read(responses, 65536).count(b"\n")
            while sent < tasks and sent - answered < depth:
                os.write(requests, lines[sent])
                sent += 1
        elapsed = time.perf_counter() - started
        driver_after = resource.getrusage(resource.RUSAGE_SELF)
        after = process_cpu([process.pid])[process.pid]
    finally:
        process.stdin.close()
        process.wait(30)
        process.stdout.close()
        shutil.rmtree(sink_dir, ignore_errors=True)
    driver = (driver_after.ru_utime + driver_after.ru_stime) - (
        driver_before.ru_utime + driver_before.ru_stime
    )
    return {
        "tasks_per_s": tasks / elapsed,
        "executor_us": (after - before) / tasks * 1e6,
        "driver_us": driver / tasks * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="1,2,4", help="requests in flight, comma-separated")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="a venv's Python with taskengine")
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    results: dict[int, list[dict[str, float]]] = {d: [] for d in depths}
    for number in range(args.runs):
        for depth in depths:  # interleaved: load from elsewhere spreads over all depths
            result = run(args.python, depth, args.tasks)
            results[depth].append(result)
            print(
                f"  run {number + 1} depth={depth} n={args.tasks} "
                f"tasks_per_s={result['tasks_per_s']:,.0f} CPU us/task: "
                f"executor={result['executor_us']:.1f} driver={result['driver_us']:.1f} "
                f"[load {os.getloadavg()[0]:.1f}]",
                flush=True,
            )
    for depth, runs in results.items():
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"depth {depth}: {medians['tasks_per_s']:,.0f} tasks/s, executor "
            f"{medians['executor_us']:.1f} us/task, driver {medians['driver_us']:.1f} us/task"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
