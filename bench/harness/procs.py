"""Worker processes: start them in their own process group, sample their memory, stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids = [pid]
    index = 0
    while index < len(pids):
        pids.extend(_children(pids[index]))
        index += 1
    return pids


def rss_kib(pid: int) -> int:
    """Resident set size of one process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Workers:
    """The worker processes of one system; each is the root of a process tree."""

    def __init__(self, commands: Sequence[Sequence[str]], env: dict[str, str], log: Path) -> None:
        self._log = open(log, "ab")  # noqa: SIM115 - closed by stop()
        self.procs = [
            subprocess.Popen(
                list(command),
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own group: stop() signals the whole tree
            )
            for command in commands
        ]
        self.peak_parent_kib = 0
        self.peak_tree_kib = 0
        self._sampling = False
        self._sampler: threading.Thread | None = None

    def check_alive(self) -> None:
        """Raise if a worker has exited."""
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {proc.args!r} exited with {proc.returncode}")

    def start_sampling(self, interval: float = 0.05) -> None:
        """Sample the RSS of the worker parents and their trees until stop_sampling()."""
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample_loop, args=(interval,), daemon=True)
        self._sampler.start()

    def _sample_loop(self, interval: float) -> None:
        while self._sampling:
            self.sample()
            time.sleep(interval)

    def sample(self) -> tuple[int, int]:
        """Take one memory sample now; return (worker processes, their trees) in KiB."""
        parent = sum(rss_kib(proc.pid) for proc in self.procs)
        total = sum(rss_kib(pid) for proc in self.procs for pid in tree(proc.pid))
        self.peak_parent_kib = max(self.peak_parent_kib, parent)
        self.peak_tree_kib = max(self.peak_tree_kib, total)
        return parent, total

    def stop_sampling(self) -> None:
        self._sampling = False
        if self._sampler is not None:
            self._sampler.join()

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every worker group, then SIGKILL what is left after ``grace`` seconds."""
        self.stop_sampling()
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            # the group may outlive its leader (pool children)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self._log.close()
