"""The services the peers need: Redis and PostgreSQL, on loopback only.

Redis: the one at 127.0.0.1:6379 if it answers (one database number of its own, flushed
before each run), else a throwaway ``redis-server`` on a free port, without persistence.
PostgreSQL: the admin URL of ``$TASKENGINE_TEST_POSTGRES`` (scripts/ensure-postgres.sh exports
it), else postgresql://postgres@127.0.0.1:5432/postgres; one uniquely named database is created
per measurement and dropped after it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def redis_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(db: int) -> Iterator[str]:
    """Yield a Redis URL for database ``db``: the local server, or a throwaway one."""
    if redis_ping("127.0.0.1", 6379):
        yield f"redis://127.0.0.1:6379/{db}"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis at 127.0.0.1:6379 and no redis-server to start one")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not redis_ping("127.0.0.1", port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the throwaway redis-server did not start")
                time.sleep(0.05)
            print(f"compare: started a throwaway redis-server on 127.0.0.1:{port}")
            yield f"redis://127.0.0.1:{port}/{db}"
        finally:
            proc.terminate()
            proc.wait()


def flush_redis(url: str) -> None:
    """Empty the one Redis database the harness uses (never FLUSHALL)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def postgres_admin_url() -> str:
    return os.environ.get("TASKENGINE_TEST_POSTGRES") or DEFAULT_POSTGRES


@contextmanager
def scratch_database(admin_url: str, label: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    import psycopg

    name = f"bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
