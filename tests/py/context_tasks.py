"""Task functions that use ``taskengine.current()``, for ``test_task_context.py``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import taskengine
from taskengine._context import MAX_ARTIFACT_BYTES


def log_lines(count: int) -> int:
    """Log ``count`` numbered INFO lines; return the task id the context reports."""
    context = taskengine.current()
    for i in range(count):
        context.logger.info("line %d", i)
    return context.id


def log_levels() -> None:
    """Log one record at each of DEBUG, INFO, WARNING and ERROR, and one with an exception."""
    logger = taskengine.current().logger
    logger.debug("debug")
    logger.info("info")
    logger.warning("warning")
    logger.error("error")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("failed")


def context_info() -> dict[str, Any]:
    """What the context says, whether the working directory is there, is the cwd and is empty;
    leaves a file in it."""
    context = taskengine.current()
    entries = sorted(os.listdir(context.workdir))
    (context.workdir / "scratch.txt").write_text("left behind")
    return {
        "entries": entries,
        "id": context.id,
        "attempt": context.attempt,
        "workdir": str(context.workdir),
        "cwd": os.getcwd(),
        "exists": context.workdir.is_dir(),
        "aborted": context.aborted,
        "logger": context.logger.name,
        "is_logger": isinstance(context.logger, logging.Logger),
    }


async def async_context_info() -> dict[str, Any]:
    """:func:`context_info` from inside an ``async def`` task, in a nested coroutine too."""

    async def nested() -> dict[str, Any]:
        await asyncio.sleep(0)
        taskengine.current().logger.info("from a coroutine")
        return context_info()

    return await asyncio.create_task(nested())


def nested_progress() -> None:
    """Report progress for the task and two nested groups (string and tuple forms)."""
    context = taskengine.current()
    context.report_progress(1, 3, status_line="starting")
    context.report_progress(2, 5, ("download", "a.txt"), "fetching a")
    context.report_progress(5, 5, "download::b.txt")
    context.report_progress(2, 3, status_line="downloaded")


def bad_progress() -> None:
    """Report negative progress (raises InvalidArgument in the task)."""
    taskengine.current().report_progress(-1, 10)


def make_artifact(size: int, seed: int) -> str:
    """Write ``size`` pseudo-random bytes to a file in the workdir, store it as ``out.bin``,
    delete the file, and return the bytes' sha256."""
    context = taskengine.current()
    data = random.Random(seed).randbytes(size)
    (context.workdir / "out.bin").write_bytes(data)
    context.add_artifact("out.bin")  # relative to the working directory
    os.remove(context.workdir / "out.bin")  # stored already: the copy was taken at once
    return hashlib.sha256(data).hexdigest()


def too_big_artifact() -> None:
    """Try to store a (sparse) file one byte over the limit."""
    context = taskengine.current()
    with open(context.workdir / "big.bin", "wb") as file:
        file.truncate(MAX_ARTIFACT_BYTES + 1)
    context.add_artifact("big.bin")


def wait_for_cancel(marker: str) -> None:
    """Log, create ``marker``, then sleep until canceled; log the aborted flag on the way out."""
    context = taskengine.current()
    context.logger.info("started, aborted=%s", context.aborted)
    Path(marker).write_text("started")
    try:
        time.sleep(60)
    finally:
        context.logger.warning("stopping, aborted=%s", context.aborted)


def log_then_wait(marker: str) -> None:
    """Log once, wait (quietly) until ``marker`` exists, then log again."""
    logger = taskengine.current().logger
    logger.info("first")
    deadline = time.monotonic() + 60
    while not Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    logger.info("second")
