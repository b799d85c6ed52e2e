"""Roles: the claim, the two bootstraps (BOOTSTRAP_ADMIN_*, make-admin) and the admin routes."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from services.auth.admin_command import make_admin
from services.auth.bootstrap import ensure_admin
from services.auth.users import UserRepository
from shared.redis_keys import RedisKeys
from shared.settings import Settings
from shared.tokens import TokenVerifier
from tests.auth.support import (
    PASSWORD,
    assert_error,
    bearer,
    register,
)

ROOT = Path(__file__).resolve().parents[2]


def verify(app: FastAPI, token: str) -> str:
    verifier: TokenVerifier = app.state.auth.verifier
    return verifier.verify(token).role


async def test_role_claim_in_every_token(
    client: httpx.AsyncClient, app: FastAPI, email: str
) -> None:
    token = (await register(client, email))["token"]
    assert verify(app, token) == "user"
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert verify(app, login.json()["token"]) == "user"
    refreshed = await client.post("/api/v1/auth/refresh", headers=bearer(token))
    assert verify(app, refreshed.json()["token"]) == "user"


async def test_the_bootstrap_admin_is_created_at_start(app: FastAPI, admin_token: str) -> None:
    assert verify(app, admin_token) == "admin"


async def test_the_bootstrap_makes_an_account_holding_its_password_an_admin(
    app: FastAPI, email: str
) -> None:
    """An operator who registered the address first (with the bootstrap password) gets the
    role at the next start; nobody else's account does (tests/security/test_admin_bootstrap)."""
    users: UserRepository = app.state.users
    hashed = await app.state.auth.passwords.hash(PASSWORD)
    created = await users.create(email, "Operator", hashed)
    assert created.role == "user"
    assert await ensure_admin((email, PASSWORD), users, app.state.auth.passwords)
    promoted = await users.by_id(created.id)
    assert promoted is not None and promoted.role == "admin"


async def test_make_admin_function(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, email: str
) -> None:
    user_id = (await register(client, email))["user"]["id"]
    assert await make_admin(settings, email.upper())
    user = await app.state.users.by_id(user_id)
    assert user.role == "admin"
    assert not await make_admin(settings, "nobody-" + email)


async def test_make_admin_command(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, email: str
) -> None:
    user_id = (await register(client, email))["user"]["id"]
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "DATA_DIR": str(settings.data_dir),
        "NODE_ENV": "test",
    }

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "services.auth", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60)

    assert run("make-admin", email).returncode == 0
    assert (await app.state.users.by_id(user_id)).role == "admin"
    assert run("make-admin", "nobody-" + email).returncode == 1
    assert run("make-admin").returncode == 2


async def test_admin_routes_refuse_users(client: httpx.AsyncClient, email: str) -> None:
    registered = await register(client, email)
    user_id, token = registered["user"]["id"], registered["token"]
    calls = [
        ("GET", f"/api/v1/admin/users/{user_id}", None),
        ("PUT", f"/api/v1/admin/users/{user_id}/tier", {"tier": "paid"}),
        ("PUT", f"/api/v1/admin/users/{user_id}/limits", {"requests": 5}),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=bearer(token))
        assert_error(response, 403, "authorization_error")
        assert_error(await client.request(method, url, json=body), 401, "authentication_error")


async def test_registration_publishes_tier_defaults(
    client: httpx.AsyncClient, email: str, redis: Redis, keys: RedisKeys
) -> None:
    user_id = (await register(client, email))["user"]["id"]
    published = await redis.hgetall(keys.limits("user", user_id))
    assert published == {"requests": "100", "window_seconds": "900", "tokens_per_minute": "0"}


async def test_admin_sets_tier_and_limits(
    client: httpx.AsyncClient, admin_token: str, email: str, redis: Redis, keys: RedisKeys
) -> None:
    user_id = (await register(client, email))["user"]["id"]
    base = f"/api/v1/admin/users/{user_id}"
    admin = bearer(admin_token)

    async def put(path: str, body: object) -> dict[str, object]:
        response = await client.put(base + path, json=body, headers=admin)
        assert response.status_code == 200, response.text
        result: dict[str, object] = response.json()
        return result

    async def published() -> dict[str, str]:
        value: dict[str, str] = await redis.hgetall(keys.limits("user", user_id))
        return value

    paid = await put("/tier", {"tier": "paid"})
    assert paid["tier"] == "paid"
    assert paid["effective_limits"] == {
        "requests": 1000,
        "window_seconds": 3600,
        "tokens_per_minute": 0,
    }
    assert await published() == {
        "requests": "1000",
        "window_seconds": "3600",
        "tokens_per_minute": "0",
    }

    custom = await put("/limits", {"requests": 50, "window": "1m"})
    assert custom["limits"] == {"requests": 50, "window": "1m", "tokens_per_minute": None}
    assert await published() == {"requests": "50", "window_seconds": "60", "tokens_per_minute": "0"}

    # A field left out is kept; null clears it back to the tier's default.
    await put("/limits", {"tokens_per_minute": 2000})
    cleared = await put("/limits", {"requests": None})
    assert cleared["limits"] == {"requests": None, "window": "1m", "tokens_per_minute": 2000}
    assert await published() == {
        "requests": "1000",
        "window_seconds": "60",
        "tokens_per_minute": "2000",
    }

    view = await client.get(base, headers=admin)
    assert view.status_code == 200
    body = view.json()
    assert set(body) == {
        "id",
        "email",
        "name",
        "tier",
        "role",
        "limits",
        "effective_limits",
        "budget",
    }
    assert (body["id"], body["email"], body["tier"], body["role"]) == (
        user_id,
        email,
        "paid",
        "user",
    )
    assert "$2b$" not in view.text and "password" not in view.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tier", {"tier": "gold"}),
        ("/tier", {}),
        ("/limits", {"requests": 0}),
        ("/limits", {"requests": "5"}),
        ("/limits", {"window": "soon"}),
        ("/limits", {"window": "0s"}),
        ("/limits", {"tokens_per_minute": -1}),
        ("/limits", {"max": 5}),
    ],
)
async def test_admin_validation(
    client: httpx.AsyncClient, admin_token: str, path: str, body: object
) -> None:
    response = await client.put(
        f"/api/v1/admin/users/usr_x{path}", json=body, headers=bearer(admin_token)
    )
    assert_error(response, 400, "validation_error")


async def test_admin_unknown_user_is_404(client: httpx.AsyncClient, admin_token: str) -> None:
    for method, path, body in [
        ("GET", "", None),
        ("PUT", "/tier", {"tier": "paid"}),
        ("PUT", "/limits", {"requests": 3}),
    ]:
        url = f"/api/v1/admin/users/usr_missing{path}"
        response = await client.request(method, url, json=body, headers=bearer(admin_token))
        assert_error(response, 404, "validation_error")
