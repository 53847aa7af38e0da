"""``taskengine demo``: dispatch real tasks, run a native worker on them, show what happened.

By default everything happens in a fresh SQLite store in a temporary directory, so the demo
needs no setup and leaves nothing behind.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from taskengine import demo_tasks
from taskengine._binaries import find_worker_binary, worker_environment
from taskengine._spec import FINAL_STATES, TASK_STATES
from taskengine.command import Command
from taskengine.engine import Engine, connect
from taskengine.task import Task, TaskGroup

__all__ = ["DemoResult", "plan_tasks", "run_demo"]

_REFRESH = 0.1  # seconds between progress lines on a terminal
_PLAIN_REFRESH = 1.0  # ... and when the output is not a terminal
_STOP_GRACE = 15.0


@dataclass
class _Planned:
    """One task the demo dispatches, and the final state it should reach."""

    what: Callable[..., Any] | Command
    args: tuple[Any, ...] = ()
    expect: str = "completed"
    task: Task | None = field(default=None, repr=False)


def plan_tasks(function_tasks: int) -> list[_Planned]:
    """Return the demo's tasks: ``function_tasks`` Python functions (one of them failing on
    purpose) and ten commands (one failing on purpose)."""
    kinds: list[tuple[Callable[..., Any], Callable[[int], tuple[Any, ...]]]] = [
        (demo_tasks.count_primes, lambda i: (200_000 + 50_000 * i,)),
        (demo_tasks.sha256_of_generated_data, lambda i: (i, 2_000_000)),
        (demo_tasks.word_frequencies, lambda i: (i, 50_000, 3)),
        (demo_tasks.collatz_longest, lambda i: (10_000 + 2_000 * i,)),
        (demo_tasks.gather_squares, lambda i: (10 + i,)),
    ]
    plan: list[_Planned] = []
    for i in range(max(function_tasks - 1, 0)):
        func, make_args = kinds[i % len(kinds)]
        plan.append(_Planned(func, make_args(i)))
    if function_tasks > 0:
        plan.insert(len(plan) // 2, _Planned(demo_tasks.deliberate_failure, (42,), "failed"))
    commands = [
        Command(["sh", "-c", "echo hello from $$"]),
        Command(["sh", "-c", "echo hello from $$ on $(uname -s)"]),
        Command(["sleep", "0.2"]),
        Command(["sleep", "0.2"]),
        Command(["sh", "-c", "sleep 0.1; echo slept a little"]),
        Command(["sh", "-c", "echo to stderr >&2; echo to stdout"]),
        Command(["expr", "6", "*", "7"]),
        Command(["sh", "-c", "ls / | wc -l"]),
        Command(["sh", "-c", "echo $((1 << 20))"]),
    ]
    plan.extend(_Planned(command) for command in commands)
    plan.append(_Planned(Command(["false"]), expect="failed"))
    return plan


@dataclass
class DemoResult:
    """What the demo saw: per-task rows, totals, wall time and the verdict."""

    rows: list[dict[str, Any]]
    counts: dict[str, int]
    unexpected: list[int]
    wall_seconds: float
    worker_exit: int | None
    url: str

    @property
    def ok(self) -> bool:
        """Whether every task ended as planned and the worker stopped cleanly."""
        return not self.unexpected and self.worker_exit == 0


def _counts(tasks: list[Task]) -> Counter[str]:
    return Counter(task.state for task in tasks)


def _reload(engine: Engine, group: TaskGroup, ids: list[int]) -> list[Task]:
    """Read every demo task in one query; return them in ``ids`` order."""
    by_id = {task.id: task for task in engine.list_tasks(task_group=group, limit=len(ids) + 1)}
    return [by_id[task_id] if task_id in by_id else engine.get_task(task_id) for task_id in ids]


def _progress_line(counts: Counter[str], total: int, elapsed: float) -> str:
    parts = [f"{counts[state]} {state}" for state in TASK_STATES if counts[state]]
    done = sum(counts[state] for state in FINAL_STATES)
    return f"[{elapsed:5.1f}s] {done}/{total} done: " + ", ".join(parts)


def _trim(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _outcome(task: Task) -> str:
    error = task.error
    if error:
        return f"{error.get('type')}: {error.get('message')}"
    if task.kind == "command" and isinstance(task.result, dict):
        output = str(task.result.get("output", ""))
        return f"rc={task.result.get('returncode')} {output}"
    if task.reason and task.state != "completed":
        return task.reason
    return json.dumps(task.result)


def _name(task: Task) -> str:
    if task.kind == "function":
        return task.name.rpartition(":")[2]
    argv = task.payload.get("argv")
    return shlex.join(argv) if isinstance(argv, list) else task.name


def _row(task: Task) -> dict[str, Any]:
    duration = task.duration
    return {
        "id": task.id,
        "kind": task.kind,
        "name": _name(task),
        "state": task.state,
        "duration": None if duration is None else duration.total_seconds(),
        "outcome": _outcome(task),
    }


def _table(rows: list[dict[str, Any]], unexpected: set[int]) -> str:
    headers = ["id", "kind", "name", "state", "duration", "result or error"]
    lines = [
        [
            str(row["id"]),
            row["kind"],
            _trim(row["name"], 34),
            row["state"] + (" (!)" if row["id"] in unexpected else ""),
            "-" if row["duration"] is None else f"{row['duration']:.3f}s",
            _trim(row["outcome"], 60),
        ]
        for row in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)
    return "\n".join(line.rstrip() for line in out)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(worker: subprocess.Popen[bytes]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            return worker.wait(_STOP_GRACE)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            return -signal.SIGKILL
    return worker.returncode


def run_demo(
    url: str | None = None,
    function_tasks: int = 40,
    concurrency: int = 2,
    timeout: float = 300.0,
    keep: bool = False,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run the demo and return the process exit status (0 when everything went as planned).

    ``url`` None: a fresh SQLite store in a temporary directory (removed afterwards unless
    ``keep``). Progress goes to ``out`` on one refreshing line when it is a terminal.
    """
    stream = out if out is not None else sys.stdout
    workdir = Path(tempfile.mkdtemp(prefix="taskengine-demo-"))
    try:
        if url is None:
            url = f"sqlite:///{workdir / 'demo.db'}"
        result = _run(url, workdir, function_tasks, concurrency, timeout, as_json, stream)
    finally:
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if result.ok else 1


