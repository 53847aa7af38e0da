"""Fixtures: stores on both backends, an installed engine, real native workers.

- ``store_url``: parametrised over ``sqlite`` (a file in ``tmp_path``) and ``postgresql`` (a
  fresh database on the server named by ``$TASKENGINE_TEST_POSTGRES``, created and dropped
  with ``psql``). Without a reachable PostgreSQL the PostgreSQL cases are skipped, or fail
  when ``$CI`` or ``$TASKENGINE_REQUIRE_POSTGRES`` is set.
- ``engine``: ``taskengine.connect(store_url)`` with the schema installed.
- ``worker``: a factory starting the real ``taskengine-worker`` on that store, importing
  ``sample_tasks``; every worker started is stopped (SIGTERM, then SIGKILL after 10 s) at
  teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    from taskengine.engine import Engine

TESTS_DIR = Path(__file__).resolve().parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STOP_GRACE = 10.0


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def postgres_required() -> bool:
    """Whether a missing PostgreSQL must fail the tests instead of skipping them."""
    return _truthy("CI") or _truthy("TASKENGINE_REQUIRE_POSTGRES")


def admin_url() -> str:
    """The PostgreSQL URL the tests create their databases through."""
    return os.environ.get("TASKENGINE_TEST_POSTGRES") or DEFAULT_ADMIN_URL


def psql(url: str, sql: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run one SQL statement with ``psql``; raise CalledProcessError with its stderr."""
    return subprocess.run(
        ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )


@cache
def postgres_problem() -> str | None:
    """Why PostgreSQL can't be used for tests, or None when it can (checked once)."""
    if shutil.which("psql") is None:
        return "psql is not installed"
    url = admin_url()
    try:
        psql(url, "SELECT 1", timeout=15)
    except subprocess.CalledProcessError as exc:
        return f"cannot connect to {url}: {exc.stderr.strip()}"
    except subprocess.TimeoutExpired:
        return f"connecting to {url} timed out"
    return None


def database_url(admin: str, name: str) -> str:
    """``admin`` with its database replaced by ``name``."""
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store's URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    problem = postgres_problem()
    if problem is not None:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required ($CI or $TASKENGINE_REQUIRE_POSTGRES): {problem}")
        pytest.skip(f"PostgreSQL unavailable: {problem}")
    admin = admin_url()
    name = f"te_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    psql(admin, f'CREATE DATABASE "{name}"')
    try:
        yield database_url(admin, name)
    finally:
        psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(store_url: str) -> Engine:
    """A connected engine on ``store_url`` with the schema installed."""
    import taskengine

    engine = taskengine.connect(store_url)
    engine.install()
    return engine


def worker_env(*extra_path: str | os.PathLike[str]) -> dict[str, str]:
    """The environment for a worker whose executors import ``sample_tasks``."""
    from taskengine._binaries import worker_environment

    return {
        **worker_environment(TESTS_DIR, *extra_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class WorkerProcess:
    """A running ``taskengine-worker`` started by the ``worker`` fixture."""

    process: subprocess.Popen[bytes]
    name: str
    url: str
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The worker's pid."""
        return self.process.pid

    def log(self) -> str:
        """Everything the worker wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def wait_registered(self, engine: Engine, timeout: float = 20.0) -> Any:
        """Wait until the worker shows in ``engine.workers()``; return its record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in engine.workers():
                if record.name == self.name:
                    return record
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.05)
        pytest.fail(f"worker {self.name} did not register within {timeout}s:\n{self.log()}")


@pytest.fixture
def worker(engine: Engine, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: ``worker(concurrency=2, imports=("sample_tasks",), extra_args=())`` starts
    the native worker on the engine's store."""
    from taskengine._binaries import find_worker_binary

    started: list[WorkerProcess] = []

    def start(
        concurrency: int = 2,
        imports: tuple[str, ...] = ("sample_tasks",),
        extra_args: tuple[str, ...] = (),
        heartbeat: float = 1,
    ) -> WorkerProcess:
        name = f"pytest-worker-{uuid.uuid4().hex[:8]}"
        argv = [find_worker_binary(), "--url", engine.url, "--name", name]
        for module in imports:
            argv += ["--import", module]
        argv += ["--concurrency", str(concurrency), "--heartbeat", f"{heartbeat:g}", *extra_args]
        log_path = tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=worker_env(),
                cwd=tmp_path,
            )
        handle = WorkerProcess(process, name, engine.url, log_path, argv)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        code = handle.stop()
        if code != 0:
            sys.stderr.write(f"worker {handle.name} exited with {code}; its log:\n{handle.log()}")


def executor_command(*imports: str) -> list[str]:
    """argv of a Python executor importing ``imports``."""
    argv = [sys.executable, "-m", "taskengine._executor"]
    for module in imports:
        argv += ["--import", module]
    return argv


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    """A ``test_e2e_workers.Cluster`` of worker processes, all stopped at teardown."""
    from test_e2e_workers import Cluster

    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.cleanup()
