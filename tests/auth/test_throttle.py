"""Login throttling per (account, client) and per client; production's bcrypt floor."""

import secrets

import httpx
import pydantic
import pytest
from redis.asyncio import Redis

from shared.redis_keys import RedisKeys
from shared.settings import Settings
from tests.auth.support import PASSWORD, assert_error, register


def client_ip() -> str:
    """A fresh client address (the ASGI peer, 127.0.0.1, is a trusted proxy by default)."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


async def login(client: httpx.AsyncClient, email: str, password: str, ip: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip},
    )


async def test_an_account_is_locked_for_the_client_that_failed_at_it(
    client: httpx.AsyncClient, email: str, redis: Redis, keys: RedisKeys
) -> None:
    await register(client, email)
    guesser = client_ip()
    for _ in range(5):  # LOGIN_MAX_FAILURES
        assert (await login(client, email, "wrong-password", guesser)).status_code == 401
    locked = await login(client, email, PASSWORD, guesser)
    assert_error(locked, 429, "rate_limit_error")
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    assert (await login(client, email, PASSWORD, client_ip())).status_code == 200
    names = [name async for name in redis.scan_iter(match=keys.login_failures("*", "*"))]
    assert names and not any(email in name or email.split("@")[0] in name for name in names)


async def test_success_forgets_failures(client: httpx.AsyncClient, email: str) -> None:
    await register(client, email)
    ip = client_ip()
    for _ in range(2):
        for _ in range(4):
            assert (await login(client, email, "wrong-password", ip)).status_code == 401
        assert (await login(client, email, PASSWORD, ip)).status_code == 200


async def test_unknown_email_throttled_alike(client: httpx.AsyncClient, email: str) -> None:
    guesser = client_ip()
    for _ in range(5):
        response = await login(client, email, "wrong-password", guesser)
        assert_error(response, 401, "authentication_error")
    assert_error(await login(client, email, PASSWORD, guesser), 429, "rate_limit_error")


async def test_client_locked_after_failures(client: httpx.AsyncClient, email: str) -> None:
    await register(client, email)
    ip = client_ip()
    for i in range(20):  # LOGIN_CLIENT_MAX_FAILURES, each on another account
        assert (await login(client, f"{i}-{email}", "wrong-password", ip)).status_code == 401
    locked = await login(client, email, PASSWORD, ip)
    assert_error(locked, 429, "rate_limit_error")
    assert "Retry-After" in locked.headers
    assert (await login(client, email, PASSWORD, client_ip())).status_code == 200


def test_production_refuses_weak_bcrypt() -> None:
    base: dict[str, object] = {"NODE_ENV": "production"}
    with pytest.raises(pydantic.ValidationError, match="BCRYPT_ROUNDS"):
        Settings(_env_file=None, **base, BCRYPT_ROUNDS=11)  # type: ignore[arg-type]
    assert Settings(_env_file=None, **base, BCRYPT_ROUNDS=12).bcrypt_rounds == 12  # type: ignore[arg-type]
    assert Settings(_env_file=None, NODE_ENV="test", BCRYPT_ROUNDS=4).bcrypt_rounds == 4  # type: ignore[arg-type]