def _run(
    url: str,
    workdir: Path,
    function_tasks: int,
    concurrency: int,
    timeout: float,
    as_json: bool,
    out: TextIO,
) -> DemoResult:
    def say(text: str) -> None:
        if not as_json:
            print(text, file=out)

    binary = find_worker_binary()  # before anything is written
    engine: Engine = connect(url)
    engine.install()
    say(f"store: {url} ({engine.backend})")
    group = engine.create_task_group("taskengine demo")
    plan = plan_tasks(function_tasks)
    started = time.monotonic()
    for item in plan:
        item.task = engine.dispatch(item.what, args=item.args, task_group=group)
    tasks = [item.task for item in plan if item.task is not None]
    say(f"dispatched {len(tasks)} tasks; starting taskengine-worker --concurrency {concurrency}")

    log_path = workdir / "worker.log"
    env = worker_environment()
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [
                binary,
                "--url",
                url,
                "--import",
                demo_tasks.__name__,
                "--concurrency",
                str(concurrency),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    ids = [task.id for task in tasks]
    try:
        problem = _watch(engine, group, ids, worker, started, timeout, as_json, out)
    finally:
        worker_exit = _stop(worker)
    wall = time.monotonic() - started
    tasks = _reload(engine, group, ids)
    if problem:
        print(f"taskengine demo: {problem}", file=sys.stderr)
        if worker_exit != 0 or "worker" in problem:
            print(_tail(log_path), file=sys.stderr)

    unexpected = [
        item.task.id for item in plan if item.task is not None and item.task.state != item.expect
    ]
    rows = [_row(task) for task in tasks]
    counts = dict(_counts(tasks))
    result = DemoResult(rows, counts, unexpected, wall, worker_exit, url)
    if as_json:
        payload = {
            "url": url,
            "tasks": rows,
            "counts": counts,
            "unexpected": unexpected,
            "wall_seconds": round(wall, 3),
            "worker_exit": worker_exit,
            "ok": result.ok,
        }
        print(json.dumps(payload, indent=2), file=out)
        return result
    print(_table(rows, set(unexpected)), file=out)
    expected_failures = sum(1 for item in plan if item.expect == "failed")
    totals = ", ".join(f"{counts[s]} {s}" for s in TASK_STATES if s in counts)
    print(
        f"\n{len(tasks)} tasks: {totals} ({expected_failures} failures planned); "
        f"wall time {wall:.2f}s; worker exit status {worker_exit}",
        file=out,
    )
    if unexpected:
        listed = ", ".join(map(str, unexpected))
        print(f"UNEXPECTED: tasks {listed} did not end as planned (marked (!))", file=out)
    elif worker_exit != 0:
        print(f"UNEXPECTED: the worker exited with {worker_exit}\n{_tail(log_path)}", file=out)
    else:
        print("everything ended as planned", file=out)
    return result


def _watch(
    engine: Engine,
    group: TaskGroup,
    ids: list[int],
    worker: subprocess.Popen[bytes],
    started: float,
    timeout: float,
    as_json: bool,
    out: TextIO,
) -> str | None:
    """Show progress until every task is final; return what went wrong, if anything."""
    tty = out.isatty() and not as_json
    last_plain = 0.0
    last_line = ""
    problem: str | None = None
    while True:
        tasks = _reload(engine, group, ids)
        counts = _counts(tasks)
        now = time.monotonic()
        line = _progress_line(counts, len(tasks), now - started)
        finished = all(task.done for task in tasks)
        if tty:
            out.write("\r" + line.ljust(len(last_line)))
            out.flush()
            last_line = line
        elif not as_json and (finished or now - last_plain >= _PLAIN_REFRESH):
            print(line, file=out)
            last_plain = now
        if finished:
            break
        if worker.poll() is not None:
            problem = f"taskengine-worker exited early with status {worker.returncode}"
            break
        if now - started > timeout:
            problem = f"the tasks did not all finish within {timeout:g} seconds"
            break
        time.sleep(_REFRESH if tty else min(_REFRESH * 2, _PLAIN_REFRESH))
    if tty:
        out.write("\n")
        out.flush()
    return problem
