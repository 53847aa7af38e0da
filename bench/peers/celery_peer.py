"""Celery 5, Redis broker, prefork pool: ``celery worker -P prefork -c C``."""

from __future__ import annotations

from celery import group

from bench.peers import celery_tasks
from bench.peers.base import Adapter


class CeleryAdapter(Adapter):
    name = "celery"
    setup_notes = (
        "celery worker -P prefork -c C --without-gossip --without-mingle --without-heartbeat, "
        "Redis broker, task_ignore_result, prefetch multiplier 64; batch = group().apply_async()"
    )

    def setup(self) -> None:
        celery_tasks.app.conf.broker_url = self.ctx.redis_url

    def worker_commands(self) -> list[list[str]]:
        return [
            [
                self.ctx.bin("celery"),
                "-A",
                "bench.peers.celery_tasks",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(self.ctx.concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ]
        ]

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        celery_tasks.noop.delay(task_id, dispatched_at)

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        group(celery_tasks.noop.s(i, dispatched_at) for i in ids).apply_async()

    def dispatch_command(self, task_id: int) -> None:
        celery_tasks.run_true.delay(task_id)
