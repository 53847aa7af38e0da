"""taskengine's benchmark task: a plain function, imported by the worker's executors."""

from bench.harness import sink


def noop(task_id: int, dispatched_at: float) -> None:
    """Record the start in the sink and do nothing else."""
    sink.record(task_id, dispatched_at)
