"""The ``taskengine`` command line.

Every option can also be set by an environment variable, named in ``--help``: an option's
value on the command line wins over its variable. Errors print one line on stderr and exit
with status 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from taskengine._spec import TASK_STATES, store_url
from taskengine.errors import TaskEngineError

if TYPE_CHECKING:
    from taskengine.engine import Engine
    from taskengine.task import Task

__all__ = ["CliError", "main"]

PROG = "taskengine"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class CliError(Exception):
    """A problem with the command line or its environment, reported as one line."""


# -- options with environment variables ---------------------------------------------------


def _env_bool(name: str) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise CliError(f"${name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _env_value(name: str, convert: Callable[[str], Any], fallback: Any) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return fallback
    try:
        return convert(raw)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise CliError(f"${name}={raw!r}: {exc}") from None


def _option(
    parser: argparse.ArgumentParser,
    *flags: str,
    env: str,
    help: str,
    type: Callable[[str], Any] = str,
    default: Any = None,
    **kwargs: Any,
) -> None:
    """Add an option whose default comes from ``$env`` (and say so in its help)."""
    shown = f" (default: {default})" if default not in (None, "", False) else ""
    parser.add_argument(
        *flags,
        type=type,
        default=_env_value(env, type, default),
        help=f"{help}{shown} [env: {env}]",
        **kwargs,
    )


def _flag(parser: argparse.ArgumentParser, *flags: str, env: str, help: str) -> None:
    """Add a boolean flag that ``$env`` (1/true/yes/on) can also turn on."""
    parser.add_argument(
        *flags, action="store_true", default=_env_bool(env), help=f"{help} [env: {env}]"
    )


class _AppendOverDefault(argparse.Action):
    """Like ``action="append"``, but the first use on the command line replaces the default
    (which came from the environment) instead of adding to it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        marker = f"_{self.dest}_from_command_line"
        items = list(getattr(namespace, self.dest) or []) if hasattr(namespace, marker) else []
        setattr(namespace, marker, True)
        setattr(namespace, self.dest, [*items, values])


