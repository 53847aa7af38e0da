"""Waiting for a run's tasks to show up in the sink, cheaply (the machine has 2 cores)."""

from __future__ import annotations

import time
from pathlib import Path

from bench.harness import sink


class SinkWatcher:
    """Counts the sink's lines incrementally: each poll reads only what was appended."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets: dict[Path, int] = {}
        self.lines = 0

    def poll(self) -> int:
        """Return the number of records written so far."""
        for path in self.directory.glob("*.log"):
            offset = self._offsets.get(path, 0)
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            # count complete lines only; a partial one is read again next time
            end = data.rfind(b"\n") + 1
            self.lines += data.count(b"\n", 0, end)
            self._offsets[path] = offset + end
        return self.lines


def task_records(directory: Path) -> list[tuple[int, float]]:
    """The sink's records, warm-up tasks (negative ids) left out."""
    return [record for record in sink.read(directory) if record[0] >= 0]


def wait_sink(
    directory: Path, ids: range, timeout: float, warmups: int = 0, interval: float = 0.05
) -> tuple[str | None, float]:
    """Wait until the sink has a record per id; return (problem or None, latest value).

    ``warmups`` is how many warm-up records the sink already holds.
    """
    watcher = SinkWatcher(directory)
    deadline = time.monotonic() + timeout
    while watcher.poll() < len(ids) + warmups and time.monotonic() < deadline:
        time.sleep(interval)
    time.sleep(0.2)  # a late duplicate would show now
    records = task_records(directory)
    problem = sink.verify(records, ids)
    latest = max((value for _, value in records), default=0.0)
    return problem, latest
