"""No registration grants a role; the first admin comes from the operator.

`ADMIN_EMAILS` once made whoever registered a listed address first an admin, with no email
verification: an outsider could race the operator to it. Now the first admin is an account
created at start from operator secrets (`BOOTSTRAP_ADMIN_EMAIL`, `BOOTSTRAP_ADMIN_PASSWORD`,
services/auth/bootstrap.py) or made one by `python -m services.auth make-admin EMAIL`.
"""

import secrets
from pathlib import Path

import httpx
import jwt
import pytest

from services.auth.bootstrap import BootstrapAdminError
from tests.security.support import auth_service

OPERATOR_PASSWORD = "operator-" + secrets.token_hex(8)
OUTSIDER_PASSWORD = "outsider-password"


def _email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(6)}@example.com"


async def _role(client: httpx.AsyncClient, path: str, email: str, password: str) -> str:
    """The role in the token that registering (or logging in) gives."""
    body = {"email": email, "password": password, "name": "Someone"}
    response = await client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    return str(claims["role"])


async def test_registering_a_listed_address_gives_a_plain_user(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    """A deployment still carrying `ADMIN_EMAILS` grants nothing through it."""
    listed = _email("ops")
    async with auth_service(
        database_url, redis_url, run_dir / "boot-listed", ADMIN_EMAILS=listed
    ) as auth:
        register = "/api/v1/auth/register"
        assert await _role(auth, register, listed, OUTSIDER_PASSWORD) == "user"
        login = "/api/v1/auth/login"
        assert await _role(auth, login, listed, OUTSIDER_PASSWORD) == "user"


async def test_the_bootstrap_admin_is_created_from_operator_secrets(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    email = _email("root")
    settings = {"BOOTSTRAP_ADMIN_EMAIL": email, "BOOTSTRAP_ADMIN_PASSWORD": OPERATOR_PASSWORD}
    async with auth_service(database_url, redis_url, run_dir / "boot-root", **settings) as auth:
        assert await _role(auth, "/api/v1/auth/login", email, OPERATOR_PASSWORD) == "admin"
        taken = await auth.post(
            "/api/v1/auth/register",
            json={"email": email, "password": OUTSIDER_PASSWORD, "name": "Racer"},
        )
        assert taken.status_code == 409


async def test_an_outsider_who_registered_the_bootstrap_address_first_stays_a_user(
    database_url: str, redis_url: str, run_dir: Path
) -> None:
    email = _email("raced")
    async with auth_service(database_url, redis_url, run_dir / "boot-race-1") as auth:
        assert await _role(auth, "/api/v1/auth/register", email, OUTSIDER_PASSWORD) == "user"
    settings = {"BOOTSTRAP_ADMIN_EMAIL": email, "BOOTSTRAP_ADMIN_PASSWORD": OPERATOR_PASSWORD}
    async with auth_service(database_url, redis_url, run_dir / "boot-race-2", **settings) as auth:
        assert await _role(auth, "/api/v1/auth/login", email, OUTSIDER_PASSWORD) == "user"
        refused = await auth.post(
            "/api/v1/auth/login", json={"email": email, "password": OPERATOR_PASSWORD}
        )
        assert refused.status_code == 401


@pytest.mark.parametrize(
    "settings",
    [
        {"BOOTSTRAP_ADMIN_EMAIL": "root@example.com"},
        {"BOOTSTRAP_ADMIN_PASSWORD": OPERATOR_PASSWORD},
        {"BOOTSTRAP_ADMIN_EMAIL": "root@example.com", "BOOTSTRAP_ADMIN_PASSWORD": "short"},
    ],
)
async def test_incomplete_or_weak_bootstrap_settings_stop_the_start(
    database_url: str, redis_url: str, run_dir: Path, settings: dict[str, str]
) -> None:
    with pytest.raises(BootstrapAdminError):
        async with auth_service(database_url, redis_url, run_dir / "boot-bad", **settings):
            pass
