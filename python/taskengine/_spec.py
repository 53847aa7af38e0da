"""Building the core's TaskSpec objects from ``dispatch`` options, validating every one.

Everything here is pure Python and raises :class:`~taskengine.errors.InvalidArgument` (or a
subclass) naming the option at fault before anything reaches the store, so a bad call leaves
the store as it was.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from taskengine.errors import InvalidArgument, NotSerializable

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_URL",
    "INT32_MAX",
    "INT64_MAX",
    "MAX_DEPTH",
    "TASK_STATES",
    "WORKER_TYPES",
    "Backoff",
    "args_list_json",
    "check_json_args",
    "function_payload",
    "function_payload_json",
    "retry_policy",
    "spec_options",
    "store_url",
    "to_micros",
]

DEFAULT_URL = "sqlite:///./taskengine.db"
"""The store used when neither an URL nor ``$TASKENGINE_URL`` is given."""


def store_url(url: str | None = None) -> str:
    """Return ``url``, else ``$TASKENGINE_URL``, else :data:`DEFAULT_URL`."""
    if url is None:
        return os.environ.get("TASKENGINE_URL") or DEFAULT_URL
    return url


TASK_STATES = (
    "blocked",
    "waiting",
    "running",
    "completed",
    "failed",
    "skipped",
    "canceling",
    "canceled",
)
"""Every task state, in lifecycle order."""

FINAL_STATES = frozenset({"completed", "failed", "skipped", "canceled"})
"""The states a task never leaves."""

WORKER_TYPES = ("worker", "server", "signing")
"""The kinds of worker a task may require."""

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_DEPTH = 200
"""How deeply task arguments may nest lists and dicts."""
_MAX_RETRIES = 1000
_MAX_BACKOFF = 3600.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite_number(value: object) -> TypeGuard[int | float]:
    return _is_number(value) and math.isfinite(value)


def to_micros(moment: datetime) -> int:
    """Return an aware datetime as integer microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _ONE_MICROSECOND


@dataclass(frozen=True)
class Backoff:
    """A retry policy with exponential backoff, for ``dispatch(..., retries=Backoff(...))``.

    After a failed attempt the task runs again up to ``retries`` more times; the n-th retry
    waits ``base * 2 ** (n - 1)`` seconds, at most ``max`` seconds. With ``jitter`` (the
    default) half of each delay is fixed and half random ("equal jitter"), so many tasks that
    fail together do not retry together. ``base=0`` retries at once.

    Invalid values raise :class:`~taskengine.errors.InvalidArgument` naming the field.
    """

    retries: int
    """How many more attempts after a failure, from 0 to 1000."""
    base: float = 1.0
    """The first retry's delay in seconds (>= 0)."""
    max: float = _MAX_BACKOFF
    """The longest delay in seconds (>= 0)."""
    jitter: bool = True
    """Randomise half of each delay."""

    def __post_init__(self) -> None:
        """Validate every field."""
        if not is_int(self.retries) or not 0 <= self.retries <= _MAX_RETRIES:
            raise InvalidArgument(
                f"Backoff.retries must be an integer from 0 to {_MAX_RETRIES}, not {self.retries!r}"
            )
        for name in ("base", "max"):
            value = getattr(self, name)
            if not _is_finite_number(value) or value < 0:
                raise InvalidArgument(
                    f"Backoff.{name} must be a finite number of seconds >= 0, not {value!r}"
                )
        if not isinstance(self.jitter, bool):
            raise InvalidArgument(f"Backoff.jitter must be True or False, not {self.jitter!r}")

    def policy(self) -> dict[str, Any]:
        """Return the core's retry policy object for this backoff."""
        return {
            "max_attempts": self.retries + 1,
            "delays": [],
            "backoff_base": float(self.base),
            "backoff_max": float(self.max),
            "jitter": self.jitter,
        }