def _list_option(
    parser: argparse.ArgumentParser,
    *flags: str,
    env: str,
    help: str,
    env_format: str,
    convert: Callable[[str], list[Any]],
    item_type: Callable[[str], Any] = str,
    **kwargs: Any,
) -> None:
    """Add a repeatable option; ``$env`` gives the whole list (``env_format``)."""
    parser.add_argument(
        *flags,
        action=_AppendOverDefault,
        type=item_type,
        default=_env_value(env, convert, None),
        help=f"{help} [env: {env}, {env_format}]",
        **kwargs,
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be a positive integer, not {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be 0 or more, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be a positive number, not {text}")
    return value


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None


def _json_list(text: str) -> list[Any]:
    value = _json_value(text)
    if not isinstance(value, list):
        raise ValueError("must be a JSON list")
    return value


def _json_object(text: str) -> dict[str, Any]:
    value = _json_value(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {text!r}")
    return value


def _key_value(text: str) -> str:
    if "=" not in text or text.startswith("="):
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE, not {text!r}")
    return text


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _state(text: str) -> str:
    if text not in TASK_STATES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(TASK_STATES)}")
    return text


# -- the parser -----------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--url, --json and --debug, accepted before and after the subcommand."""
    default = argparse.SUPPRESS
    parser.add_argument(
        "--url",
        default=None if top else default,
        help="store URL, e.g. sqlite:///tasks.db or postgresql://user@host/db "
        "(default: $TASKENGINE_URL, else sqlite:///./taskengine.db) [env: TASKENGINE_URL]",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=_env_bool("TASKENGINE_JSON") if top else default,
        help="print machine-readable JSON [env: TASKENGINE_JSON]",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=_env_bool("TASKENGINE_DEBUG") if top else default,
        help="print tracebacks on errors [env: TASKENGINE_DEBUG]",
    )


def _dispatch_options(p: argparse.ArgumentParser, prefix: str) -> None:
    """The scheduling options `dispatch` and `submit` share; $TASKENGINE_<prefix>_* give
    their defaults."""
    _option(
        p, "--priority", env=f"TASKENGINE_{prefix}_PRIORITY", type=int, default=0, help="priority"
    )
    _list_option(
        p,
        "--exclusive",
        dest="exclusive",
        env=f"TASKENGINE_{prefix}_EXCLUSIVE",
        env_format="comma-separated",
        convert=_comma_list,
        metavar="RESOURCE",
        help="a resource the task needs alone (repeatable)",
    )
    _list_option(
        p,
        "--shared",
        dest="shared",
        env=f"TASKENGINE_{prefix}_SHARED",
        env_format="comma-separated",
        convert=_comma_list,
        metavar="RESOURCE",
        help="a resource the task shares with other shared holders (repeatable)",
    )
    _option(
        p,
        "--timeout",
        env=f"TASKENGINE_{prefix}_TIMEOUT",
        type=_positive_float,
        metavar="SECONDS",
        help="kill an attempt that runs longer",
    )
    _option(
        p,
        "--retries",
        env=f"TASKENGINE_{prefix}_RETRIES",
        type=_non_negative_int,
        default=0,
        help="attempts after a failure",
    )
    _option(
        p,
        "--group",
        env=f"TASKENGINE_{prefix}_GROUP",
        type=_positive_int,
        metavar="ID",
        help="the task group the task belongs to",
    )
    _list_option(
        p,
        "--depends-on",
        dest="depends_on",
        env=f"TASKENGINE_{prefix}_DEPENDS_ON",
        env_format="comma-separated ids",
        convert=lambda text: [_positive_int(item) for item in _comma_list(text)],
        item_type=_positive_int,
        metavar="ID",
        help="a task that must complete first (repeatable)",
    )
    _flag(p, "--wait", env=f"TASKENGINE_{prefix}_WAIT", help="wait for the task and show it")
    _option(
        p,
        "--wait-timeout",
        env=f"TASKENGINE_{prefix}_WAIT_TIMEOUT",
        type=_positive_float,
        metavar="SECONDS",
        help="with --wait: give up after this long (exit 2)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the ``taskengine`` argument parser (reads TASKENGINE_* variables now)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="taskengine: a durable task engine. Dispatch and inspect tasks, run "
        "workers, try the demo.",
        epilog="Each option can also be set through the environment variable shown in "
        "brackets; the command line wins.",
    )
    _common(parser, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _common(common, top=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str, parents: Sequence[argparse.ArgumentParser] = (common,)) -> Any:
        return sub.add_parser(name, help=help, description=help, parents=list(parents))

    add("install", "create or upgrade the store's schema (idempotent)")

    p = add("uninstall", "drop the store's schema and every task in it")
    _flag(p, "--yes", env="TASKENGINE_UNINSTALL_YES", help="really drop everything")

    p = add("dispatch", "queue one task of a Python function")
    p.add_argument("function", metavar="FUNC", help="the function, as package.module:function")
    _list_option(
        p,
        "--arg",
        dest="args",
        env="TASKENGINE_DISPATCH_ARGS",
        env_format="a JSON list of all arguments",
        convert=_json_list,
        item_type=_json_value,
        metavar="JSON",
        help="a positional argument as JSON, e.g. --arg 3 --arg '\"text\"' (repeatable)",
    )
    _option(
        p,
        "--kwargs",
        env="TASKENGINE_DISPATCH_KWARGS",
        type=_json_object,
        metavar="JSON",
        help="keyword arguments as a JSON object, e.g. '{\"size\": 2}'",
    )
    _flag(
        p,
        "--no-validate",
        env="TASKENGINE_DISPATCH_NO_VALIDATE",
        help="do not import the function's module here to check it exists",
    )
    _dispatch_options(p, "DISPATCH")

    p = add(
        "submit",
        "queue one command task: the command runs natively in its own process group (no "
        "Python); a non-zero exit ends the task failed",
    )
    p.add_argument(
        "command_argv",
        metavar="COMMAND",
        nargs=argparse.REMAINDER,
        help="the command and its arguments, after `--`, e.g. `taskengine submit -- make -j2`",
    )
    _list_option(
        p,
        "--env",
        dest="env",
        env="TASKENGINE_SUBMIT_ENV",
        env_format="comma-separated KEY=VALUE",
        convert=_comma_list,
        item_type=_key_value,
        metavar="KEY=VALUE",
        help="an environment variable for the command, over the worker's (repeatable)",
    )
    _option(
        p,
        "--cwd",
        env="TASKENGINE_SUBMIT_CWD",
        metavar="DIR",
        help="the command's working directory on the worker",
    )
    _dispatch_options(p, "SUBMIT")

    tasks = add("tasks", "list, show and cancel tasks")
    tasks_sub = tasks.add_subparsers(dest="tasks_command", metavar="ACTION", required=True)
    p = tasks_sub.add_parser("list", help="list tasks", parents=[common])
    _option(
        p, "--state", env="TASKENGINE_TASKS_STATE", type=_state, help="only tasks in this state"
    )
    _option(
        p,
        "--group",
        env="TASKENGINE_TASKS_GROUP",
        type=_positive_int,
        metavar="ID",
        help="only tasks of this group",
    )
    _option(
        p,
        "--limit",
        env="TASKENGINE_TASKS_LIMIT",
        type=_positive_int,
        default=100,
        help="at most this many",
    )
    _flag(p, "--newest-first", env="TASKENGINE_TASKS_NEWEST_FIRST", help="newest tasks first")
    p = tasks_sub.add_parser("show", help="show one task", parents=[common])
    p.add_argument("task_id", metavar="ID", type=_positive_int)
    p = tasks_sub.add_parser("cancel", help="cancel one task", parents=[common])
    p.add_argument("task_id", metavar="ID", type=_positive_int)
    from taskengine import _cli_retention  # tasks prune lives in its own module

    _cli_retention.add_parser(tasks_sub, common)

    from taskengine._cli_jobs import add_jobs_command

    add_jobs_command(add, common)

    from taskengine import _cli_logs  # the logs command lives in its own module

    _cli_logs.add_parser(add)

    p = add("workers", "list registered workers")
    _flag(p, "--all", env="TASKENGINE_WORKERS_ALL", help="include offline workers")

    sub.add_parser(
        "worker",
        help="run the native worker (taskengine-worker); arguments are passed on",
        description="Run the native taskengine-worker in place of this process. Every "
        "argument after `worker` is passed on (try `taskengine worker --help`); --url "
        "(or $TASKENGINE_URL, else sqlite:///./taskengine.db) is added when not among "
        "them. The executable is $TASKENGINE_WORKER_BINARY, else the installed one, "
        "else the one next to Python, else the one on $PATH.",
        add_help=False,
    )

    p = add(
        "demo",
        "run a demo: dispatch real tasks, run a worker on them, show a summary",
        parents=[],
    )
    p.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="store to use (default: a fresh SQLite file in a temporary directory; "
        "$TASKENGINE_URL is not used, so the demo never writes to your store by accident) "
        "[env: TASKENGINE_DEMO_URL]",
    )
    p.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the summary as JSON"
    )
    p.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="tracebacks on errors"
    )
    _option(
        p,
        "--tasks",
        env="TASKENGINE_DEMO_TASKS",
        type=_positive_int,
        default=40,
        help="Python function tasks to dispatch (ten commands are added)",
    )
    _option(
        p,
        "--concurrency",
        env="TASKENGINE_DEMO_CONCURRENCY",
        type=_positive_int,
        default=2,
        help="the worker's slots",
    )
    _option(
        p,
        "--timeout",
        env="TASKENGINE_DEMO_TIMEOUT",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="give up when the tasks take longer",
    )
    _flag(p, "--keep", env="TASKENGINE_DEMO_KEEP", help="keep the temporary directory")
    return parser


