"""PNG charts of the comparison (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from bench.harness.stats import Summary

Table = dict[tuple[str, str], dict[str, Summary | None]]


def _colors(systems: list[str]) -> list[str]:
    return ["tab:blue" if s.startswith("taskengine") else "tab:gray" for s in systems]


def throughput_chart(table: Table, path: Path, title: str) -> bool:
    """Bar chart of no-op throughput (median, min-max whiskers); False if no figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row = {s: v for s, v in table.get(("throughput", "tasks_per_s"), {}).items() if v}
    if not row:
        return False
    systems = list(row)
    medians = [row[s].median for s in systems]
    low = [row[s].median - row[s].low for s in systems]
    high = [row[s].high - row[s].median for s in systems]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar(systems, medians, yerr=[low, high], capsize=4, color=_colors(systems))
    for index, value in enumerate(medians):
        ax.annotate(
            f"{value:,.0f}",
            (index, value),
            ha="center",
            va="bottom",
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_ylabel("tasks/s (median, min-max)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def latency_chart(table: Table, path: Path, title: str) -> bool:
    """Grouped bars of latency p50 and p99 per system (log scale); False if no figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p50 = {s: v for s, v in table.get(("latency", "p50_ms"), {}).items() if v}
    p99 = {s: v for s, v in table.get(("latency", "p99_ms"), {}).items() if v}
    systems = [s for s in p50 if s in p99]
    if not systems:
        return False
    width = 0.38
    xs = range(len(systems))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.bar([x - width / 2 for x in xs], [p50[s].median for s in systems], width, label="p50")
    ax.bar([x + width / 2 for x in xs], [p99[s].median for s in systems], width, label="p99")
    ax.set_xticks(list(xs), systems, rotation=30)
    ax.set_yscale("log")
    ax.set_ylabel("ms, dispatch → start (median of runs; log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
