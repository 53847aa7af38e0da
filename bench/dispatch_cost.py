"""What one ``engine.dispatch`` call costs, split into its Python part and the core call.

    python -m bench.dispatch_cost --url sqlite:///tmp/cost.db --calls 2000 --rounds 5

Runs from any venv with taskengine installed (the repository root as the working directory,
so ``bench.peers.te_tasks`` imports), so that two builds can be compared side by side. Each
round times, call by call and interleaved, the ways in:

- ``engine.dispatch``: the public call, as the benchmark harness makes it; the time spent
  inside the core call it makes is recorded on the side, so ``python`` is the rest;
- ``core.dispatch``: the core's JSON entry point with a spec serialised beforehand (the C++
  parsing, validation and the store's transaction);
- ``core.dispatch_function``: the single-function entry point, with options parsed once and
  a payload serialised beforehand (skipped when the build has none).

Prints one JSON object: medians in microseconds per call, over all rounds. The store must
be empty or disposable: the tasks stay queued (no worker runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import taskengine
from taskengine._native import _core

NOOP = "bench.peers.te_tasks:noop"


class _TimedCore:
    """The engine's core object, with the time spent in its dispatch calls noted."""

    def __init__(self, core: Any) -> None:
        self._inner = core
        self.spent_ns = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not name.startswith("dispatch"):
            return target

        def timed(*args: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return target(*args)
            finally:
                self.spent_ns += time.perf_counter_ns() - started

        return timed


def _time_calls(call: Callable[[int], None], calls: int) -> list[float]:
    out = []
    for i in range(calls):
        started = time.perf_counter_ns()
        call(i)
        out.append((time.perf_counter_ns() - started) / 1000)
    return out


def measure(url: str, calls: int, rounds: int) -> dict[str, Any]:
    engine = taskengine.connect(url)
    engine.install()
    timed = _TimedCore(engine._core)
    engine._core = timed  # the real core: only the time of its calls is noted
    core = timed._inner
    spec = {
        "kind": "function",
        "name": "bench.peers.te_tasks:noop",
        "payload": {"function": "bench.peers.te_tasks:noop", "args": [1, 0.0], "kwargs": {}},
    }
    spec_text = json.dumps([spec], separators=(",", ":"))
    payload_text = json.dumps(spec["payload"], separators=(",", ":"))
    has_function = hasattr(core, "dispatch_function") and hasattr(_core, "DispatchOptions")
    options = _core.DispatchOptions("{}") if has_function else None

    totals: list[float] = []
    inside: list[float] = []
    spec_calls: list[float] = []
    function_calls: list[float] = []

    def public(i: int) -> None:
        engine.dispatch(NOOP, (i, 0.0))

    for _ in range(20):  # imports, prepared statements
        public(0)
        core.dispatch(spec_text)
    for _ in range(rounds):
        for i in range(calls):
            timed.spent_ns = 0
            started = time.perf_counter_ns()
            public(i)
            totals.append((time.perf_counter_ns() - started) / 1000)
            inside.append(timed.spent_ns / 1000)
        spec_calls += _time_calls(lambda _i: core.dispatch(spec_text), calls)
        if options is not None:
            function_calls += _time_calls(
                lambda _i: core.dispatch_function(options, NOOP, payload_text), calls
            )
    python = [total - core_part for total, core_part in zip(totals, inside, strict=True)]
    result: dict[str, Any] = {
        "url_backend": engine.backend,
        "calls": calls * rounds,
        "load_1min": os.getloadavg()[0],
        "engine_dispatch_us": statistics.median(totals),
        "engine_dispatch_python_us": statistics.median(python),
        "engine_dispatch_core_us": statistics.median(inside),
        "core_dispatch_spec_json_us": statistics.median(spec_calls),
    }
    if function_calls:
        result["core_dispatch_function_us"] = statistics.median(function_calls)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a disposable store")
    parser.add_argument("--calls", type=int, default=2000, help="calls per way in per round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print(json.dumps(measure(options.url, options.calls, options.rounds)))


if __name__ == "__main__":
    main()
