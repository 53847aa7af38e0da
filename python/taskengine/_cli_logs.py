"""``taskengine logs``: print a task's stored log messages, and follow a running task.

Kept apart from :mod:`taskengine.cli`, which registers it with one line and calls
:func:`run`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["add_parser", "run"]


def _level(text: str) -> int | str:
    return int(text) if text.isdigit() else text.upper()


def add_parser(add: Callable[[str, str], Any]) -> None:
    """Add the ``logs`` command through the CLI's ``add(name, help)``."""
    from taskengine.cli import _flag, _option, _positive_float, _positive_int

    p = add("logs", "print a task's log messages (and follow it while it runs)")
    p.add_argument("task_id", metavar="ID", type=_positive_int)
    _flag(p, "--follow", "-f", env="TASKENGINE_LOGS_FOLLOW", help="keep printing until it ends")
    _option(
        p,
        "--level",
        env="TASKENGINE_LOGS_LEVEL",
        type=_level,
        metavar="LEVEL",
        help="only messages at this level or above (a number or a name like WARNING)",
    )
    _option(
        p,
        "--interval",
        env="TASKENGINE_LOGS_INTERVAL",
        type=_positive_float,
        default=0.5,
        metavar="SECONDS",
        help="with --follow: how often to look for new messages",
    )


def _print(message: Any, as_json: bool) -> None:
    if as_json:  # one object per line, so --follow output can be read as it comes
        row = {
            "id": message.id,
            "task_id": message.task_id,
            "created_at": message.created_at.isoformat(),
            "level": message.level,
            "logger": message.logger,
            "message": message.message,
            "extra": message.extra,
        }
        print(json.dumps(row), flush=True)
        return
    when = message.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"{when} {message.level_name:<8} {message.logger}: {message.message}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Print the messages; with ``--follow`` keep going until the task has ended."""
    from taskengine.cli import _engine

    engine = _engine(args)
    task = engine.get_task(args.task_id)
    last = 0
    while True:
        done = task.refresh().done  # first: a task's messages are stored before it ends
        while batch := engine.task_logs(task, min_level=args.level, after_id=last):
            for message in batch:
                _print(message, args.json)
            last = batch[-1].id
        if done or not args.follow:
            return 0
        sys.stdout.flush()
        time.sleep(args.interval)
