"""Helpers shared by the auth tests."""

import secrets
from pathlib import Path
from typing import Any

import httpx

from shared.settings import Settings


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "DATA_DIR": data_dir,
        "NODE_ENV": "test",
        "BCRYPT_ROUNDS": 4,
        "JWT_EXPIRY": "1h",
        "JWT_PRIVATE_KEY": None,
        "JWT_PUBLIC_KEY": None,
        **overrides,
    }
    if values["NODE_ENV"] == "production" and "BCRYPT_ROUNDS" not in overrides:
        values["BCRYPT_ROUNDS"] = 12
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


# The auth tests' bootstrap admin (BOOTSTRAP_ADMIN_EMAIL, with PASSWORD), created at start.
ADMIN_EMAIL = f"root_{secrets.token_hex(4)}@example.com"
SERVICE_TOKEN = secrets.token_urlsafe(24)
PASSWORD = "securePassword123"


async def register(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "name": "John Doe"}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    message: str = error["message"]
    return message
