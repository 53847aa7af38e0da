"""The peer benchmark's own pieces (bench/): the sink that proves every task ran, the worker
process handling, the figures, and taskengine's adapter driven end to end on both stores with
a real worker. The peers themselves are exercised by ``bench/run.sh --quick`` in scripts/test.sh.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import runner  # noqa: E402
from bench.harness import sink  # noqa: E402
from bench.harness.procs import Workers, tree  # noqa: E402
from bench.harness.report import ratio, summaries  # noqa: E402
from bench.harness.runwait import SinkWatcher, wait_sink  # noqa: E402
from bench.harness.stats import METRICS, summarize  # noqa: E402
from bench.peers.base import Context  # noqa: E402
from bench.peers.taskengine_peer import TaskenginePostgres, TaskengineSqlite  # noqa: E402


def _record_in_child(directory: Path, ids: list[int]) -> None:
    code = (
        "import sys; from bench.harness import sink\n"
        "for i in sys.argv[1:]: sink.record(int(i), 0.0)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), **{sink.SINK_ENV: str(directory)})
    subprocess.run([sys.executable, "-c", code, *map(str, ids)], env=env, check=True)


def test_sink_collects_records_from_several_processes(tmp_path: Path) -> None:
    _record_in_child(tmp_path, [0, 1, 2])
    _record_in_child(tmp_path, [3, 4])
    records = sink.read(tmp_path)
    assert len(list(tmp_path.glob("*.log"))) == 2
    assert sorted(i for i, _ in records) == [0, 1, 2, 3, 4]
    assert all(value > 1e9 for _, value in records)  # absolute time.time() with t0 = 0
    assert sink.verify(records, range(5)) is None


def test_sink_verify_names_missing_unexpected_and_duplicate_tasks() -> None:
    records = [(0, 1.0), (1, 1.0), (1, 1.0), (7, 1.0)]
    assert sink.verify(records, range(3)) == "1 missing, 1 unexpected, 1 duplicate of 3"


def test_sink_watcher_counts_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    path.write_bytes(b"0 1.0\n1 1.")
    watcher = SinkWatcher(tmp_path)
    assert watcher.poll() == 1
    with open(path, "ab") as handle:
        handle.write(b"0\n2 1.0\n")
    assert watcher.poll() == 3


def test_wait_sink_reports_tasks_that_never_ran(tmp_path: Path) -> None:
    _record_in_child(tmp_path, [0, 1])
    problem, latest = wait_sink(tmp_path, range(3), timeout=0.2)
    assert problem == "1 missing, 0 unexpected, 0 duplicate of 3"
    assert latest > 1e9


def test_workers_sample_the_tree_and_stop_the_whole_group(tmp_path: Path) -> None:
    script = "sleep 60 & sleep 60 & wait"
    workers = Workers([["sh", "-c", script]], dict(os.environ), tmp_path / "w.log")
    deadline = time.monotonic() + 10
    while len(tree(workers.procs[0].pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = tree(workers.procs[0].pid)
    assert len(pids) == 3
    started = {pid: _start_time(pid) for pid in pids}
    workers.sample()
    assert 0 < workers.peak_parent_kib < workers.peak_tree_kib
    workers.stop(grace=5)
    # The children, not only the shell, are gone (a pid may have been reused since: compare
    # start times). Signals are asynchronous: give the kernel a moment to finish them.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _start_time(pid) == started[pid]]
        if not alive:
            break
        time.sleep(0.01)
    assert alive == []


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), None if gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def test_summaries_and_ratios() -> None:
    summary = summarize([3.0, 1.0, 2.0], failed=1)
    assert summary is not None
    assert (summary.median, summary.low, summary.high, summary.runs) == (2.0, 1.0, 3.0, 3)
    assert summarize([], failed=2) is None
    peer = summarize([4.0], failed=0)
    assert ratio(METRICS[0], summary, peer) == "0.50x"
    assert ratio(METRICS[0], summary, None) == "—"


@pytest.fixture
def adapter(store_url: str, tmp_path: Path) -> TaskengineSqlite | TaskenginePostgres:
    sink_dir = tmp_path / "sink"
    sink_dir.mkdir()
    ctx = Context(
        repo=REPO,
        work=tmp_path,
        sink=sink_dir,
        concurrency=2,
        redis_url="redis://unused",
        postgres_url=store_url,
    )
    chosen = TaskengineSqlite(ctx) if store_url.startswith("sqlite") else TaskenginePostgres(ctx)
    chosen.setup()
    return chosen


def _fresh_sink(adapter: TaskengineSqlite | TaskenginePostgres, name: str) -> None:
    """Each workload gets a sink of its own, as compare.py gives each a runner process."""
    adapter.ctx.sink = adapter.ctx.work / name
    adapter.ctx.sink.mkdir()
    adapter.warmups = 0


def test_taskengine_workloads_run_and_verify_every_task(
    adapter: TaskengineSqlite | TaskenginePostgres,
) -> None:
    result = runner.throughput(adapter, 60)
    assert result["problem"] is None
    assert result["tasks_per_s"] > 0
    assert 0 < result["peak_rss_parent_kib"] < result["peak_rss_tree_kib"]

    _fresh_sink(adapter, "latency")
    result = runner.latency(adapter, 5)
    assert result["problem"] is None
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]

    _fresh_sink(adapter, "commands")
    result = runner.commands(adapter, 5)
    assert result["problem"] is None
    assert result["tasks_per_s"] > 0


def test_taskengine_dispatch_workload_counts_single_and_batched(
    adapter: TaskengineSqlite | TaskenginePostgres,
) -> None:
    result = runner.dispatch(adapter, 30)
    assert result["problem"] is None
    assert (result["single_tasks"], result["batch_tasks"]) == (3, 30)
    # the store's commit rate, timed on the same database, and the ratio to it
    assert result["commit_per_s"] > 0
    assert result["single_to_commit"] == pytest.approx(
        result["single_per_s"] / result["commit_per_s"]
    )
    completed = adapter.engine.list_tasks(state="completed", limit=100)
    assert len(completed) == 33 + runner.DISPATCH_WARMUP


def test_commit_rows_are_left_out_for_peers() -> None:
    results = {
        "dispatch": {
            "taskengine-sqlite": [
                {"single_per_s": 10.0, "batch_per_s": 20.0, "commit_per_s": 40.0}
            ],
            "celery": [{"single_per_s": 5.0, "batch_per_s": 5.0}],
        }
    }
    table = summaries(results)
    assert set(table[("dispatch", "commit_per_s")]) == {"taskengine-sqlite"}
    assert set(table[("dispatch", "single_per_s")]) == {"taskengine-sqlite", "celery"}


def test_taskengine_soak_samples_memory_and_counts_stored_tasks(
    adapter: TaskengineSqlite | TaskenginePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.harness import soak
    from bench.peers import taskengine_peer

    monkeypatch.setattr(soak, "BACKLOG", 500)  # several rounds of dispatch while it runs
    monkeypatch.setattr(soak, "SAMPLE_EVERY", 0.01)
    monkeypatch.setattr(taskengine_peer, "SOAK_RETENTION", 3600)  # nothing pruned: countable
    result = runner.soak_workload(adapter, 3000)
    assert result["problem"] is None
    assert result["tasks_per_s"] > 0
    assert 0 < result["rss_parent_tenth_kib"] <= result["peak_rss_parent_kib"]
    assert result["peak_rss_parent_kib"] < result["peak_rss_tree_kib"]
    assert result["samples"][-1][0] == 3000
    assert result["stored_tasks_end"] == 3000 + adapter.warmups
    assert "--retention" in adapter.worker_commands()[0]
