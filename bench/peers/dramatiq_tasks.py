"""Dramatiq actors for the benchmark on the Redis broker."""

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peers.peer_tasks import noop_body, run_true_body

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def noop(task_id: int, dispatched_at: float) -> None:
    noop_body(task_id, dispatched_at)


@dramatiq.actor(max_retries=0)
def run_true(task_id: int) -> None:
    run_true_body(task_id)
