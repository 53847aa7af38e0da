"""RQ job functions for the benchmark (RQ runs plain functions by import path)."""

from bench.peers.peer_tasks import noop_body, run_true_body


def noop(task_id: int, dispatched_at: float) -> None:
    noop_body(task_id, dispatched_at)


def run_true(task_id: int) -> None:
    run_true_body(task_id)
