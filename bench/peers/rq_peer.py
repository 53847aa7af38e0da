"""RQ, Redis: ``rq worker-pool -n C -w rq.SimpleWorker``: C worker processes that run jobs in
themselves. RQ's default Worker forks a work horse per job (~20 jobs/s here); SimpleWorker is
the class RQ documents for running jobs without that fork."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from bench.peers import rq_tasks
from bench.peers.base import Adapter


class RqAdapter(Adapter):
    name = "rq"
    setup_notes = (
        "rq worker-pool -n C -w rq.SimpleWorker (no fork per job), result_ttl 0; "
        "batch = Queue.enqueue_many (one Redis pipeline)"
    )

    def setup(self) -> None:
        self.redis = Redis.from_url(self.ctx.redis_url)
        self.queue = Queue("bench", connection=self.redis)

    def teardown(self) -> None:
        self.redis.close()

    def worker_commands(self) -> list[list[str]]:
        return [
            [
                self.ctx.bin("rq"),
                "worker-pool",
                "-n",
                str(self.ctx.concurrency),
                "--worker-class",
                "rq.SimpleWorker",
                "--url",
                self.ctx.redis_url,
                "--logging-level",
                "WARNING",
                "bench",
            ]
        ]

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        self.queue.enqueue(rq_tasks.noop, task_id, dispatched_at, result_ttl=0)

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        self.queue.enqueue_many(
            [Queue.prepare_data(rq_tasks.noop, (i, dispatched_at), result_ttl=0) for i in ids]
        )

    def dispatch_command(self, task_id: int) -> None:
        self.queue.enqueue(rq_tasks.run_true, task_id, result_ttl=0)
