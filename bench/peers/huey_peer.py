"""Huey 2, Redis storage: ``huey_consumer -k process -w C``."""

from __future__ import annotations

import os

from bench.peers.base import Adapter


class HueyAdapter(Adapter):
    name = "huey"
    setup_notes = (
        "huey_consumer -k process -w C, RedisHuey (blocking dequeue), results off; "
        "batch = one enqueue per task (Huey has no batch enqueue)"
    )

    def setup(self) -> None:
        os.environ["BENCH_REDIS_URL"] = self.ctx.redis_url
        from bench.peers import huey_tasks

        self.tasks = huey_tasks

    def worker_commands(self) -> list[list[str]]:
        return [
            [
                self.ctx.bin("huey_consumer"),
                "bench.peers.huey_tasks.huey",
                "-k",
                "process",
                "-w",
                str(self.ctx.concurrency),
                "-q",
            ]
        ]

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        self.tasks.noop(task_id, dispatched_at)

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        for i in ids:
            self.tasks.noop(i, dispatched_at)

    def dispatch_command(self, task_id: int) -> None:
        self.tasks.run_true(task_id)
