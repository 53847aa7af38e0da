"""PgQueuer 1, PostgreSQL (LISTEN/NOTIFY): C ``pgq run`` processes (one asyncio loop each)."""

from __future__ import annotations

import json
import subprocess

import psycopg
from pgqueuer.db import SyncPsycopgDriver
from pgqueuer.queries import SyncQueries

from bench.peers.base import Adapter


def _payload(task_id: int, dispatched_at: float) -> bytes:
    return json.dumps({"i": task_id, "t": dispatched_at}).encode()


class PgqueuerAdapter(Adapter):
    name = "pgqueuer"
    setup_notes = (
        "C processes of PgQueuer's supervisor as pgq run starts it (asyncpg driver, "
        "async entrypoints, default batch size); "
        "batch = Queries.enqueue with lists (one statement)"
    )

    def setup(self) -> None:
        subprocess.run(
            [self.ctx.bin("pgq"), "--pg-dsn", self.ctx.postgres_url, "install"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.connection = psycopg.connect(self.ctx.postgres_url, autocommit=True)
        self.queries = SyncQueries(SyncPsycopgDriver(self.connection))

    def teardown(self) -> None:
        self.connection.close()

    def worker_commands(self) -> list[list[str]]:
        command = [self.ctx.python, "-m", "bench.peers.pgqueuer_worker"]
        return [command for _ in range(self.ctx.concurrency)]

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        self.queries.enqueue("noop", _payload(task_id, dispatched_at))

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        self.queries.enqueue(
            ["noop"] * len(ids), [_payload(i, dispatched_at) for i in ids], [0] * len(ids)
        )

    def dispatch_command(self, task_id: int) -> None:
        self.queries.enqueue("run_true", _payload(task_id, 0.0))
