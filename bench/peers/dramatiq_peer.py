"""Dramatiq 2, Redis broker: ``dramatiq --processes C --threads 1``."""

from __future__ import annotations

import os

from bench.peers.base import Adapter


class DramatiqAdapter(Adapter):
    name = "dramatiq"
    setup_notes = (
        "dramatiq --processes C --threads 1, Redis broker, max_retries 0; "
        "batch = group().run() (one enqueue per message: Dramatiq has no batch enqueue)"
    )

    def setup(self) -> None:
        os.environ["BENCH_REDIS_URL"] = self.ctx.redis_url
        from bench.peers import dramatiq_tasks

        self.tasks = dramatiq_tasks

    def worker_commands(self) -> list[list[str]]:
        return [
            [
                self.ctx.bin("dramatiq"),
                "bench.peers.dramatiq_tasks",
                "--processes",
                str(self.ctx.concurrency),
                "--threads",
                "1",
            ]
        ]

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        self.tasks.noop.send(task_id, dispatched_at)

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        import dramatiq

        dramatiq.group(self.tasks.noop.message(i, dispatched_at) for i in ids).run()

    def dispatch_command(self, task_id: int) -> None:
        self.tasks.run_true.send(task_id)