# -- output ------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False, default=str))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _short(value: Any, width: int = 60) -> str:
    text = " ".join(json.dumps(value, default=str).split()) if not isinstance(value, str) else value
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _show_task(task: Task) -> None:
    fields = [
        ("id", str(task.id)),
        ("kind", task.kind),
        ("name", task.name),
        ("state", task.state),
        ("reason", task.reason or "-"),
        ("attempt", str(task.attempt)),
        ("worker", task.worker or "-"),
        ("group", str(task.task_group) if task.task_group is not None else "-"),
        ("created", _iso(task.created_at)),
        ("started", _iso(task.started_at)),
        ("finished", _iso(task.finished_at)),
    ]
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        print(f"{key.ljust(width)}  {value}")
    if task.state == "completed" or task.result is not None:
        print(f"{'result'.ljust(width)}  {json.dumps(task.result)}")
    error = task.error
    if error:
        print(f"{'error'.ljust(width)}  {error.get('type')}: {error.get('message')}")
        frames = error.get("traceback") or []
        if frames:
            print("traceback (most recent call last):")
        for frame in frames:
            print(
                f'  File "{frame.get("filename")}", line {frame.get("lineno")}, in '
                f"{frame.get('name')}"
            )
            if frame.get("line"):
                print(f"    {frame.get('line')}")
            for name, text in (frame.get("locals") or {}).items():
                print(f"      {name} = {text}")