def retry_policy(retries: object, retry_backoff: object = None) -> dict[str, Any]:
    """Validate the ``retries`` option (and ``retry_backoff``); return the core's policy.

    ``retries`` is an int (that many retries, exponential backoff from ``retry_backoff``
    seconds, default 1, with jitter, at most an hour apart), a list or tuple of delays in
    seconds (one retry per item), or a :class:`Backoff`.
    """
    if is_int(retries):
        if not 0 <= retries <= _MAX_RETRIES:
            raise InvalidArgument(
                f"retries must be an integer from 0 to {_MAX_RETRIES}, not {retries!r}"
            )
        base = 1.0 if retry_backoff is None else retry_backoff
        if not _is_finite_number(base) or base < 0:
            raise InvalidArgument(f"retry_backoff must be a number of seconds >= 0, not {base!r}")
        # Backoff(retries, base).policy(), without checking its fields again
        return {
            "max_attempts": retries + 1,
            "delays": [],
            "backoff_base": float(base),
            "backoff_max": _MAX_BACKOFF,
            "jitter": True,
        }
    if retry_backoff is not None:
        raise InvalidArgument(
            "retry_backoff applies only when retries is an integer; with a list of delays or a "
            "Backoff the delays are given there"
        )
    if isinstance(retries, Backoff):
        return retries.policy()
    if isinstance(retries, list | tuple):
        if len(retries) > _MAX_RETRIES:
            raise InvalidArgument(
                f"retries must list at most {_MAX_RETRIES} delays, not {len(retries)}"
            )
        delays: list[float] = []
        for index, delay in enumerate(retries):
            if not _is_finite_number(delay) or delay < 0:
                raise InvalidArgument(
                    f"retries[{index}] must be a finite number of seconds >= 0, not {delay!r}"
                )
            delays.append(float(delay))
        return {
            "max_attempts": len(delays) + 1,
            "delays": delays,
            "backoff_base": 0.0,
            "backoff_max": _MAX_BACKOFF,
            "jitter": False,
        }
    raise InvalidArgument(
        f"retries must be an integer, a list of delays in seconds or a taskengine.Backoff, "
        f"not {retries!r}"
    )


