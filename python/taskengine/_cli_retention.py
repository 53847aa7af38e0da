"""``taskengine tasks prune``: delete finished tasks older than a given age.

Kept apart from :mod:`taskengine.cli`, which registers it with one line and calls
:func:`run`. Durations read like the worker's ``--retention``: seconds, or a number with a
unit (``90m``, ``36h``, ``7d``).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

__all__ = ["add_parser", "parse_duration", "run"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``3600``, ``90m``, ``36h``, ``7d``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"must be seconds or a number with a unit s, m, h or d (e.g. 7d), not {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_parser(tasks_sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``prune`` to the ``tasks`` command's subparsers."""
    from taskengine._engine_retention import FINAL_STATES
    from taskengine.cli import _flag, _list_option, _option

    p = tasks_sub.add_parser(
        "prune",
        help="delete finished tasks older than a given age",
        description="Delete tasks that finished more than --older-than ago, with their log "
        "records, progress and artifacts; never an unfinished task, nor a finished one that "
        "an unfinished task depends on. Workers do this on their own (--retention).",
        parents=[common],
    )
    _option(
        p,
        "--older-than",
        env="TASKENGINE_PRUNE_OLDER_THAN",
        type=parse_duration,
        metavar="DURATION",
        help="required: finished at least this long ago: seconds, or 90m, 36h, 7d",
    )

    def state(text: str) -> str:
        if text not in FINAL_STATES:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(FINAL_STATES)}")
        return text

    _list_option(
        p,
        "--state",
        env="TASKENGINE_PRUNE_STATES",
        env_format="comma-separated",
        convert=lambda text: [state(s.strip()) for s in text.split(",") if s.strip()],
        item_type=state,
        dest="states",
        metavar="STATE",
        help="only tasks in this final state (repeatable; default: all of them)",
    )
    _flag(p, "--include-builds", env="TASKENGINE_PRUNE_BUILDS", help="builds of jobs too")


def run(args: argparse.Namespace, engine: Any) -> int:
    """Prune as ``args`` say and print how many tasks went."""
    from taskengine.cli import CliError

    if args.older_than is None:
        raise CliError("tasks prune needs --older-than DURATION (or $TASKENGINE_PRUNE_OLDER_THAN)")
    deleted = engine.prune_tasks(
        args.older_than, states=args.states, include_builds=args.include_builds
    )
    if args.json:
        print(json.dumps({"deleted": deleted}))
    else:
        print(f"deleted {deleted} finished task(s)")
    return 0
