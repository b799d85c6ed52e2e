"""Logout and refresh rotation through the jti deny-list in Redis."""

import asyncio
from dataclasses import replace

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from services.auth.deps import Components
from services.auth.revocation import Revocations
from services.auth.throttle import LoginThrottle
from shared.redis_keys import RedisKeys
from shared.tokens import TokenVerifier
from tests.auth.support import assert_error, bearer, register


def revoked(app: FastAPI, keys: RedisKeys, token: str) -> str:
    """The deny-list entry of `token`."""
    verifier: TokenVerifier = app.state.auth.verifier
    claims = verifier.verify(token)
    return keys.revoked(claims.sub, claims.jti)


async def test_logout_revokes(
    client: httpx.AsyncClient, app: FastAPI, email: str, redis: Redis, keys: RedisKeys
) -> None:
    token = (await register(client, email))["token"]
    response = await client.post("/api/v1/auth/logout", headers=bearer(token))
    assert response.status_code == 204 and response.content == b""
    name = revoked(app, keys, token)
    assert await redis.get(name) == "1"
    assert 3500 < await redis.ttl(name) <= 3600  # the token's remaining life (JWT_EXPIRY=1h)
    for method, url in [
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/refresh"),
        ("GET", "/api/v1/api-keys"),
    ]:
        refused = await client.request(method, url, headers=bearer(token))
        assert assert_error(refused, 401, "authentication_error") == "Token revoked"


async def test_logout_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/v1/auth/logout"), 401, "authentication_error")
    response = await client.post("/api/v1/auth/logout", headers=bearer("not.a.token"))
    assert_error(response, 401, "authentication_error")


async def test_refresh_rotates(
    client: httpx.AsyncClient, app: FastAPI, email: str, redis: Redis, keys: RedisKeys
) -> None:
    first = (await register(client, email))["token"]
    response = await client.post("/api/v1/auth/refresh", headers=bearer(first))
    assert response.status_code == 200, response.text
    second = response.json()["token"]
    assert await redis.exists(revoked(app, keys, first))
    reused = await client.post("/api/v1/auth/refresh", headers=bearer(first))
    assert assert_error(reused, 401, "authentication_error") == "Token revoked"
    third = await client.post("/api/v1/auth/refresh", headers=bearer(second))
    assert third.status_code == 200
    assert not await redis.exists(revoked(app, keys, third.json()["token"]))


async def test_concurrent_refresh_only_one_wins(client: httpx.AsyncClient, email: str) -> None:
    token = (await register(client, email))["token"]
    responses = await asyncio.gather(
        *(client.post("/api/v1/auth/refresh", headers=bearer(token)) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [200] + [401] * 5


async def test_redis_down_is_503(client: httpx.AsyncClient, app: FastAPI, email: str) -> None:
    token = (await register(client, email))["token"]
    live: Components = app.state.auth
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    keys = live.revocations.keys
    app.state.auth = replace(
        live,
        revocations=Revocations(dead, keys),
        throttle=LoginThrottle(dead, keys, app.state.settings),
    )
    try:
        for response in (
            await client.post("/api/v1/auth/logout", headers=bearer(token)),
            await client.post("/api/v1/auth/login", json={"email": email, "password": "x" * 8}),
            await client.get("/health/ready"),
        ):
            message = assert_error(response, 503, "internal_error")
            assert "127.0.0.1" not in message
    finally:
        app.state.auth = live
        await dead.aclose()
