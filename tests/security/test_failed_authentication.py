"""Unauthenticated requests cannot be amplified into work for auth and PostgreSQL.

Each random `gw_…` key once cost a Redis lookup, a call to auth and a database query, before
any limit. Now each client address gets `AUTH_CLIENT_MAX_FAILURES` failed authentications a
window (429 after), an API key not in the cache is not looked up for a client past it, and a
key auth does not know is remembered briefly (services/edge/auth.py).
"""

import hashlib
import secrets

import httpx
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import running_edge
from tests.security.support import register

FAILURES = 3


def _client() -> dict[str, str]:
    """Another client behind the (trusted, local) proxy the test stands for."""
    return {"X-Forwarded-For": f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"}


def _random_key() -> str:
    return "gw_" + secrets.token_urlsafe(32)


async def _call(edge: httpx.AsyncClient, key: str, client: dict[str, str]) -> httpx.Response:
    return await edge.get("/api/v1/providers", headers={"Authorization": f"Bearer {key}", **client})


async def test_failed_authentications_are_limited_per_client(fleet: FleetConfig) -> None:
    with running_edge(fleet, AUTH_CLIENT_MAX_FAILURES=str(FAILURES)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as edge:
            _, token = await register(edge)
            created = await edge.post(
                "/api/v1/api-keys",
                json={"name": "fresh"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201, created.text
            valid_key = created.json()["key"]

            prober = _client()
            statuses = [(await _call(edge, _random_key(), prober)).status_code for _ in range(4)]
            assert statuses == [401] * FAILURES + [429]
            garbage = await edge.get(
                "/api/v1/providers", headers={"Authorization": "Bearer not-a-jwt", **prober}
            )
            assert garbage.status_code == 429
            assert int(garbage.headers["retry-after"]) >= 1
            # Past its limit, the prober's next key is not even looked up: a valid one that
            # no edge has cached yet is refused too, and works from any other address.
            assert (await _call(edge, valid_key, prober)).status_code == 429
            assert (await _call(edge, valid_key, _client())).status_code == 200


async def test_an_unknown_api_key_is_remembered_briefly(
    fleet: FleetConfig, edge: httpx.AsyncClient
) -> None:
    key = _random_key()
    assert (await _call(edge, key, _client())).status_code == 401
    redis = Redis.from_url(fleet.redis_url)
    try:
        cached = RedisKeys(fleet.redis_prefix).api_key(hashlib.sha256(key.encode()).hexdigest())
        assert await redis.exists(cached)
        assert 0 < await redis.ttl(cached) <= 30
    finally:
        await redis.aclose()
    assert (await _call(edge, key, _client())).status_code == 401
