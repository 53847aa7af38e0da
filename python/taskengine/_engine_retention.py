"""Retention: deleting finished tasks once they are old enough (mixed into the Engine).

Workers do this on their own (``taskengine-worker --retention``, seven days by default);
:meth:`RetentionMixin.prune_tasks` is the same operation on demand, e.g. from
``taskengine tasks prune``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from taskengine import _spec
from taskengine.errors import InvalidArgument

if TYPE_CHECKING:
    from taskengine import _core

__all__ = ["FINAL_STATES", "RetentionMixin"]

FINAL_STATES = ("completed", "failed", "skipped", "canceled")
_BATCH = 1000  # tasks per transaction: no call holds the store for long


def _age(value: object) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not _spec._is_finite_number(seconds) or seconds < 0:
        raise InvalidArgument(f"older_than must be seconds >= 0 or a timedelta, not {value!r}")
    return float(seconds)


def _states(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidArgument(f"states must be a list of task states, not {value!r}")
    states = list(value)
    for state in states:
        if state not in FINAL_STATES:
            raise InvalidArgument(
                f"states may only name final states ({', '.join(FINAL_STATES)}), not {state!r}"
            )
    return states


class RetentionMixin:
    """Deleting finished tasks (mixed into :class:`~taskengine.engine.Engine`)."""

    _core: _core.Engine

    def prune_tasks(
        self,
        older_than: float | timedelta,
        *,
        states: Sequence[str] | None = None,
        include_builds: bool = False,
    ) -> int:
        """Delete tasks that finished more than ``older_than`` (seconds or a timedelta) ago;
        return how many.

        Their log records, progress and artifacts go with them. Only tasks in ``states``
        (final states: ``completed``, ``failed``, ``skipped``, ``canceled``) when given;
        builds of jobs only with ``include_builds``. A finished task that an unfinished task
        still depends on is kept (its result may yet be passed on). Deletes in transactions
        of up to 1,000 tasks, oldest first."""
        age = _age(older_than)
        wanted = _states(states)
        builds = _spec.check_bool(include_builds, "include_builds")
        cutoff = _spec.to_micros(datetime.now(UTC) - timedelta(seconds=age))
        total = 0
        while True:
            deleted = self._core.prune_tasks(cutoff, wanted, builds, _BATCH)
            total += deleted
            if deleted < _BATCH:
                return total
