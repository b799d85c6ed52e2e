"""Fixtures for the auth tests: the auth app on the run's own database and Redis prefix."""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from services.auth.main import create_app
from shared.redis_keys import RedisKeys
from shared.settings import Settings
from tests.auth.support import (
    ADMIN_EMAIL,
    LATE_ADMIN_EMAIL,
    SERVICE_TOKEN,
    make_settings,
    register,
)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, run_dir: Path) -> Settings:
    return make_settings(
        database_url,
        run_dir / "auth-data",
        REDIS_URL=redis_url,
        REDIS_PREFIX=f"gw-auth-{secrets.token_hex(4)}",
        ADMIN_EMAILS=f" {ADMIN_EMAIL.upper()} , {LATE_ADMIN_EMAIL}",
        INTERNAL_SERVICE_TOKEN=SERVICE_TOKEN,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
        yield http


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def keys(settings: Settings) -> RedisKeys:
    return RedisKeys(settings.redis_prefix)


@pytest.fixture
def email() -> str:
    return f"user_{secrets.token_hex(6)}@example.com"


@pytest.fixture(scope="session")
async def admin_token(app: FastAPI) -> str:
    """A token of the run's admin (registered once; ADMIN_EMAILS lists the address)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
        token: str = (await register(http, ADMIN_EMAIL))["token"]
    return token
