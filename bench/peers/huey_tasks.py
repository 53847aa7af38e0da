"""Huey instance for the benchmark: RedisHuey (blocking pops), results not stored."""

import os

from huey import RedisHuey

from bench.peers.peer_tasks import noop_body, run_true_body

huey = RedisHuey(
    "bench",
    url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
    results=False,
)


@huey.task()
def noop(task_id: int, dispatched_at: float) -> None:
    noop_body(task_id, dispatched_at)


@huey.task()
def run_true(task_id: int) -> None:
    run_true_body(task_id)
