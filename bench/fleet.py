"""The fleet under test: its own Redis prefix and database, stopped by PID on exit."""

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.fleet.infra import (
    RedisServer,
    create_database,
    drop_database,
    embedded_postgres,
    free_port,
)
from services.fleet.plan import FleetConfig, plan
from services.fleet.processes import Service, stop_all
from services.fleet.redis_cluster import local_cluster

LOGS = Path(".data/bench-logs")  # the last `make bench` run's service logs, kept for reading
PROVIDER = "deepseek"
MODEL = "deepseek-chat"


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The tree of the git revision `ref`, in a temporary directory (`git archive`)."""
    with tempfile.TemporaryDirectory(prefix="gw-bench-code-") as where:
        archive = subprocess.run(["git", "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
        yield Path(where)


@dataclass(frozen=True)
class Fleet:
    config: FleetConfig
    services: list[Service]
    redis_pid: int | None  # None: an external Redis (REDIS_URL)
    postgres_pid: int | None  # None: an external PostgreSQL (DATABASE_URL)

    @property
    def cluster(self) -> bool:
        """Whether the fleet runs on a Redis Cluster."""
        return self.config.extra_env.get("REDIS_CLUSTER") == "true"

    @property
    def simulator_url(self) -> str:
        assert self.config.simulator_url is not None
        return self.config.simulator_url

    def pids(self) -> dict[str, int]:
        found = {s.name: s.process.pid for s in self.services if s.process is not None}
        if self.redis_pid is not None:
            found["redis"] = self.redis_pid
        if self.postgres_pid is not None:
            found["postgres"] = self.postgres_pid
        return found


def _postmaster_pid(pgdata: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    return None


def cluster_masters() -> int:
    """`BENCH_CLUSTER_MASTERS=N`: run on a local Redis Cluster of N masters (0: no cluster)."""
    return int(os.environ.get("BENCH_CLUSTER_MASTERS") or 0)


@contextlib.contextmanager
def _redis(run_dir: Path) -> Iterator[tuple[str, int | None]]:
    if masters := cluster_masters():
        with local_cluster(run_dir / "redis-cluster", masters=masters) as cluster:
            yield cluster.url, None
        return
    if url := os.environ.get("REDIS_URL"):
        yield url, None
        return
    server = RedisServer(run_dir / "redis")
    try:
        server.start()
        assert server.process is not None
        yield server.url, server.process.pid
    finally:
        server.stop()


def env_cluster() -> str:
    """REDIS_CLUSTER as given: a REDIS_URL naming a node of an operator's cluster."""
    return os.environ.get("REDIS_CLUSTER", "false")


@contextlib.contextmanager
def _postgres(run_dir: Path) -> Iterator[tuple[str, int | None]]:
    if dsn := os.environ.get("DATABASE_URL"):
        yield dsn, None
        return
    pgdata = run_dir / "postgres"
    with embedded_postgres(pgdata, keep_data=False) as dsn:
        yield dsn, _postmaster_pid(pgdata)


@contextlib.contextmanager
def running_fleet(
    rate_limit_max: int,
    providers: tuple[str, ...] = (PROVIDER,),
    logs: Path = LOGS,
    code: Path | None = None,
) -> Iterator[Fleet]:
    """Simulator, auth, keyvault, audit, a worker pool per provider (`deepseek` by default)
    and one edge process, configured as in production except for a rate limit and an
    open-stream cap high enough not to refuse the load, run from the checkout at `code`
    (default: this one). The services' logs are copied to `logs` when they stop."""
    run_id = secrets.token_hex(4)
    with contextlib.ExitStack() as stack:
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gw-bench-")))
        redis_url, redis_pid = stack.enter_context(_redis(run_dir))
        server_dsn, postgres_pid = stack.enter_context(_postgres(run_dir))
        database = f"gw_bench_{run_id}"
        database_url = asyncio.run(create_database(server_dsn, database))
        stack.callback(lambda: asyncio.run(drop_database(server_dsn, database)))
        data_dir = run_dir / "fleet"
        config = FleetConfig(
            redis_url=redis_url,
            database_url=database_url,
            data_dir=data_dir,
            edge_port=free_port(),
            auth_port=free_port(),
            keyvault_port=free_port(),
            simulator_port=free_port(),
            # Only the last request is kept: recording is simulator work, not gateway work.
            simulator_args=("--record-limit", "1"),
            worker_metrics_ports=tuple(free_port() for _ in providers),
            audit_port=free_port(),
            providers=providers,
            redis_prefix=f"gw-bench-{run_id}",
            log_dir=data_dir / "logs",
            extra_env={
                "RATE_LIMIT_MAX": str(rate_limit_max),
                "MAX_OPEN_STREAMS": str(rate_limit_max),
                "WEB_CONCURRENCY": "1",
                "REDIS_CLUSTER": "true" if cluster_masters() else env_cluster(),
            },
        )
        services = plan(config)
        for service in services:
            service.cwd = code
        # Callbacks run last-in first-out: the services stop, then their logs are kept.
        stack.callback(shutil.copytree, data_dir / "logs", logs, dirs_exist_ok=True)
        stack.callback(stop_all, services)
        for service in services:
            service.start()
            service.wait_healthy()
        yield Fleet(config, services, redis_pid, postgres_pid)
