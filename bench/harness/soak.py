"""The soak: a long stream of no-op tasks through one worker, to see whether its memory stays
flat and whether retention keeps the store's task table small while it runs.

Tasks go out in batches of 1,000 while at most ``BACKLOG`` are dispatched and not yet started,
so the queue stays short and the run measures the worker, not a million-row backlog. The
worker's resident memory (alone, and with its executors) is sampled every ``SAMPLE_EVERY``
seconds with the number of tasks done so far; the figures are the memory after the first tenth
of the tasks, at half way and at the end, the peak, and the growth over the second half. The
systems' own worker arguments for the soak (taskengine: a short retention period) come from
``Adapter.soak_worker_args``; ``Adapter.stored_tasks`` says how many task rows the store holds
at the end.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness.procs import Workers
from bench.harness.runwait import SinkWatcher, wait_sink
from bench.peers.base import Adapter

BACKLOG = 50_000
CHUNK = 1_000
SAMPLE_EVERY = 0.5


def _at_fraction(samples: list[tuple[int, int, int]], done: int, index: int) -> int:
    """The first sample's value (1: worker alone, 2: its tree) once ``done`` tasks ran."""
    for sample in samples:
        if sample[0] >= done:
            return sample[index]
    return samples[-1][index] if samples else 0


def soak(adapter: Adapter, size: int, workers: Workers, timeout: float) -> dict[str, Any]:
    """Run ``size`` no-op tasks through the started, warmed-up ``workers``."""
    watcher = SinkWatcher(adapter.ctx.sink)
    base = watcher.poll()  # warm-up records
    samples: list[tuple[int, int, int]] = []  # (tasks done, worker KiB, tree KiB)
    started = time.time()
    next_sample = time.monotonic()
    dispatched = 0
    deadline = time.monotonic() + timeout
    while True:
        done = watcher.poll() - base
        now = time.monotonic()
        if now >= next_sample:
            parent, tree = workers.sample()
            samples.append((done, parent, tree))
            next_sample = now + SAMPLE_EVERY
        if done >= size:
            break
        if now > deadline:
            raise RuntimeError(f"soak: {done} of {size} tasks ran within {timeout:.0f} s")
        if dispatched < size and dispatched - done < BACKLOG:
            end = min(size, dispatched + CHUNK)
            adapter.dispatch_batch(range(dispatched, end), 0.0)
            dispatched = end
        else:
            workers.check_alive()
            time.sleep(0.02)
    parent, tree = workers.sample()
    samples.append((size, parent, tree))
    problem, last_start = wait_sink(adapter.ctx.sink, range(size), 60.0, base)
    elapsed = last_start - started
    half = _at_fraction(samples, size // 2, 1)
    return {
        "problem": problem,
        "tasks_per_s": size / elapsed if elapsed > 0 else 0.0,
        "rss_parent_tenth_kib": _at_fraction(samples, size // 10, 1),
        "rss_parent_half_kib": half,
        "rss_parent_end_kib": samples[-1][1],
        "rss_parent_growth_second_half_kib": samples[-1][1] - half,
        "peak_rss_parent_kib": max(s[1] for s in samples),
        "peak_rss_tree_kib": max(s[2] for s in samples),
        "stored_tasks_end": adapter.stored_tasks(),
        "samples": samples[:: max(1, len(samples) // 200)],  # at most ~200 for the report
    }
