"""CPU time of taskengine_claim_bench's measured phase, per task.

Wall-clock figures on a shared two-core machine move with everyone else's load; CPU time
moves much less. This runs the benchmark binary given on the command line (any build: it
reads only its progress lines on stderr) and, for every run, takes the CPU time of the
benchmark process and, on PostgreSQL, of the server backends serving its connections, from
the "measuring" line (fill done) to the "done" line. That phase claims and completes
20 + K + K*B + T tasks (warm-up, claim(1), claim(B), throughput; K=2000, B=10, T=20000 by
default) and dispatches their replacements.

    python3 bench/claim_cpu.py /tmp/bench_build/bench/taskengine_claim_bench --sizes 10000
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

TICKS = os.sysconf("SC_CLK_TCK")
LABEL = re.compile(r"^\s+(\S+ N=\d+ (?:no )?resources): (filled at .*measuring|done,.*)$")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def backends_of(pid: int, psql: list[str]) -> list[int]:
    """PostgreSQL backend pids whose client is process `pid` (by TCP port)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", "( dport = :5432 )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    ports = [
        line.split()[2].rsplit(":", 1)[1] for line in out.splitlines() if f"pid={pid}," in line
    ]
    if not ports:
        return []
    query = f"SELECT pid FROM pg_stat_activity WHERE client_port IN ({','.join(ports)})"
    rows = subprocess.run(
        [*psql, "-XAtc", query], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in rows.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--psql", default="psql -h 127.0.0.1 -U postgres postgres")
    parser.add_argument("--tasks", type=int, default=20 + 2000 + 20000 + 20000)
    args, rest = parser.parse_known_args()
    psql = args.psql.split()
    proc = subprocess.Popen([args.binary, *rest], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    start: dict[str, tuple[float, list[int], float]] = {}
    for line in proc.stderr:
        sys.stderr.write(line)
        match = LABEL.match(line)
        if not match:
            continue
        label = match.group(1)
        client = cpu_seconds(proc.pid)
        if match.group(2).startswith("filled"):
            backends = backends_of(proc.pid, psql) if label.startswith("postgresql") else []
            start[label] = (client, backends, sum(cpu_seconds(b) for b in backends))
        elif label in start:
            c0, b0, s0 = start.pop(label)
            server = sum(cpu_seconds(b) for b in b0)
            per = 1e6 / args.tasks
            print(
                f"cpu {label}: client {(client - c0) * per:.1f} us/task, "
                f"server {(server - s0) * per:.1f} us/task",
                flush=True,
            )
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
