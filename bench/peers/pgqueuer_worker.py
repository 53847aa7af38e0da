"""Runs PgQueuer's supervisor the way ``pgq run bench.peers.pgqueuer_tasks:main`` does.

PgQueuer 1.6.0's ``pgq run`` fails at start with the typer release it installs beside it
(``--log-level`` reaches ``setup_fancy_logger`` as a str), so this calls the same supervisor
with the CLI's defaults.
"""

import asyncio
import logging
from datetime import timedelta

from pgqueuer.adapters.cli import supervisor
from pgqueuer.domain import types

from bench.peers.pgqueuer_tasks import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(
        supervisor.run(
            main,
            dequeue_timeout=timedelta(seconds=30.0),
            batch_size=10,
            restart_delay=timedelta(seconds=5.0),
            restart_on_failure=False,
            mode=types.QueueExecutionMode.continuous,
            max_concurrent_tasks=None,
            shutdown_on_listener_failure=False,
            heartbeat_timeout=timedelta(seconds=30.0),
        )
    )
