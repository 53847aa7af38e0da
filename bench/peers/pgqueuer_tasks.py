"""PgQueuer factory for ``pgq run``: asyncpg driver, one entrypoint per task kind."""

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

from bench.peers.peer_tasks import noop_body, run_true_body


@asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    """The PgQueuer instance with the benchmark's entrypoints, as pgq 1.6 wants a factory."""
    connection = await asyncpg.connect(os.environ["BENCH_POSTGRES_URL"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        payload = json.loads(job.payload or b"{}")
        noop_body(payload["i"], payload["t"])

    @pgq.entrypoint("run_true")
    async def run_true(job: Job) -> None:
        payload = json.loads(job.payload or b"{}")
        run_true_body(payload["i"])

    try:
        yield pgq
    finally:
        await connection.close()