# -- commands ------------------------------------------------------------------------------


def _engine(args: argparse.Namespace) -> Engine:
    from taskengine.engine import connect

    return connect(args.url)


def _cmd_install(args: argparse.Namespace) -> int:
    engine = _engine(args)
    engine.install()
    version = engine.schema_version()
    if args.json:
        _print_json({"url": engine.url, "schema_version": version})
    else:
        print(f"installed schema version {version} in {engine.url}")
    return 0


def _cmd_uninstall(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CliError("uninstall drops every task in the store; add --yes to do it")
    engine = _engine(args)
    engine.uninstall()
    if args.json:
        _print_json({"url": engine.url, "uninstalled": True})
    else:
        print(f"uninstalled the schema from {engine.url}")
    return 0


def _scheduling(args: argparse.Namespace) -> dict[str, Any]:
    """The dispatch options `dispatch` and `submit` share, as keyword arguments."""
    return {
        "priority": args.priority,
        "exclusive_resources": args.exclusive or (),
        "shared_resources": args.shared or (),
        "timeout": args.timeout,
        "retries": args.retries,
        "task_group": args.group,
        "depends_on": args.depends_on or (),
    }


def _wait_showing_progress(task: Task, timeout: float | None, quiet: bool) -> None:
    """Wait for ``task``; unless ``quiet``, say on stderr each time its state changes (and
    why it waits), so a long wait is never silent."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = ""
    while True:
        task.refresh()
        line = task.state + (f" ({task.reason})" if task.reason and not task.done else "")
        if line != seen and not quiet:
            print(f"task {task.id}: {line}", file=sys.stderr, flush=True)
        seen = line
        if task.done:
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"task {task.id} is still {task.state} after {timeout}s")
        time.sleep(0.1)


def _report(task: Task, args: argparse.Namespace, verb: str) -> int:
    if args.wait:
        _wait_showing_progress(task, args.wait_timeout, quiet=args.json)
        if args.json:
            _print_json(task.as_dict())
        else:
            _show_task(task)
        return 0 if task.state == "completed" else 1
    if args.json:
        _print_json({"id": task.id})
    else:
        print(f"{verb} task {task.id}")
    return 0


def _cmd_dispatch(args: argparse.Namespace) -> int:
    engine = _engine(args)
    task = engine.dispatch(
        args.function,
        args=args.args or [],
        kwargs=args.kwargs,
        validate=not args.no_validate,
        **_scheduling(args),
    )
    return _report(task, args, "dispatched")


def _cmd_submit(args: argparse.Namespace) -> int:
    from taskengine.command import Command

    argv = list(args.command_argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise CliError("submit needs a command: taskengine submit [options] -- COMMAND [ARG...]")
    env = dict(item.split("=", 1) for item in args.env or [])
    engine = _engine(args)
    task = engine.dispatch(Command(argv, env=env or None, cwd=args.cwd), **_scheduling(args))
    return _report(task, args, "submitted")


def _cmd_tasks(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if args.tasks_command == "prune":
        from taskengine import _cli_retention

        return _cli_retention.run(args, engine)
    if args.tasks_command == "list":
        tasks = engine.list_tasks(
            state=args.state,
            task_group=args.group,
            limit=args.limit,
            newest_first=args.newest_first,
        )
        if args.json:
            _print_json([task.as_dict() for task in tasks])
            return 0
        rows = []
        for task in tasks:
            error = task.error
            outcome = (
                f"{error.get('type')}: {error.get('message')}" if error else _short(task.result)
            )
            duration = task.duration
            rows.append(
                [
                    str(task.id),
                    task.kind,
                    _short(task.name, 40),
                    task.state,
                    _iso(task.created_at),
                    "-" if duration is None else f"{duration.total_seconds():.3f}s",
                    _short(task.reason or "-", 50),
                    _short(outcome, 50) if task.done else "-",
                ]
            )
        headers = ["id", "kind", "name", "state", "created", "took", "reason", "outcome"]
        print(_table(headers, rows))
        return 0
    if args.tasks_command == "show":
        task = engine.get_task(args.task_id)
    else:
        task = engine.cancel_task(args.task_id)
    if args.json:
        _print_json(task.as_dict())
    else:
        _show_task(task)
    return 0


def _cmd_workers(args: argparse.Namespace) -> int:
    workers = _engine(args).workers(include_offline=args.all)
    if args.json:
        _print_json(
            [
                {
                    **vars(w),
                    "started_at": _iso(w.started_at),
                    "last_heartbeat": _iso(w.last_heartbeat),
                }
                for w in workers
            ]
        )
        return 0
    rows = [
        [
            str(w.id),
            w.name,
            w.worker_type,
            w.hostname,
            str(w.pid),
            "online" if w.online else "offline",
            _iso(w.last_heartbeat),
        ]
        for w in workers
    ]
    print(_table(["id", "name", "type", "host", "pid", "status", "last heartbeat"], rows))
    return 0


def _cmd_jobs(args: argparse.Namespace) -> int:
    from taskengine._cli_jobs import run_jobs_command

    return run_jobs_command(args)


def _cmd_worker(args: argparse.Namespace) -> NoReturn:
    from taskengine._binaries import find_worker_binary

    binary = find_worker_binary()
    forwarded = list(args.worker_args)
    if not any(a == "--url" or a.startswith("--url=") for a in forwarded):
        forwarded = ["--url", store_url(args.url), *forwarded]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, [binary, *forwarded])


def _cmd_demo(args: argparse.Namespace) -> int:
    from taskengine.demo import run_demo

    return run_demo(
        url=args.url or os.environ.get("TASKENGINE_DEMO_URL") or None,
        function_tasks=args.tasks,
        concurrency=args.concurrency,
        timeout=args.timeout,
        keep=args.keep,
        as_json=args.json,
    )


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "install": _cmd_install,
    "uninstall": _cmd_uninstall,
    "dispatch": _cmd_dispatch,
    "submit": _cmd_submit,
    "tasks": _cmd_tasks,
    "jobs": _cmd_jobs,
    "workers": _cmd_workers,
    "logs": lambda args: _cli_logs_run(args),
    "worker": _cmd_worker,
    "demo": _cmd_demo,
}


def _cli_logs_run(args: argparse.Namespace) -> int:
    from taskengine import _cli_logs

    return _cli_logs.run(args)


def _fail(message: str, exc: BaseException | None, debug: bool) -> int:
    if debug and exc is not None:
        traceback.print_exception(exc)
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _split_worker(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """For ``[global options] worker ARGS...``, return the part up to ``worker`` and ARGS
    (passed on untouched, even ``--help``); None for any other command."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--url":
            index += 2
        elif token.startswith("-"):
            index += 1
        else:
            if token == "worker":
                return argv[: index + 1], argv[index + 1 :]
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    debug = _env_bool_quiet("TASKENGINE_DEBUG")
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        split = _split_worker(arguments)
        if split is None:
            args = build_parser().parse_args(arguments)
        else:
            args = build_parser().parse_args(split[0])
            args.worker_args = split[1]
    except CliError as exc:
        return _fail(str(exc), exc, debug)
    debug = bool(getattr(args, "debug", debug))
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except CliError as exc:
        return _fail(str(exc), exc, debug)
    except TaskEngineError as exc:
        return _fail(f"{type(exc).__name__}: {exc}", exc, debug)
    except TimeoutError as exc:
        return _fail(f"timed out: {exc}", exc, debug)
    except Exception as exc:
        return _fail(f"{type(exc).__name__}: {exc}", exc, debug)


def _env_bool_quiet(name: str) -> bool:
    try:
        return _env_bool(name)
    except CliError:
        return False


if __name__ == "__main__":
    sys.exit(main())
