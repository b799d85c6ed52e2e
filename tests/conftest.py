"""Real infrastructure for the suite: Redis and PostgreSQL, and a running fleet.

Redis and PostgreSQL come from `REDIS_URL` / `DATABASE_URL` when set, else embedded servers are
started for the run. With `--redis-cluster` the run starts a Redis Cluster of three masters
instead (from the `redis-server` and `redis-cli` on PATH; skipped, saying why, without them) and
the fleet runs in cluster mode (`REDIS_CLUSTER=true`). Each run gets its own database and Redis
key prefix, so runs can share servers; every process a fixture starts is stopped by its PID,
also when a test fails.
"""

import asyncio
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.fleet.infra import (
    create_database,
    drop_database,
    embedded_postgres,
    embedded_redis,
    free_port,
)
from services.fleet.plan import FleetConfig, plan
from services.fleet.processes import Service, stop_all
from services.fleet.redis_cluster import MissingBinaries, binaries, local_cluster
from shared.providers import PROVIDERS
from tests import redis_support

RUN_ID = secrets.token_hex(4)
ADMIN_EMAIL = f"admin-{RUN_ID}@example.com"
ADMIN_PASSWORD = "correct-horse-battery"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-cluster",
        action="store_true",
        help="run against a Redis Cluster of three masters started for the run",
    )


def pytest_configure(config: pytest.Config) -> None:
    redis_support.CLUSTER = bool(config.getoption("--redis-cluster"))


@pytest.fixture(scope="session")
def run_dir() -> Iterator[Path]:
    """This run's own folder for server data and logs.

    Not pytest's tmp_path: pytest prunes old base folders, which would pull the data from under
    a run that is still going when several test runs share the machine.
    """
    with tempfile.TemporaryDirectory(prefix=f"gw-test-{RUN_ID}-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def redis_url(run_dir: Path) -> Iterator[str]:
    if redis_support.CLUSTER:
        try:
            binaries()
        except MissingBinaries as missing:
            pytest.skip(str(missing))
        with local_cluster(run_dir / "redis-cluster") as cluster:
            yield cluster.url
        return
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    with embedded_redis(run_dir / "redis") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server(run_dir: Path) -> Iterator[str]:
    """A DSN of a PostgreSQL server on which the suite may create databases."""
    if dsn := os.environ.get("DATABASE_URL"):
        yield dsn
        return
    with embedded_postgres(run_dir / "postgres", keep_data=False) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> Iterator[str]:
    name = f"gw_test_{RUN_ID}"
    dsn = asyncio.run(create_database(postgres_server, name))
    yield dsn
    asyncio.run(drop_database(postgres_server, name))


@pytest.fixture(scope="session")
def fleet_services(
    redis_url: str, database_url: str, run_dir: Path
) -> Iterator[tuple[FleetConfig, list[Service]]]:
    """The whole fleet (simulator, auth, keyvault, audit, a worker pool per provider, edge) as
    real processes, with their `Service` objects for the tests that stop and restart one."""
    data_dir = run_dir / "fleet"
    config = FleetConfig(
        redis_url=redis_url,
        database_url=database_url,
        data_dir=data_dir,
        edge_port=free_port(),
        auth_port=free_port(),
        keyvault_port=free_port(),
        worker_metrics_ports=tuple(free_port() for _ in PROVIDERS),
        simulator_port=free_port(),
        audit_port=free_port(),
        redis_prefix=f"gw-test-{RUN_ID}",
        log_dir=data_dir / "logs",
        extra_env={
            "BCRYPT_ROUNDS": "4",
            "REQUEST_TIMEOUT": "30s",
            "NODE_ENV": "test",
            "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # Every test comes from 127.0.0.1 and most register a user: the limits under test
            # are set per test (see tests/e2e/test_admission.py).
            "RATE_LIMIT_MAX": "100000",
            "AUTH_RATE_LIMIT_MAX": "100000",
            "LOGIN_CLIENT_MAX_FAILURES": "100000",
            "AUTH_CLIENT_MAX_FAILURES": "100000",
            # Many tests make providers fail on purpose: the shared fleet's breakers never
            # open, and a Retry-After (the simulator's 1 s) is not waited for. The tests of
            # breakers and retries run their own workers (tests/e2e/test_reliability_workers.py).
            "BREAKER_MIN_REQUESTS": "1000000",
            "RETRY_BASE_DELAY": "20ms",
            "RETRY_MAX_DELAY": "500ms",
            # Small enough for a test to go past them quickly; the suite's largest answer
            # (or stream) of its own is a few (hundred) KB.
            "UPSTREAM_MAX_BYTES": "262144",
            "UPSTREAM_MAX_STREAM_BYTES": "1048576",
            "REDIS_CLUSTER": "true" if redis_support.CLUSTER else "false",
        },
    )
    services = plan(config)
    try:
        for service in services:
            service.start()
            service.wait_healthy()
        yield config, services
    finally:
        stop_all(services)


@pytest.fixture(scope="session")
def fleet(fleet_services: tuple[FleetConfig, list[Service]]) -> FleetConfig:
    return fleet_services[0]


@pytest.fixture
async def edge(fleet: FleetConfig) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=fleet.edge_url, timeout=30.0) as client:
        yield client


@pytest.fixture
async def simulator(fleet: FleetConfig) -> httpx.AsyncClient:
    assert fleet.simulator_url
    async with httpx.AsyncClient(base_url=fleet.simulator_url, timeout=10.0) as client:
        yield client


@pytest.fixture
async def user_token(edge: httpx.AsyncClient) -> str:
    """A freshly registered user's token."""
    email = f"user-{secrets.token_hex(6)}@example.com"
    response = await edge.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "correct-horse-battery", "name": "Test User"},
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token
