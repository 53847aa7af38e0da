"""Celery app for the benchmark: Redis broker, results ignored, large prefetch.

Celery's optimizing guide: ignore results you do not use, raise the prefetch multiplier for
many short tasks, and skip gossip/mingle/heartbeat events on a worker that needs none.
"""

import os

from celery import Celery

from bench.peers.peer_tasks import noop_body, run_true_body

app = Celery("bench", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=64,
    task_acks_late=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(task_id: int, dispatched_at: float) -> None:
    noop_body(task_id, dispatched_at)


@app.task(name="run_true")
def run_true(task_id: int) -> None:
    run_true_body(task_id)
