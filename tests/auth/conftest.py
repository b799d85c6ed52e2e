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
    PASSWORD,
    SERVICE_TOKEN,
    make_settings,
)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, run_dir: Path) -> Settings:
    return make_settings(
        database_url,
        run_dir / "auth-data",
        REDIS_URL=redis_url,
        REDIS_PREFIX=f"gw-auth-{secrets.token_hex(4)}",
        BOOTSTRAP_ADMIN_EMAIL=f" {ADMIN_EMAIL.upper()} ",
        BOOTSTRAP_ADMIN_PASSWORD=PASSWORD,
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
    """A token of the run's admin (the bootstrap account the app created at start)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
        body = {"email": ADMIN_EMAIL, "password": PASSWORD}
        response = await http.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token
