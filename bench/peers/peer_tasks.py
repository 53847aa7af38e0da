"""The task bodies the peers wrap in their own decorators (taskengine runs te_tasks.noop)."""

import subprocess

from bench.harness import sink


def noop_body(task_id: int, dispatched_at: float) -> None:
    """Record the start in the sink: the whole no-op task."""
    sink.record(task_id, dispatched_at)


def run_true_body(task_id: int) -> None:
    """Run the ``true`` command (what a taskengine Command task does), then record the end."""
    subprocess.run(["true"], check=True)
    sink.record(task_id, 0.0)
