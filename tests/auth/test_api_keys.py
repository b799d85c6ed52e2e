"""Gateway API keys: create (shown once, stored as a hash), list, resolve, revoke, expiry."""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from shared.redis_keys import RedisKeys
from shared.settings import Settings
from tests.auth.support import SERVICE_TOKEN, assert_error, bearer, register

RESOLVE = "/internal/v1/api-keys/resolve"
SERVICE = bearer(SERVICE_TOKEN)


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
async def owner(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    registered = await register(client, email)
    return {"id": registered["user"]["id"], "headers": bearer(registered["token"])}


async def create(client: httpx.AsyncClient, owner: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/api-keys", json={"name": "ci", **body}, headers=owner["headers"]
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_shows_the_key_once_and_stores_its_hash(
    client: httpx.AsyncClient, owner: dict[str, Any], settings: Settings
) -> None:
    created = await create(
        client,
        owner,
        allowed_providers=["openrouter", "anthropic"],
        allowed_models=["gpt-4o"],
        expires_in="1h",
    )
    key = created["key"]
    assert key.startswith("gw_") and len(key) >= 3 + 43
    assert created["id"].startswith("gwk_")
    assert created["prefix"] == key[:12]
    assert created["allowed_providers"] == ["anthropic", "openrouter"]
    assert created["allowed_models"] == ["gpt-4o"] and created["limits"] is None
    expires = datetime.fromisoformat(created["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(seconds=30)

    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM api_keys WHERE id = $1", created["id"])
    finally:
        await conn.close()
    assert row["key_hash"] == sha(key) and row["user_id"] == owner["id"]
    assert all(key not in str(value) for value in dict(row).values())

    listed = await client.get("/api/v1/api-keys", headers=owner["headers"])
    assert listed.status_code == 200
    [view] = listed.json()["api_keys"]
    assert view["id"] == created["id"] and "key" not in view
    assert key not in listed.text and sha(key) not in listed.text


async def test_resolve(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    created = await create(client, owner, allowed_models=["m1"])
    response = await client.post(RESOLVE, json={"key_hash": sha(created["key"])}, headers=SERVICE)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "key_id": created["id"],
        "user_id": owner["id"],
        "tier": "free",
        "role": "user",
        "allowed_providers": None,
        "allowed_models": ["m1"],
        "expires_at": None,
        "limits": None,
    }
    unknown = await client.post(RESOLVE, json={"key_hash": "0" * 64}, headers=SERVICE)
    assert_error(unknown, 404, "validation_error")
    bad = await client.post(RESOLVE, json={"key_hash": created["key"]}, headers=SERVICE)
    assert_error(bad, 400, "validation_error")


async def test_resolve_is_for_services_only(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    created = await create(client, owner)
    body = {"key_hash": sha(created["key"])}
    for headers in (owner["headers"], bearer(created["key"]), {}, bearer("x" + SERVICE_TOKEN)):
        response = await client.post(RESOLVE, json=body, headers=headers)
        assert_error(response, 401, "authentication_error")


async def test_key_limits_published(
    client: httpx.AsyncClient, owner: dict[str, Any], redis: Redis, keys: RedisKeys
) -> None:
    limits = {"requests": 10, "window": "1m", "tokens_per_minute": 500}
    created = await create(client, owner, limits=limits)
    assert created["limits"] == limits
    published = await redis.hgetall(keys.limits("key", created["id"], owner["id"]))
    assert published == {"requests": "10", "window_seconds": "60", "tokens_per_minute": "500"}
    tpm_only = await create(client, owner, limits={"tokens_per_minute": 100})
    published = await redis.hgetall(keys.limits("key", tpm_only["id"], owner["id"]))
    # Only what is set: a "requests": "0" here would lock the key out (the edge reads it as a
    # limit of zero requests); left out, the key has no request limit of its own.
    assert published == {"tokens_per_minute": "100"}
    plain = await create(client, owner)
    assert not await redis.exists(keys.limits("key", plain["id"], owner["id"]))


async def test_revoke(
    client: httpx.AsyncClient, owner: dict[str, Any], redis: Redis, keys: RedisKeys
) -> None:
    created = await create(client, owner, limits={"requests": 5})
    key_hash = sha(created["key"])
    await redis.set(keys.api_key(key_hash), "cached-by-the-edge", ex=60)
    response = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=owner["headers"])
    assert response.status_code == 204
    assert not await redis.exists(keys.api_key(key_hash))
    assert not await redis.exists(keys.limits("key", created["id"], owner["id"]))
    gone = await client.post(RESOLVE, json={"key_hash": key_hash}, headers=SERVICE)
    assert_error(gone, 404, "validation_error")
    listed = await client.get("/api/v1/api-keys", headers=owner["headers"])
    assert listed.json()["api_keys"] == []
    again = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=owner["headers"])
    assert_error(again, 404, "validation_error")


async def test_another_users_key_is_404(
    client: httpx.AsyncClient, owner: dict[str, Any], email: str
) -> None:
    created = await create(client, owner)
    stranger = bearer((await register(client, "other-" + email))["token"])
    response = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=stranger)
    assert_error(response, 404, "validation_error")
    assert (await client.get("/api/v1/api-keys", headers=stranger)).json()["api_keys"] == []
    still = await client.post(RESOLVE, json={"key_hash": sha(created["key"])}, headers=SERVICE)
    assert still.status_code == 200


async def test_expired_key_is_404(
    client: httpx.AsyncClient, owner: dict[str, Any], settings: Settings
) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = await create(client, owner, expires_at=later)
    body = {"key_hash": sha(created["key"])}
    assert (await client.post(RESOLVE, json=body, headers=SERVICE)).status_code == 200
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
            created["id"],
        )
    finally:
        await conn.close()
    assert_error(await client.post(RESOLVE, json=body, headers=SERVICE), 404, "validation_error")


async def test_tier_change_drops_cached_keys(
    client: httpx.AsyncClient,
    owner: dict[str, Any],
    admin_token: str,
    redis: Redis,
    keys: RedisKeys,
) -> None:
    created = await create(client, owner)
    await redis.set(keys.api_key(sha(created["key"])), "stale", ex=60)
    response = await client.put(
        f"/api/v1/admin/users/{owner['id']}/tier",
        json={"tier": "paid"},
        headers=bearer(admin_token),
    )
    assert response.status_code == 200, response.text
    assert not await redis.exists(keys.api_key(sha(created["key"])))
    resolved = await client.post(RESOLVE, json={"key_hash": sha(created["key"])}, headers=SERVICE)
    assert resolved.json()["tier"] == "paid"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "k", "allowed_providers": ["nope"]},
        {"name": "k", "allowed_providers": []},
        {"name": "k", "expires_in": "1h", "expires_at": "2099-01-01T00:00:00Z"},
        {"name": "k", "expires_at": "2000-01-01T00:00:00Z"},
        {"name": "k", "expires_at": "2099-01-01T00:00:00"},
        {"name": "k", "expires_in": "0s"},
        {"name": "k", "limits": {"window": "1m"}},
        {"name": "k", "limits": {"requests": -1}},
        {"name": "k", "extra": True},
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, owner: dict[str, Any], body: dict[str, Any]
) -> None:
    response = await client.post("/api/v1/api-keys", json=body, headers=owner["headers"])
    assert_error(response, 400, "validation_error")


async def test_key_routes_need_a_user(client: httpx.AsyncClient) -> None:
    for method, url in [
        ("GET", "/api/v1/api-keys"),
        ("POST", "/api/v1/api-keys"),
        ("DELETE", "/api/v1/api-keys/gwk_x"),
    ]:
        response = await client.request(method, url, json={"name": "k"})
        assert_error(response, 401, "authentication_error")