def check_bool(value: object, option: str) -> bool:
    """Return ``value`` if it is a bool, else raise InvalidArgument naming ``option``."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{option} must be True or False, not {value!r}")
    return value


def check_id(value: object, option: str) -> int:
    """Return a task, group or worker id: a positive int, or an object with one as ``.id``."""
    candidate = value if is_int(value) else getattr(value, "id", value)
    if not is_int(candidate) or not 0 < candidate <= INT64_MAX:
        raise InvalidArgument(f"{option} must be a positive integer id, not {value!r}")
    return candidate


def _strings(value: object, option: str) -> list[str]:
    if type(value) is tuple and not value:  # the default
        return []
    if isinstance(value, str | bytes):
        raise InvalidArgument(
            f"{option} must be a list of strings, not a single {type(value).__name__} "
            f"(write [{value!r}])"
        )
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise InvalidArgument(f"{option} must be a list of strings, not {type(value).__name__}")
    seen: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str):
            raise InvalidArgument(
                f"{option} must contain strings only, found {type(item).__name__} {item!r}"
            )
        if not item:
            raise InvalidArgument(f"{option} contains an empty resource name")
        seen[item] = None
    return list(seen)


def _unserializable(value: object, where: str, depth: int = 0) -> tuple[str, str] | None:
    """Find the first part of ``value`` that does not round-trip through JSON.

    Returns ``(where, what is wrong)`` or None.
    """
    if value is None or isinstance(value, str | int):  # bool is an int
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, f"is {value!r} (JSON has no NaN or inf)")
    if depth >= MAX_DEPTH:
        return where, f"is nested more than {MAX_DEPTH} levels deep (or contains itself)"
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _unserializable(item, f"{where}[{index}]", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return where, (
                    f"has the key {key!r} of type {type(key).__name__} (JSON object keys "
                    f"must be strings)"
                )
            found = _unserializable(item, f"{where}[{key!r}]", depth + 1)
            if found is not None:
                return found
        return None
    return where, f"is a {type(value).__module__}.{type(value).__qualname__}"


def check_json_args(args: object, kwargs: object) -> tuple[list[Any], dict[str, Any]]:
    """Validate a task's args and kwargs; return them as a JSON-ready list and dict.

    Raises :class:`InvalidArgument` for the wrong container types and
    :class:`NotSerializable` naming the offending argument (``args[1]['key']``,
    ``kwargs['name']``) and its type.
    """
    if isinstance(args, str | bytes | Mapping) or not isinstance(args, Sequence):
        raise InvalidArgument(
            f"args must be a list or tuple of positional arguments, not {type(args).__name__}"
        )
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise InvalidArgument(
            f"kwargs must be a dict of keyword arguments, not {type(kwargs).__name__}"
        )
    arg_list = list(args)
    kwarg_dict = dict(kwargs)
    for key in kwarg_dict:
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidArgument(f"kwargs has the key {key!r}, which is not a parameter name")
    found = _unserializable(arg_list, "args") or _unserializable(kwarg_dict, "kwargs")
    if found is not None:
        where, problem = found
        raise NotSerializable(
            f"{where} {problem}, which cannot be stored as JSON: task arguments must be "
            f"None, bool, int, float, str, lists/tuples and dicts with str keys of these"
        )
    return arg_list, kwarg_dict


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not stored as is")


def args_list_json(items: Sequence[Any]) -> str | None:
    """Return the JSON list of ``items`` (each one task's positional arguments), or None.

    One ``json.dumps`` over all items, for ``dispatch_many``'s fast path. It returns text only
    when that stores exactly what :func:`check_json_args` would pass item by item: every item
    a list or tuple, no NaN or inf, no other types (``default`` refuses them, Task objects
    included), and no dict at all, since json.dumps would quietly turn non-str keys into
    strings (and dicts are where ``{"$retval": id}`` markers live). None sends the caller to
    the careful per-item path, which names what is wrong. The core checks the nesting depth.
    """
    if not all(isinstance(args, list | tuple) for args in items):
        return None
    try:
        text = json.dumps(items, allow_nan=False, separators=(",", ":"), default=_refuse)
    except (TypeError, ValueError, RecursionError):
        return None
    # Also catches a '{' inside a string: that only costs the careful path.
    return None if "{" in text else text


def function_payload(path: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Return the payload of a function task."""
    return {"function": path, "args": args, "kwargs": kwargs}


def function_payload_json(path: str, args: object, kwargs: object) -> str | None:
    """Return the JSON payload of a function task with plain positional arguments, or None.

    A single dispatch's fast path, by the rules of :func:`args_list_json`: text only when it
    stores exactly what :func:`check_json_args` and :func:`function_payload` would, that is
    ``args`` a list or tuple of JSON scalars and lists alone (no dict, so no result marker;
    no Task, which ``default`` refuses), nested well within :data:`MAX_DEPTH`, and no
    keyword arguments. None sends the caller to the careful path, which names what is wrong.
    """
    no_kwargs = kwargs is None or (isinstance(kwargs, dict) and not kwargs)
    if not no_kwargs or not isinstance(args, list | tuple):
        return None
    try:
        text = json.dumps(args, allow_nan=False, separators=(",", ":"), default=_refuse)
    except (TypeError, ValueError, RecursionError):
        return None
    # Fewer '[' than MAX_DEPTH: no list can be nested too deeply ('[' in strings only
    # cost the careful path, as '{' do).
    if "{" in text or text.count("[") > MAX_DEPTH:
        return None
    return f'{{"function":{json.dumps(path)},"args":{text},"kwargs":{{}}}}'


def _not_before(value: object, now: datetime) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgument(
                "not_before must be a timezone-aware datetime (e.g. datetime.now(UTC) + ...), "
                "not a naive one"
            )
        return to_micros(value)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if _is_finite_number(value) and value >= 0:
        return to_micros(now + timedelta(seconds=float(value)))
    raise InvalidArgument(
        f"not_before must be an aware datetime or a number of seconds from now >= 0, not {value!r}"
    )


def _seconds(value: object, option: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if not _is_finite_number(value) or value <= 0:
        raise InvalidArgument(f"{option} must be a positive number of seconds, not {value!r}")
    return float(value)


def _versions(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"versions must map component names to minimum versions, not {type(value).__name__}"
        )
    result: dict[str, str] = {}
    for component, version in value.items():
        if not isinstance(component, str) or not component:
            raise InvalidArgument(f"versions has an invalid component name {component!r}")
        if not isinstance(version, str) or not version:
            raise InvalidArgument(
                f"versions[{component!r}] must be a version string, not {version!r}"
            )
        result[component] = version
    return result


def spec_options(
    *,
    exclusive_resources: object = (),
    shared_resources: object = (),
    task_group: object = None,
    depends_on: object = (),
    immediate: object = False,
    deferred: object = True,
    versions: object = None,
    priority: object = 0,
    not_before: object = None,
    timeout: object = None,
    retries: object = 0,
    retry_backoff: object = None,
    allow_failure: object = False,
    unique_key: object = None,
    worker_type: object = "worker",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Validate dispatch options; return the TaskSpec fields other than kind, name, payload.

    See :meth:`taskengine.Engine.dispatch` for what each option means.
    """
    run_now = check_bool(immediate, "immediate")
    queued = check_bool(deferred, "deferred")
    if not queued and not run_now:
        raise InvalidArgument("immediate and deferred cannot both be False")

    exclusive = _strings(exclusive_resources, "exclusive_resources")
    shared = _strings(shared_resources, "shared_resources")
    both = set(exclusive).intersection(shared)
    if both:
        raise InvalidArgument(
            f"resource {sorted(both)[0]!r} is in both exclusive_resources and shared_resources"
        )

    group = None if task_group is None else check_id(task_group, "task_group")
    if isinstance(depends_on, str | bytes) or not isinstance(depends_on, Iterable):
        raise InvalidArgument(
            f"depends_on must be a list of tasks or task ids, not {type(depends_on).__name__}"
        )
    dependencies = (
        []
        if type(depends_on) is tuple and not depends_on
        else list(dict.fromkeys(check_id(d, "depends_on item") for d in depends_on))
    )

    if not is_int(priority) or not -INT32_MAX - 1 <= priority <= INT32_MAX:
        raise InvalidArgument(f"priority must be a 32-bit integer, not {priority!r}")
    retry = retry_policy(retries, retry_backoff)
    if not queued and retry["max_attempts"] > 1:
        raise InvalidArgument(
            "retries need deferred=True: with immediate=True, deferred=False a task runs once, "
            "in the dispatching process, or not at all"
        )
    if unique_key is not None and (not isinstance(unique_key, str) or not unique_key):
        raise InvalidArgument(f"unique_key must be a non-empty string or None, not {unique_key!r}")
    if worker_type not in WORKER_TYPES:
        raise InvalidArgument(
            f"worker_type must be one of {', '.join(WORKER_TYPES)}, not {worker_type!r}"
        )

    return {
        "priority": priority,
        "not_before": None
        if not_before is None
        else _not_before(not_before, now or datetime.now(UTC)),
        "exclusive_resources": exclusive,
        "shared_resources": shared,
        "task_group": group,
        "depends_on": dependencies,
        "allow_failure": check_bool(allow_failure, "allow_failure"),
        "requirements": {
            "worker_type": worker_type,
            "task_version": None,
            "architecture": None,
            "versions": _versions(versions),
        },
        "retry": retry,
        "timeout": _seconds(timeout, "timeout"),
        "unique_key": unique_key,
    }


DEFAULT_OPTIONS = spec_options()
"""The TaskSpec fields of a dispatch that leaves every option at its default. Read only."""
