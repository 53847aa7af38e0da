"""Procrastinate 3, PostgreSQL (LISTEN/NOTIFY): C worker processes, each
``procrastinate worker --concurrency 1``, finished jobs deleted."""

from __future__ import annotations

import os

from bench.peers.base import Adapter


class ProcrastinateAdapter(Adapter):
    name = "procrastinate"
    setup_notes = (
        "C processes of procrastinate worker --concurrency 1 --delete-jobs successful "
        "(LISTEN/NOTIFY), psycopg 3 connector; batch = Task.batch_defer"
    )

    def setup(self) -> None:
        os.environ["BENCH_POSTGRES_URL"] = self.ctx.postgres_url
        from bench.peers import procrastinate_tasks

        self.tasks = procrastinate_tasks
        self.app = procrastinate_tasks.app
        self.app.open()  # deferring from sync code through the psycopg connector
        self.app.schema_manager.apply_schema()
        self.noop = procrastinate_tasks.noop
        self.run_true = procrastinate_tasks.run_true

    def teardown(self) -> None:
        self.app.close()

    def worker_commands(self) -> list[list[str]]:
        command = [
            self.ctx.bin("procrastinate"),
            "--app=bench.peers.procrastinate_tasks.app",
            "--log-level",
            "warning",
            "worker",
            "--queues",
            "bench",
            "--concurrency",
            "1",
            "--delete-jobs",
            "successful",
        ]
        return [command for _ in range(self.ctx.concurrency)]

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        self.noop.defer(task_id=task_id, dispatched_at=dispatched_at)

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        self.noop.batch_defer(*({"task_id": i, "dispatched_at": dispatched_at} for i in ids))

    def dispatch_command(self, task_id: int) -> None:
        self.run_true.defer(task_id=task_id)
