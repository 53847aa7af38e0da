"""The peer comparison: taskengine (SQLite, PostgreSQL) against Celery, Dramatiq, RQ, Huey,
Procrastinate and PgQueuer on this machine, in one go. bench/run.sh is the one command that
prepares the peers' venv and runs this; docs/benchmarks.md says what each workload measures.

Each (run, workload, system) is one ``python -m bench.runner`` process in the system's own
environment, with a fresh PostgreSQL database or a flushed Redis database; systems are
interleaved within each run so that load on the machine spreads over all of them. Figures are
the median, min and max over runs; ratios are taskengine's median over the peer's, both from
this invocation. Benchmarks print figures and assert nothing, except that every task ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import charts, report, services  # noqa: E402
from bench.peers import ADAPTERS  # noqa: E402

SYSTEMS = list(ADAPTERS)
POSTGRES_SYSTEMS = {"taskengine-postgresql", "procrastinate", "pgqueuer"}
REDIS_SYSTEMS = {"celery", "dramatiq", "rq", "huey"}
WORKLOADS = ["throughput", "dispatch", "latency", "commands", "footprint", "soak", "resources"]
# footprint is not in the default set: its figures then come from the throughput runs, which
# sample the same memory (see docs/benchmarks.md); ask for it with --footprint-tasks 200000.
DEFAULT_WORKLOADS = ["throughput", "dispatch", "latency", "commands", "soak", "resources"]
# The soak (a 1M-task stream through one worker: is its memory flat, does retention keep the
# table small) runs for taskengine only: the peers here run 250-4,000 tasks/s, hours for 1M.
SOAK_SYSTEMS = {"taskengine-sqlite", "taskengine-postgresql"}
FULL_SIZES = {
    "throughput": 20_000,
    "dispatch": 5_000,
    "latency": 1_000,
    "commands": 2_000,
    "footprint": 200_000,
    "soak": 1_000_000,
}
QUICK_SIZES = {
    "throughput": 300,
    "dispatch": 200,
    "latency": 20,
    "commands": 40,
    "footprint": 1_000,
    "soak": 2_000,
}
# Peers that ran under 200 tasks/s here: their throughput and dispatch runs take a quarter of
# the tasks by default (tasks/s barely depends on it), to keep the full run near 30 minutes.
SLOW_PEERS = {"rq", "procrastinate"}
SLOW_SCALE = {"throughput": 4, "dispatch": 4}
PEER_PACKAGES = [
    "celery",
    "dramatiq",
    "rq",
    "huey",
    "procrastinate",
    "pgqueuer",
    "redis",
    "psycopg",
    "asyncpg",
    "kombu",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny sizes, one run (keeps the harness from rotting)",
    )
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {','.join(SYSTEMS)}"
    )
    parser.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all but "
        "footprint, whose figures then come from the throughput runs)",
    )
    parser.add_argument("--runs", type=int, help="runs per workload (default 3; --quick: 1)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="tasks at once per system (default 2: this machine's cores)",
    )
    for name, size in FULL_SIZES.items():
        parser.add_argument(
            f"--{name}-tasks",
            type=int,
            dest=f"{name}_tasks",
            help=f"tasks per {name} run (default {size:,})",
        )
    parser.add_argument(
        "--slow-peers",
        default=",".join(sorted(SLOW_PEERS)),
        help="peers whose throughput and dispatch runs use a quarter of the tasks "
        "(default rq,procrastinate; '' for none; not applied with --quick)",
    )
    parser.add_argument(
        "--footprint-runs", type=int, default=1, help="runs of the footprint workload (default 1)"
    )
    parser.add_argument(
        "--soak-runs", type=int, default=1, help="runs of the soak workload (default 1)"
    )
    parser.add_argument(
        "--resource-sizes",
        default="10000",
        help="claim benchmark queue lengths (default 10000; the full set of "
        "the scheduling issue: 10000,100000,1000000)",
    )
    parser.add_argument(
        "--claim-bench", type=Path, help="taskengine_claim_bench binary (default: build/*/bench/)"
    )
    parser.add_argument(
        "--taskengine-python",
        type=Path,
        default=REPO / ".venv/bin/python",
        help="interpreter with taskengine installed (default: .venv)",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=int(os.environ.get("TASKENGINE_BENCH_REDIS_DB", "14")),
        help="Redis database number the harness owns and flushes "
        "(default $TASKENGINE_BENCH_REDIS_DB, else 14)",
    )
    parser.add_argument("--json", type=Path, help="write every figure and run as JSON")
    parser.add_argument("--markdown", type=Path, help="write the tables as Markdown")
    parser.add_argument("--charts", type=Path, help="write throughput.png and latency.png here")
    parser.add_argument(
        "--from-json",
        type=Path,
        help="measure nothing: report (tables, charts) on the results of an earlier --json",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    args = parser.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for system in args.systems:
        if system not in ADAPTERS:
            parser.error(f"unknown system {system!r}")
    for workload in args.workloads:
        if workload not in WORKLOADS:
            parser.error(f"unknown workload {workload!r}")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    args.sizes = {name: getattr(args, f"{name}_tasks") or size for name, size in sizes.items()}
    args.slow_peers = set() if args.quick else {p for p in args.slow_peers.split(",") if p}
    if args.footprint_tasks and "footprint" not in args.workloads:
        args.workloads.append("footprint")
    return args


def load_average() -> float:
    return os.getloadavg()[0]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])
    versions = {}
    for package in PEER_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
        "peer_versions": versions,
    }


class Harness:
    """Runs the measurements and keeps their results."""

    def __init__(self, args: argparse.Namespace, redis_url: str, scratch: Path) -> None:
        self.args = args
        self.redis_url = redis_url
        self.scratch = scratch
        self.admin_url = services.postgres_admin_url()
        self.results: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.counter = 0

    def python_for(self, system: str) -> str:
        if system.startswith("taskengine"):
            return str(self.args.taskengine_python)
        return sys.executable

    def measure(self, system: str, workload: str, size: int, run: int) -> dict[str, Any]:
        self.counter += 1
        work = self.scratch / f"{self.counter:03d}-{system}-{workload}-{run}"
        work.mkdir()
        with ExitStack() as stack:
            postgres_url = "postgresql://unused"
            if system in POSTGRES_SYSTEMS:
                postgres_url = stack.enter_context(
                    services.scratch_database(self.admin_url, system)
                )
            if system in REDIS_SYSTEMS:
                services.flush_redis(self.redis_url)
                stack.callback(services.flush_redis, self.redis_url)
            command = [
                self.python_for(system),
                "-m",
                "bench.runner",
                "--system",
                system,
                "--workload",
                workload,
                "--size",
                str(size),
                "--concurrency",
                str(self.args.concurrency),
                "--work",
                str(work),
                "--redis-url",
                self.redis_url,
                "--postgres-url",
                postgres_url,
            ]
            load = load_average()
            started = time.monotonic()
            proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
            (work / "runner.log").write_text(proc.stderr)
        result: dict[str, Any]
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"problem": f"runner exited {proc.returncode} without a result"}
        result.update(
            system=system,
            workload=workload,
            size=size,
            run=run,
            load_average=load,
            wall_seconds=time.monotonic() - started,
        )
        self.results.setdefault(workload, {}).setdefault(system, []).append(result)
        self.print_line(result, work)
        if self.args.json:  # so far: an interrupted run keeps what it measured
            self.args.json.write_text(json.dumps({"partial": True, "results": self.results}))
        return result

    def print_line(self, result: dict[str, Any], work: Path) -> None:
        keys = {
            "throughput": ["tasks_per_s"],
            "footprint": ["tasks_per_s", "peak_rss_parent_kib", "peak_rss_tree_kib"],
            "dispatch": ["single_per_s", "batch_per_s", "commit_per_s", "single_to_commit"],
            "latency": ["p50_ms", "p99_ms", "max_ms"],
            "commands": ["tasks_per_s", "dispatch_per_s"],
            "soak": [
                "tasks_per_s",
                "rss_parent_tenth_kib",
                "rss_parent_end_kib",
                "peak_rss_tree_kib",
                "stored_tasks_end",
            ],
        }
        figures = ", ".join(
            f"{k}={result[k]:,.1f}" if result[k] >= 10 else f"{k}={result[k]:.2f}"
            for k in keys[result["workload"]]
            if k in result
        )
        status = "ok" if not result.get("problem") else f"FAILED: {result['problem']}"
        print(
            f"  run {result['run'] + 1} {result['workload']:<10} {result['system']:<22} "
            f"n={result['size']:<6} "
            f"{figures}  [{result['wall_seconds']:.0f} s, load {result['load_average']:.1f}]"
            f" {status}",
            flush=True,
        )
        if result.get("problem"):
            for name in ("runner.log", "worker.log"):
                path = work / name
                if path.exists():
                    tail = path.read_text(errors="replace").splitlines()[-15:]
                    print(f"    --- {name} (tail) ---\n    " + "\n    ".join(tail))

    def run_peers(self) -> None:
        workloads = [w for w in self.args.workloads if w != "resources"]
        for run in range(self.args.runs):
            for workload in workloads:
                if workload == "footprint" and run >= self.args.footprint_runs:
                    continue
                if workload == "soak" and run >= self.args.soak_runs:
                    continue
                for system in self.args.systems:
                    if workload == "soak" and system not in SOAK_SYSTEMS:
                        continue
                    self.measure(system, workload, self.size(system, workload), run)

    def size(self, system: str, workload: str) -> int:
        size: int = self.args.sizes[workload]
        if system in self.args.slow_peers and workload in SLOW_SCALE:
            size //= SLOW_SCALE[workload]
        return size

    def run_resources(self) -> list[dict[str, Any]]:
        """The claim benchmark (taskengine only), sizes chosen here."""
        binary = self.args.claim_bench or next(
            iter(sorted(REPO.glob("build/*/bench/taskengine_claim_bench"))), None
        )
        if binary is None or not binary.exists():
            print("  resources: taskengine_claim_bench not built (TASKENGINE_BUILD_BENCH=ON)")
            self.results["resources"] = {"taskengine": [{"problem": "claim bench not built"}]}
            return []
        out = self.scratch / "claim.json"
        command = [str(binary), "--json", str(out)]
        if self.args.quick:
            command.append("--quick")
        else:
            command += ["--sizes", self.args.resource_sizes]
        env = dict(os.environ, TASKENGINE_BENCH_POSTGRES=self.admin_url)
        print(f"  resources: {' '.join(command)}", flush=True)
        proc = subprocess.run(command, env=env)
        runs: list[dict[str, Any]] = []
        if out.exists():
            runs = json.loads(out.read_text())["runs"]
        problem = None if proc.returncode == 0 else f"claim bench exited {proc.returncode}"
        self.results["resources"] = {"taskengine": [{"problem": problem, "rows": runs}]}
        return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"compare: systems {','.join(args.systems)}; workloads {','.join(args.workloads)}; "
        f"{args.runs} run(s); sizes {args.sizes}; concurrency {args.concurrency}; "
        f"load {load_average():.2f}",
        flush=True,
    )
    info = machine()
    load_before = load_average()
    if args.from_json:
        # Report on earlier results (a finished or interrupted run) without measuring.
        saved = json.loads(args.from_json.read_text())
        harness = Harness(args, "redis://unused", Path(tempfile.gettempdir()))
        harness.results = saved["results"]
        harness.results.pop("footprint", None)  # re-derived below when it was an alias
        rows = harness.results.get("resources", {}).get("taskengine", [{}])
        claim_rows = rows[0].get("rows", []) if rows else []
    else:
        with ExitStack() as stack:
            redis_url = stack.enter_context(services.redis_server(args.redis_db))
            scratch = Path(tempfile.mkdtemp(prefix="bench-compare-"))
            if not args.keep:
                stack.callback(lambda: subprocess.run(["rm", "-rf", str(scratch)]))
            else:
                print(f"compare: scratch directories kept in {scratch}")
            harness = Harness(args, redis_url, scratch)
            harness.run_peers()
            claim_rows = harness.run_resources() if "resources" in args.workloads else []
    info["load_average"] = {"before": round(load_before, 2), "after": round(load_average(), 2)}
    # the 1-minute load average seen at the start of each measurement
    loads = [
        r["load_average"]
        for per_system in harness.results.values()
        for runs in per_system.values()
        for r in runs
        if "load_average" in r
    ]
    low, high = round(min(loads, default=0), 1), round(max(loads, default=0), 1)
    info["load_average"]["measurements"] = [low, high]
    load_text = f"load {low}-{high}"
    footprint_note = f"footprint: separate runs of {args.sizes['footprint']:,} tasks"
    if "footprint" not in harness.results and "throughput" in harness.results:
        harness.results["footprint"] = harness.results["throughput"]
        footprint_note = (
            f"footprint: sampled during the throughput runs ({args.sizes['throughput']:,} tasks)"
        )
    table = report.summaries(harness.results)
    order = [s for s in SYSTEMS if s in args.systems]
    text = [
        f"Figures: median (min-max) over {args.runs} run(s); sizes {args.sizes}; "
        f"concurrency {args.concurrency}; {load_text} (1-minute load average at the "
        "start of each measurement); "
        f"{footprint_note}."
        + (
            f" {', '.join(sorted(args.slow_peers))}: throughput and dispatch runs with a "
            "quarter of the tasks (slow peers)."
            if args.slow_peers
            else ""
        ),
        "",
        report.figures_table(table, order),
        "",
        "Ratios: taskengine's median ÷ the peer's median, same invocation.",
        "",
        report.ratios_table(table, order),
    ]
    if claim_rows:
        text += ["", "Resources (claim benchmark):", "", report.resources_table(claim_rows)]
    markdown = "\n".join(text) + "\n"
    print("\n" + markdown)
    if args.markdown:
        args.markdown.write_text(markdown)
    if args.charts:
        args.charts.mkdir(parents=True, exist_ok=True)
        where = f"{info['cpus']} CPUs, {load_text}"
        charts.throughput_chart(
            table,
            args.charts / "bench-throughput.png",
            f"No-op tasks end to end, {args.sizes['throughput']:,} "
            f"tasks, concurrency {args.concurrency} ({where})",
        )
        charts.latency_chart(
            table,
            args.charts / "bench-latency.png",
            f"Dispatch → start on an idle worker, {args.sizes['latency']:,} tasks ({where})",
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "args": {
                        "runs": args.runs,
                        "sizes": args.sizes,
                        "concurrency": args.concurrency,
                        "quick": args.quick,
                    },
                    "results": harness.results,
                },
                indent=1,
            )
        )
    failures = [
        r
        for runs in harness.results.values()
        for rs in runs.values()
        for r in rs
        if r.get("problem")
    ]
    if failures:
        print(f"compare: {len(failures)} measurement(s) failed (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
