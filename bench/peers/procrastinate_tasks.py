"""Procrastinate app for the benchmark: the psycopg 3 connector, jobs in queue "bench"."""

import os

from procrastinate import App, PsycopgConnector

from bench.peers.peer_tasks import noop_body, run_true_body

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_POSTGRES_URL", "")))


@app.task(name="noop", queue="bench")
def noop(task_id: int, dispatched_at: float) -> None:
    noop_body(task_id, dispatched_at)


@app.task(name="run_true", queue="bench")
def run_true(task_id: int) -> None:
    run_true_body(task_id)
