"""The keyvault app on the run's own database and Redis prefix, with tokens we sign here."""

import base64
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from services.keyvault.main import create_app
from shared.settings import Settings
from shared.tokens import TokenSigner

DECRYPT_TOKEN = secrets.token_urlsafe(24)  # the workers'
INTERNAL_TOKEN = secrets.token_urlsafe(24)  # the edge's
AppFactory = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


def master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="session")
def signer() -> TokenSigner:
    key = Ed25519PrivateKey.generate()
    return TokenSigner(key, issuer="ai-gateway", audience="ai-gateway", expiry_seconds=3600)


@pytest.fixture(scope="session")
def master_keys() -> dict[int, str]:
    return {1: master_key(), 2: master_key()}


@pytest.fixture(scope="session")
def keyvault_settings(
    database_url: str, redis_url: str, run_dir: Path, signer: TokenSigner
) -> Callable[[str], Settings]:
    public_pem = signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()

    def make(master: str) -> Settings:
        values: dict[str, object] = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": f"gw-kv-{secrets.token_hex(3)}",
            "DATA_DIR": run_dir / "keyvault",
            "NODE_ENV": "test",
            "JWT_PUBLIC_KEY": public_pem,
            "KEYVAULT_MASTER_KEYS": master,
            "KEYVAULT_SERVICE_TOKEN": DECRYPT_TOKEN,
            "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
        }
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def keyvault(keyvault_settings: Callable[[str], Settings]) -> AppFactory:
    """Opens a keyvault app for a master-key configuration, as an HTTP client."""

    @asynccontextmanager
    async def open_app(master: str) -> AsyncIterator[httpx.AsyncClient]:
        app: FastAPI = create_app(keyvault_settings(master))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://kv") as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    return open_app


@pytest.fixture
async def kv(keyvault: AppFactory, master_keys: dict[int, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with keyvault(f"1:{master_keys[1]}") as client:
        yield client


def user_headers(signer: TokenSigner, user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {signer.issue(user_id, 'free')}"}


WORKER_HEADERS = {"Authorization": f"Bearer {DECRYPT_TOKEN}", "X-Service-Name": "worker-test"}
EDGE_HEADERS = {"Authorization": f"Bearer {INTERNAL_TOKEN}", "X-Service-Name": "edge-test"}
