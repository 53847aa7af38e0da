"""Small, real task functions that ``taskengine demo`` dispatches.

Each one does a little honest work and returns a JSON value, so the demo shows results, not
sleeps. Deterministic: the same arguments give the same result on any worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter

__all__ = [
    "collatz_longest",
    "count_primes",
    "deliberate_failure",
    "gather_squares",
    "sha256_of_generated_data",
    "word_frequencies",
]

_WORDS = [
    "task",
    "queue",
    "worker",
    "store",
    "durable",
    "claim",
    "heartbeat",
    "resource",
    "lock",
    "shared",
    "exclusive",
    "priority",
    "retry",
    "timeout",
    "group",
    "dependency",
    "result",
    "error",
    "traceback",
    "executor",
    "command",
    "python",
    "native",
]


def count_primes(below: int) -> int:
    """Count the primes below ``below`` with a sieve of Eratosthenes."""
    if below < 3:
        return 0
    sieve = bytearray([1]) * below
    sieve[0] = sieve[1] = 0
    for n in range(2, int(below**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, below, n)))
    return sum(sieve)


def sha256_of_generated_data(seed: int, size: int) -> str:
    """Generate ``size`` pseudo-random bytes from ``seed`` and return their SHA-256 (hex)."""
    data = random.Random(seed).randbytes(size)
    return hashlib.sha256(data).hexdigest()


def word_frequencies(seed: int, words: int, top: int = 3) -> list[list[object]]:
    """Generate a text of ``words`` words and return its ``top`` most common words with
    their counts, as ``[[word, count], ...]``."""
    rng = random.Random(seed)
    weights = [1 + (i % 5) for i in range(len(_WORDS))]
    text = " ".join(rng.choices(_WORDS, weights=weights, k=words))
    return [[word, count] for word, count in Counter(text.split()).most_common(top)]


def collatz_longest(limit: int) -> list[int]:
    """Return ``[n, steps]`` for the n below ``limit`` with the longest Collatz sequence."""
    best, best_steps = 1, 0
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        if steps > best_steps:
            best, best_steps = start, steps
    return [best, best_steps]


async def gather_squares(count: int) -> int:
    """An ``async def`` task: square ``count`` numbers concurrently and sum them."""

    async def square(n: int) -> int:
        await asyncio.sleep(0.001)
        return n * n

    return sum(await asyncio.gather(*(square(n) for n in range(count))))


def deliberate_failure(value: int) -> int:
    """Fail on purpose with ValueError (the demo expects this task to end ``failed``)."""
    limit = 10
    if value > limit:
        raise ValueError(f"deliberate failure: {value} is more than {limit}")
    return value
