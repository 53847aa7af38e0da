"""``Command``: a task that runs an argv natively, with no Python involved."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from taskengine.errors import InvalidArgument

__all__ = ["Command"]


@dataclass(frozen=True)
class Command:
    """An argv for the worker to run directly (no shell, no Python).

    ``argv`` is kept as a tuple of strings (path-like items are converted); ``env`` as a dict.

    Dispatch it like a function: ``engine.dispatch(Command(["sh", "-c", "echo hi"]))``. The
    task's result is ``{"returncode": int, "output": str}`` (the tail of its output); a
    non-zero exit status ends the task ``failed``.

    ``env``, when given, is laid over the worker's environment: each name is set to its value
    and the rest is inherited (``None``: the worker's environment unchanged). ``cwd`` is the
    working directory (``None``: the worker's). A program named without a ``/`` is looked up
    in the resulting ``PATH``.
    """

    argv: Sequence[str | os.PathLike[str]]
    env: Mapping[str, str] | None = None
    cwd: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        """Validate every field; raise :class:`InvalidArgument` naming the problem."""
        argv: Any = self.argv
        if isinstance(argv, str | bytes) or not isinstance(argv, Sequence):
            raise InvalidArgument(
                f"Command argv must be a list of strings, not {type(argv).__name__}"
                + (" (split it into a list, e.g. shlex.split)" if isinstance(argv, str) else "")
            )
        if not argv:
            raise InvalidArgument("Command argv is empty: it needs at least the program to run")
        items: list[str] = []
        for index, item in enumerate(argv):
            if isinstance(item, os.PathLike):
                item = os.fspath(item)
            if not isinstance(item, str):
                raise InvalidArgument(
                    f"Command argv[{index}] must be a string, not {type(item).__name__}"
                )
            if "\0" in item:
                raise InvalidArgument(f"Command argv[{index}] contains a NUL character")
            items.append(item)
        if not items[0]:
            raise InvalidArgument("Command argv[0] (the program) is empty")
        object.__setattr__(self, "argv", tuple(items))

        env: Any = self.env
        if env is not None:
            if not isinstance(env, Mapping):
                raise InvalidArgument(
                    f"Command env must map names to strings, not {type(env).__name__}"
                )
            for key, value in env.items():
                if not isinstance(key, str) or not key or "=" in key or "\0" in key:
                    raise InvalidArgument(f"Command env has an invalid variable name {key!r}")
                if not isinstance(value, str) or "\0" in value:
                    raise InvalidArgument(
                        f"Command env[{key!r}] must be a string without NUL, "
                        f"not {type(value).__name__}"
                    )
            object.__setattr__(self, "env", dict(env))

        cwd: Any = self.cwd
        if cwd is not None:
            if isinstance(cwd, os.PathLike):
                cwd = os.fspath(cwd)
            if not isinstance(cwd, str) or not cwd:
                raise InvalidArgument(f"Command cwd must be a non-empty path string, not {cwd!r}")
            object.__setattr__(self, "cwd", cwd)

    def __hash__(self) -> int:
        """Hash by argv, cwd and the environment's items."""
        env = tuple(sorted(self.env.items())) if self.env is not None else None
        return hash((tuple(self.argv), env, self.cwd))

    @property
    def name(self) -> str:
        """The program, ``argv[0]``: the task's name."""
        return cast(str, self.argv[0])

    def payload(self) -> dict[str, Any]:
        """Return the task payload the core stores: ``{"argv", "env", "cwd"}``."""
        return {
            "argv": [os.fspath(item) for item in self.argv],
            "env": dict(self.env) if self.env is not None else None,
            "cwd": None if self.cwd is None else os.fspath(self.cwd),
        }
