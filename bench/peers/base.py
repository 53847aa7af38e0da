"""What every system adapter provides, and the context it runs in."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.harness.sink import SINK_ENV


@dataclass
class Context:
    """Where one measurement runs: fresh services and directories for one system and run."""

    repo: Path  # the repository root (holds the bench package)
    work: Path  # a scratch directory of this run
    sink: Path  # the sink directory the tasks write to
    concurrency: int
    redis_url: str  # a Redis database of its own (flushed before use)
    postgres_url: str  # a freshly created PostgreSQL database
    python: str = sys.executable

    def worker_env(self, **extra: str) -> dict[str, str]:
        """The environment of worker processes: the bench package importable, the sink named."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.repo), *filter(None, [env.get("PYTHONPATH")])]
        )
        env[SINK_ENV] = str(self.sink)
        env["BENCH_REDIS_URL"] = self.redis_url
        env["BENCH_POSTGRES_URL"] = self.postgres_url
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    def bin(self, name: str) -> str:
        """A console script of the running venv."""
        return str(Path(self.python).parent / name)


class CommitProbe(Protocol):
    def time(self, commits: int) -> float:
        """Seconds that ``commits`` single-row commits took."""

    def close(self) -> None: ...


class Adapter:
    """One system: how to set it up, dispatch to it and run its workers.

    Tasks are ``noop(i, dispatched_at)`` (records start - dispatched_at in the sink) and
    ``run_true(i)`` (runs the ``true`` command, then records its end time). Subclasses
    implement the methods that raise here.
    """

    name = ""
    setup_notes = ""  # how the workers are run, for the report

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.warmups = 0  # warm-up records already in the sink (set by the runner)
        self.extra_worker_args: list[str] = []  # added to each worker command (the soak's)

    def setup(self) -> None:
        """Create the schema or flush the queue; called before workers start."""

    def teardown(self) -> None:
        """Close connections; the harness drops the database and flushes Redis."""

    def worker_commands(self) -> list[list[str]]:
        raise NotImplementedError

    def worker_env(self) -> dict[str, str]:
        return self.ctx.worker_env()

    def dispatch(self, task_id: int, dispatched_at: float) -> None:
        """Queue one no-op task."""
        raise NotImplementedError

    def dispatch_batch(self, ids: range, dispatched_at: float) -> None:
        """Queue one no-op task per id, as few calls as the system allows."""
        raise NotImplementedError

    def commit_probe(self) -> CommitProbe | None:
        """Times durable single-row commits on the system's own store, the yardstick of
        one-call dispatch; None where the harness does not measure it."""
        return None

    def dispatch_command(self, task_id: int) -> None:
        """Queue one task that runs the ``true`` command."""
        raise NotImplementedError

    def soak_worker_args(self) -> list[str]:
        """Worker arguments for the soak (bench/harness/soak.py); none by default."""
        return []

    def stored_tasks(self) -> int | None:
        """How many task rows the store holds now, where the adapter can tell."""
        return None

    def commands_done(self, ids: range, timeout: float) -> tuple[str | None, float]:
        """Wait for the command tasks; return (what is wrong or None, last finish time).

        The default reads the sink, where ``run_true`` records its end.
        """
        from bench.harness.runwait import wait_sink

        return wait_sink(self.ctx.sink, ids, timeout, warmups=self.warmups)
