"""Fixtures for the auth tests: the auth app on the run's own database (tests/conftest.py)."""

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.auth.main import create_app
from shared.settings import Settings
from tests.auth.support import make_settings


@pytest.fixture(scope="session")
def settings(database_url: str, run_dir: Path) -> Settings:
    return make_settings(database_url, run_dir / "auth-data")


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


@pytest.fixture
def email() -> str:
    return f"user_{secrets.token_hex(6)}@example.com"
