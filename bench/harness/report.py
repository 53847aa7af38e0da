"""The comparison's tables, in Markdown: figures (median, min-max) and taskengine/peer ratios."""

from __future__ import annotations

from typing import Any

from bench.harness.stats import METRICS, Metric, Summary, fmt, scaled, summarize

TASKENGINE = ("taskengine-sqlite", "taskengine-postgresql")


def summaries(
    results: dict[str, dict[str, list[dict[str, Any]]]],
) -> dict[tuple[str, str], dict[str, Summary | None]]:
    """(workload, key) -> system -> Summary of that metric over the runs."""
    table: dict[tuple[str, str], dict[str, Summary | None]] = {}
    for metric in METRICS:
        per_system = results.get(metric.workload, {})
        row: dict[str, Summary | None] = {}
        for system, runs in per_system.items():
            if metric.taskengine_only and not any(metric.key in r for r in runs):
                continue  # a peer: the harness measures this for taskengine only
            good = [scaled(metric, r[metric.key]) for r in runs if not r.get("problem")]
            row[system] = summarize(good, len(runs) - len(good))
        if row:
            table[(metric.workload, metric.key)] = row
    return table


def _cell(summary: Summary | None, runs: int) -> str:
    if summary is None:
        return "failed"
    text = fmt(summary.median)
    if summary.runs > 1:
        text += f" ({fmt(summary.low)}-{fmt(summary.high)})"
    if summary.failed:
        text += f" [{summary.failed} of {runs} runs failed]"
    return text


def figures_table(
    table: dict[tuple[str, str], dict[str, Summary | None]], systems: list[str]
) -> str:
    """One row per metric, one column per system: median (min-max)."""
    present = [s for s in systems if any(s in row for row in table.values())]
    lines = [
        "| metric | unit | " + " | ".join(present) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in present) + " |",
    ]
    for metric in METRICS:
        row = table.get((metric.workload, metric.key))
        if not row:
            continue
        cells = []
        for system in present:
            summary = row.get(system)
            total = 0 if summary is None else summary.runs + summary.failed
            cells.append(_cell(summary, total) if system in row else "—")
        better = "higher" if metric.higher_is_better else "lower"
        lines.append(
            f"| {metric.label} ({better} is better) | {metric.unit} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def ratio(metric: Metric, ours: Summary | None, theirs: Summary | None) -> str:
    """taskengine's median divided by the peer's, both from this invocation."""
    if ours is None or theirs is None or theirs.median == 0:
        return "—"
    return f"{ours.median / theirs.median:.2f}x"


def ratios_table(
    table: dict[tuple[str, str], dict[str, Summary | None]], systems: list[str]
) -> str:
    """taskengine (each store) ÷ each peer, per metric."""
    peers = [s for s in systems if s not in TASKENGINE and any(s in row for row in table.values())]
    ours = [s for s in TASKENGINE if any(s in row for row in table.values())]
    if not peers or not ours:
        return "(no peer or no taskengine figures: no ratios)"
    lines = [
        "| metric | taskengine store | " + " | ".join(peers) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in peers) + " |",
    ]
    for metric in METRICS:
        row = table.get((metric.workload, metric.key))
        if not row or metric.taskengine_only or not any(peer in row for peer in peers):
            continue  # nothing to compare with (e.g. the soak, run for taskengine only)
        for store in ours:
            cells = [ratio(metric, row.get(store), row.get(peer)) for peer in peers]
            better = ">1 better" if metric.higher_is_better else "<1 better"
            lines.append(
                f"| {metric.label} ({better}) | {store.removeprefix('taskengine-')} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines)


def resources_table(runs: list[dict[str, Any]]) -> str:
    """The claim benchmark's rows (taskengine only)."""
    lines = [
        "| store | N waiting | resources | claim(1) µs p50 / p99 / max | "
        "claim+complete tasks/s | ratio to resource-free | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        claim = run["claim_1"]
        share = run.get("ratio_to_resource_free")
        lines.append(
            f"| {run['store']} | {run['waiting_tasks']:,} | {run['resources']:,} | "
            f"{claim['p50_us']:,.0f} / {claim['p99_us']:,.0f} / {claim['max_us']:,.0f} | "
            f"{run['throughput_tasks_per_s']:,.0f} | "
            f"{'—' if share is None else f'{share * 100:.0f}%'} | {run['load_average']:.1f} |"
        )
    return "\n".join(lines)
