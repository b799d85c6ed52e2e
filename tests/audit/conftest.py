"""A private audit database and Redis prefix per test, and audit processes started on them."""

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis

from services.audit.main import MIGRATIONS, SERVICE
from services.fleet.infra import free_port
from services.fleet.processes import Service
from shared.redis_keys import RedisKeys
from tests.audit.support import HMAC_KEYS
from tests.databases import migrated_database


@pytest.fixture
def audit_db(postgres_server: str) -> Iterator[str]:
    with migrated_database(postgres_server, "gw_audit", SERVICE, MIGRATIONS) as dsn:
        yield dsn


@pytest.fixture
def audit_keys() -> RedisKeys:
    return RedisKeys(f"gw-audit-{secrets.token_hex(4)}")


@pytest.fixture
async def redis(redis_url: str, audit_keys: RedisKeys) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.delete(audit_keys.audit())
    await client.aclose()


@pytest.fixture
async def db(audit_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(audit_db)
    yield conn
    await conn.close()


def _public_pem() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@pytest.fixture
def audit_service(
    redis_url: str, audit_db: str, audit_keys: RedisKeys, run_dir: Path
) -> Iterator[Callable[[], Service]]:
    """Starts audit processes on the private prefix and database; all stopped at the end."""
    started: list[Service] = []
    port = free_port()

    def start() -> Service:
        env = {
            "REDIS_URL": redis_url,
            "DATABASE_URL": audit_db,
            "REDIS_PREFIX": audit_keys.prefix,
            "AUDIT_PORT": str(port),
            "JWT_PUBLIC_KEY": _public_pem(),
            "RECLAIM_IDLE": "1s",
            "AUDIT_HMAC_KEYS": HMAC_KEYS,
            "NODE_ENV": "test",
        }
        service = Service(
            "audit-test",
            ["-m", "services.audit"],
            env,
            health_url=f"http://127.0.0.1:{port}/health/ready",
            log_path=run_dir / "audit-tests" / f"audit-{audit_keys.prefix}.log",
        )
        started.append(service)
        service.start()
        service.wait_healthy()
        return service

    try:
        yield start
    finally:
        for service in started:
            service.stop()
