"""What the OWASP API Security tests share: fresh users through the edge, body scans."""

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from redis.asyncio import Redis

from services.auth.main import create_app
from services.fleet.infra import free_port
from shared.redis_keys import RedisKeys
from shared.settings import Settings
from tests.auth.support import make_settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

PASSWORD = "correct-horse-battery"
REPO = Path(__file__).resolve().parents[2]

# Strings that must never be in a response body: a bcrypt hash, the hash's column, sealed keys.
FORBIDDEN_IN_BODIES = ("$2b$", "$2a$", "password", "key_hash", "ciphertext", "nonce")


async def register(edge: httpx.AsyncClient, email: str | None = None) -> tuple[str, str]:
    """(user id, token) of a new user, or of the existing one for `email`."""
    email = email or f"sec-{secrets.token_hex(6)}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Security Tester"}
    response = await edge.post("/api/v1/auth/register", json=body)
    if response.status_code == 409:
        response = await edge.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return str(jwt.decode(token, options={"verify_signature": False})["sub"]), token
    assert response.status_code == 201, response.text
    return response.json()["user"]["id"], response.json()["token"]


async def admin_token(edge: httpx.AsyncClient) -> str:
    """A token of the suite's admin (the fleet's bootstrap admin)."""
    body = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = await edge.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def assert_no_secrets(response: httpx.Response, *secret_values: str) -> None:
    text = response.text
    for marker in (*FORBIDDEN_IN_BODIES, *secret_values):
        assert marker not in text, f"{marker!r} in {response.request.url.path}: {text}"


async def keeps_serving(
    edge: httpx.AsyncClient, token: str, redis_url: str, prefix: str, provider: str, model: str
) -> None:
    """The provider's workers answer the next chat, and leave no job unacknowledged (a worker
    acknowledges and deletes a job's entry once its reply is sent)."""
    body = {"provider": provider, "model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {token}"}
    response = await edge.post("/api/v1/chat", json=body, headers=headers)
    assert response.status_code == 200, response.text
    redis = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 10
        while await redis.xlen(RedisKeys(prefix).jobs(provider)):
            assert time.monotonic() < deadline, f"jobs left on {provider}'s stream"
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


def setting_default(name: str) -> int:
    """The default of an integer setting (`shared.settings.Settings`), as the test fleet runs."""
    value = Settings.model_fields[name].default
    assert isinstance(value, int)
    return value


@asynccontextmanager
async def auth_service(
    database_url: str, redis_url: str, data_dir: Path, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The auth service in process, started (its lifespan run) with `settings` on a Redis
    prefix of its own; its peer is 127.0.0.1 (httpx's ASGI transport)."""
    app: FastAPI = create_app(
        make_settings(
            database_url,
            data_dir,
            REDIS_URL=redis_url,
            REDIS_PREFIX=f"gw-sec-{secrets.token_hex(4)}",
            INTERNAL_SERVICE_TOKEN=secrets.token_urlsafe(24),
            **settings,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
            yield client


def production_env(tmp_path: Path, redis_url: str, database_url: str) -> dict[str, str]:
    """A clean production environment (nothing inherited but PATH): only what is given."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "NODE_ENV": "production",
        "DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "REDIS_PREFIX": f"gw-sec-{secrets.token_hex(4)}",
        "AUTH_PORT": str(free_port()),
        "KEYVAULT_PORT": str(free_port()),
        "AUTH_URL": "http://127.0.0.1:9",  # nothing listens: the services must stop before
        "KEYVAULT_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "INTERNAL_SERVICE_TOKEN": secrets.token_urlsafe(32),
    }


def start_and_wait(module: str, env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    """(exit code, output) of `python -m module args`, stopped by its PID if it does not exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=cwd,  # no .env file of the repo is read
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{module} kept running in production without its secret: {output!r}")
    return process.returncode, output.decode(errors="replace")


def private_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
