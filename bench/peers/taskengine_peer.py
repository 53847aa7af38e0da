"""taskengine through its public API (``connect``, ``dispatch``, ``dispatch_many``, ``Command``)
and the native ``taskengine-worker`` with ``--concurrency C``: one process, C long-lived Python
executors. Runs from the project's own .venv."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import taskengine

from bench.peers.base import Adapter

NOOP = "bench.peers.te_tasks:noop"
SOAK_RETENTION = 10  # seconds


class _CommitBench:
    """taskengine_commit_bench --serve (built with the benchmarks): single-row INSERTs, each
    its own transaction, into a scratch table of this store's database through the store's
    own session (same driver, settings and prepared statements as dispatch)."""

    def __init__(self, repo: Path, url: str) -> None:
        binary = os.environ.get("TASKENGINE_COMMIT_BENCH") or next(
            iter(sorted(repo.glob("build/*/bench/taskengine_commit_bench"))), None
        )
        if binary is None:
            raise RuntimeError(
                "taskengine_commit_bench is not built (TASKENGINE_BUILD_BENCH=ON, "
                "scripts/setup.sh builds it) and TASKENGINE_COMMIT_BENCH is not set"
            )
        self.proc = subprocess.Popen(
            [str(binary), "--url", url, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def time(self, commits: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{commits}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"taskengine_commit_bench exited {self.proc.wait()}")
        seconds: float = json.loads(line)["seconds"]
        return seconds

    def close(self) -> None:
        self.proc.communicate(timeout=60)  # closes stdin: the probe drops its table and ends


class _Taskengine(Adapter):
    setup_notes = "taskengine-worker --concurrency C (C Python executors), {store} store"

    def url(self) -> str:
        raise NotImplementedError

    def setup(self) -> None:
        self.engine = taskengine.connect(self.url())
        self.engine.install()
        self.group = self.engine.create_task_group("commands")

    def worker_commands(self) -> list[list[str]]:
        return [
            [
                self.ctx.bin("taskengine-worker"),
                "--url",
                self.url(),
                "--concurrency",
                str(self.ctx.concurrency),
                "--import",
                "bench.peers.te_tasks",
                "--python",
                self.ctx.python,
                "--log-level",
                "warning",
                *self.extra_worker_args,
            ]
        ]

    def soak_worker_args(self) -> list[str]:
        # A short retention period, so that the soak shows the task table kept small
        # while it runs (the default, seven days, would keep every task of the run).
        return ["--retention", str(SOAK_RETENTION), "--retention-interval", "1"]

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        self.engine.dispatch(NOOP, args=(task_id, dispatched_at))

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        self.engine.dispatch_many(NOOP, [(i, dispatched_at) for i in ids])

    def commit_probe(self) -> _CommitBench:
        return _CommitBench(self.ctx.repo, self.url())

    def dispatch_command(self, task_id: int) -> None:
        # dispatch_many takes functions only: Commands go one call each
        self.engine.dispatch(taskengine.Command(["true"]), task_group=self.group)

    def commands_done(self, ids: range, timeout: float) -> tuple[str | None, float]:
        # A command cannot write the sink: read the task states instead.
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.engine.list_tasks(task_group=self.group, limit=len(ids) + 100)
            done = [task for task in tasks if task.done]
            if len(done) == len(tasks) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        states: dict[str, int] = {}
        for task in tasks:
            states[task.state] = states.get(task.state, 0) + 1
        problem = None
        if len(tasks) != len(ids) or states.get("completed", 0) != len(ids):
            problem = f"{len(tasks)} tasks, states {states}"
        finished = [task.finished_at for task in tasks if task.finished_at is not None]
        latest = max(finished).timestamp() if finished else 0.0
        return problem, latest


class TaskengineSqlite(_Taskengine):
    name = "taskengine-sqlite"
    setup_notes = _Taskengine.setup_notes.format(store="SQLite (WAL)")

    def url(self) -> str:
        return f"sqlite://{self.path()}"

    def path(self) -> Path:
        return Path(self.ctx.work).resolve() / "taskengine.db"

    def stored_tasks(self) -> int | None:
        with contextlib.closing(sqlite3.connect(self.path())) as db:
            return int(db.execute("SELECT count(*) FROM taskengine_tasks").fetchone()[0])


class TaskenginePostgres(_Taskengine):
    name = "taskengine-postgresql"
    setup_notes = _Taskengine.setup_notes.format(store="PostgreSQL")

    def url(self) -> str:
        return self.ctx.postgres_url

    def stored_tasks(self) -> int | None:
        done = subprocess.run(
            ["psql", self.url(), "-X", "-At", "-c", "SELECT count(*) FROM taskengine_tasks"],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(done.stdout.strip())
