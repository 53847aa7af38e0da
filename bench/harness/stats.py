"""Figures over runs: median, min, max, and taskengine/peer ratios."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    workload: str
    key: str  # the runner's JSON field
    label: str
    unit: str
    higher_is_better: bool
    taskengine_only: bool = False  # a yardstick of taskengine's own: no peer ratio


METRICS = [
    Metric("throughput", "tasks_per_s", "no-op throughput, end to end", "tasks/s", True),
    Metric("dispatch", "single_per_s", "dispatch, one call per task", "tasks/s", True),
    Metric("dispatch", "batch_per_s", "dispatch, batches of 1,000", "tasks/s", True),
    Metric(
        "dispatch",
        "commit_per_s",
        "durable single-row commits, the store's own session",
        "commits/s",
        True,
        taskengine_only=True,
    ),
    Metric(
        "dispatch",
        "single_to_commit",
        "one-call dispatch ÷ commit rate (target ≥ 0.8)",
        "ratio",
        True,
        taskengine_only=True,
    ),
    Metric("latency", "p50_ms", "latency dispatch -> start, p50", "ms", False),
    Metric("latency", "p99_ms", "latency dispatch -> start, p99", "ms", False),
    Metric("latency", "max_ms", "latency dispatch -> start, max", "ms", False),
    Metric("commands", "tasks_per_s", "`true` command tasks", "tasks/s", True),
    Metric("footprint", "peak_rss_parent_kib", "peak RSS, worker process(es) alone", "MiB", False),
    Metric("footprint", "peak_rss_tree_kib", "peak RSS, worker tree (with pools)", "MiB", False),
    Metric("footprint", "tasks_per_s", "throughput during the footprint run", "tasks/s", True),
    Metric("soak", "tasks_per_s", "soak: throughput over the whole run", "tasks/s", True),
    Metric("soak", "rss_parent_tenth_kib", "soak: worker RSS after 10% of the tasks", "MiB", False),
    Metric("soak", "rss_parent_half_kib", "soak: worker RSS at half way", "MiB", False),
    Metric("soak", "rss_parent_end_kib", "soak: worker RSS at the end", "MiB", False),
    Metric("soak", "rss_parent_growth_second_half_kib", "soak: worker RSS growth", "MiB", False),
    Metric("soak", "peak_rss_tree_kib", "soak: peak RSS, worker tree", "MiB", False),
    Metric("soak", "stored_tasks_end", "soak: task rows in the store at the end", "rows", False),
]


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    runs: int  # successful runs
    failed: int


def summarize(values: list[float], failed: int) -> Summary | None:
    """Median, min and max of the successful runs' values (None if every run failed)."""
    if not values:
        return None
    return Summary(statistics.median(values), min(values), max(values), len(values), failed)


def scaled(metric: Metric, value: float) -> float:
    """A runner value in the metric's display unit."""
    return value / 1024.0 if metric.unit == "MiB" else value


def fmt(value: float) -> str:
    """Three significant figures at most, thousands separated; never rounded to zero."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"
