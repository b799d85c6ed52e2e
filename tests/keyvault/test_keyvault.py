"""Users' own provider keys: sealed at rest, masked when shown, isolated per user, rotatable."""

import secrets

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from services.keyvault.repository import KeyRepository
from services.keyvault.vault import Vault
from shared.redis_keys import RedisKeys
from shared.tokens import TokenSigner
from tests.keyvault.conftest import EDGE_HEADERS, WORKER_HEADERS, AppFactory, user_headers


def new_user() -> str:
    return f"usr_{secrets.token_hex(6)}"


def a_key() -> str:
    return f"sk-ant-api03-{secrets.token_urlsafe(24)}"


async def add(
    kv: httpx.AsyncClient, signer: TokenSigner, user: str, key: str, provider: str = "anthropic"
) -> dict[str, str]:
    response = await kv.post(
        "/api/v1/keys",
        json={"provider": provider, "apiKey": key, "name": "Production Anthropic Key"},
        headers=user_headers(signer, user),
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def reveal(kv: httpx.AsyncClient, key_id: str, user: str) -> httpx.Response:
    return await kv.get(
        f"/internal/v1/keys/{key_id}/secret", params={"user_id": user}, headers=WORKER_HEADERS
    )


async def test_add_list_reveal_delete_round_trip(
    kv: httpx.AsyncClient, signer: TokenSigner, database_url: str
) -> None:
    user, key = new_user(), a_key()
    added = await add(kv, signer, user, key)
    assert set(added) == {"id", "provider", "name", "maskedKey"}
    assert added["provider"] == "anthropic"
    assert added["maskedKey"] == f"sk-ant-...{key[-3:]}"

    listed = await kv.get("/api/v1/keys", headers=user_headers(signer, user))
    assert [k["id"] for k in listed.json()["keys"]] == [added["id"]]
    assert key not in listed.text

    revealed = await reveal(kv, added["id"], user)
    assert revealed.status_code == 200, revealed.text
    assert revealed.json() == {"id": added["id"], "provider": "anthropic", "apiKey": key}

    conn = await asyncpg.connect(database_url)
    try:
        audit = await conn.fetch(
            "SELECT actor, action, trace_id FROM provider_key_audit WHERE key_id = $1", added["id"]
        )
    finally:
        await conn.close()
    assert [(a["actor"], a["action"]) for a in audit] == [("worker-test", "decrypt")]
    assert audit[0]["trace_id"] == revealed.headers["x-request-id"]

    deleted = await kv.delete(f"/api/v1/keys/{added['id']}", headers=user_headers(signer, user))
    assert deleted.status_code == 204
    assert (await reveal(kv, added["id"], user)).status_code == 404
    listed = await kv.get("/api/v1/keys", headers=user_headers(signer, user))
    assert listed.json() == {"keys": []}


async def test_database_holds_no_plaintext(
    kv: httpx.AsyncClient, signer: TokenSigner, database_url: str
) -> None:
    user, key = new_user(), a_key()
    added = await add(kv, signer, user, key)
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM provider_keys WHERE id = $1", added["id"])
    finally:
        await conn.close()
    assert row is not None
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert key.encode() not in stored
    assert key[4:-3].encode() not in stored
    assert len(row["nonce"]) == 12
    assert row["key_version"] == 1


async def test_the_edge_is_told_which_key_to_name(
    kv: httpx.AsyncClient, signer: TokenSigner
) -> None:
    user = new_user()
    first = await add(kv, signer, user, a_key())
    second = await add(kv, signer, user, a_key())
    redis: Redis = kv.app.state.vault.redis  # type: ignore[attr-defined]
    keys: RedisKeys = kv.app.state.vault.keys  # type: ignore[attr-defined]

    assert await redis.hget(keys.own_keys(user), "anthropic") == second["id"].encode()
    await kv.delete(f"/api/v1/keys/{second['id']}", headers=user_headers(signer, user))
    assert await redis.hget(keys.own_keys(user), "anthropic") == first["id"].encode()
    await kv.delete(f"/api/v1/keys/{first['id']}", headers=user_headers(signer, user))
    assert await redis.hget(keys.own_keys(user), "anthropic") is None


async def test_another_user_gets_404_on_every_operation(
    kv: httpx.AsyncClient, signer: TokenSigner
) -> None:
    owner, intruder = new_user(), new_user()
    added = await add(kv, signer, owner, a_key())
    as_intruder = user_headers(signer, intruder)

    assert (await kv.get("/api/v1/keys", headers=as_intruder)).json() == {"keys": []}
    deleted = await kv.delete(f"/api/v1/keys/{added['id']}", headers=as_intruder)
    assert deleted.status_code == 404
    assert deleted.json()["error"]["type"] == "validation_error"
    assert (await reveal(kv, added["id"], intruder)).status_code == 404
    metadata = await kv.get(
        f"/internal/v1/keys/{added['id']}", params={"user_id": intruder}, headers=EDGE_HEADERS
    )
    assert metadata.status_code == 404
    assert (await reveal(kv, added["id"], owner)).status_code == 200


async def test_internal_endpoints_refuse_user_tokens(
    kv: httpx.AsyncClient, signer: TokenSigner
) -> None:
    user = new_user()
    added = await add(kv, signer, user, a_key())
    response = await kv.get(
        f"/internal/v1/keys/{added['id']}/secret",
        params={"user_id": user},
        headers=user_headers(signer, user),
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert (await kv.get("/api/v1/keys")).status_code == 401


async def test_only_the_workers_token_decrypts(kv: httpx.AsyncClient, signer: TokenSigner) -> None:
    """The edge's token looks keys up and stashes them, but cannot decrypt one; the workers'
    token decrypts and does nothing else."""
    user = new_user()
    added = await add(kv, signer, user, a_key())
    by_user = {"user_id": user}
    stash = {"user_id": user, "provider": "anthropic", "apiKey": a_key()}
    routes = {
        "decrypt": ("GET", f"/internal/v1/keys/{added['id']}/secret", by_user, None, 200),
        "metadata": ("GET", f"/internal/v1/keys/{added['id']}", by_user, None, 200),
        "stash": ("POST", "/internal/v1/keys/stash", None, stash, 201),
    }
    for name, (method, path, params, body, ok) in routes.items():
        for caller, headers in (("worker", WORKER_HEADERS), ("edge", EDGE_HEADERS)):
            response = await kv.request(method, path, params=params, json=body, headers=headers)
            allowed = (caller == "worker") == (name == "decrypt")
            expected = ok if allowed else 401
            assert response.status_code == expected, (name, caller, response.text)
            if not allowed:
                assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "nope", "apiKey": "sk-1234567890"},
        {"provider": "anthropic", "apiKey": ""},
        {"provider": "anthropic", "apiKey": "sk-" + "x" * 10_240},
        {"provider": "anthropic", "apiKey": 12345678},
        {"provider": ["anthropic"], "apiKey": "sk-1234567890"},
        {"provider": "anthropic", "apiKey": "sk-12345 67890"},
        {"provider": "anthropic"},
    ],
)
async def test_bad_input_gets_400_in_the_envelope(
    kv: httpx.AsyncClient, signer: TokenSigner, body: dict[str, object]
) -> None:
    response = await kv.post("/api/v1/keys", json=body, headers=user_headers(signer, new_user()))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert error["trace_id"] == response.headers["x-request-id"]
    assert "x" * 100 not in response.text


async def tamper(database_url: str, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_tampered_or_moved_ciphertext_fails_clearly(
    kv: httpx.AsyncClient, signer: TokenSigner, database_url: str
) -> None:
    user = new_user()
    first, second = await add(kv, signer, user, a_key()), await add(kv, signer, user, a_key())
    await tamper(
        database_url,
        "UPDATE provider_keys SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1)"
        " WHERE id = $1",
        first["id"],
    )
    await tamper(
        database_url,
        "UPDATE provider_keys AS b SET nonce = a.nonce, ciphertext = a.ciphertext"
        " FROM provider_keys AS a WHERE a.id = $1 AND b.id = $2",
        first["id"],
        second["id"],
    )
    for key_id in (first["id"], second["id"]):
        response = await reveal(kv, key_id, user)
        assert response.status_code == 500
        assert response.json()["error"]["message"] == "The stored key failed its integrity check"
    assert (await kv.get("/api/v1/keys", headers=user_headers(signer, user))).status_code == 200


async def test_rotation_keeps_every_key_usable(
    keyvault: AppFactory, signer: TokenSigner, master_keys: dict[int, str], database_url: str
) -> None:
    user = new_user()
    keys = [a_key() for _ in range(3)]
    async with keyvault(f"1:{master_keys[1]}") as old:
        added = [await add(old, signer, user, key) for key in keys]
    async with keyvault(f"1:{master_keys[1]},2:{master_keys[2]}") as both:
        for item, key in zip(added, keys, strict=True):
            assert (await reveal(both, item["id"], user)).json()["apiKey"] == key
        changed = await both.app.state.vault.rotate(batch=2)  # type: ignore[attr-defined]
        assert changed >= len(keys)
    conn = await asyncpg.connect(database_url)
    try:
        audit = await conn.fetch(
            "SELECT key_id, action FROM provider_key_audit WHERE actor = 'rotation'"
            " AND key_id = ANY($1::text[])",
            [item["id"] for item in added],
        )
    finally:
        await conn.close()
    assert sorted((a["key_id"], a["action"]) for a in audit) == sorted(
        (item["id"], "decrypt") for item in added
    )
    async with keyvault(f"2:{master_keys[2]}") as new:
        for item, key in zip(added, keys, strict=True):
            assert (await reveal(new, item["id"], user)).json()["apiKey"] == key
        fresh = await add(new, signer, user, a_key())
    async with keyvault(f"1:{master_keys[1]}") as only_old:
        response = await reveal(only_old, fresh["id"], user)
        assert response.status_code == 500
        assert "version 2" in response.json()["error"]["message"]


async def test_ready_when_its_database_and_redis_answer(
    keyvault: AppFactory, master_keys: dict[int, str]
) -> None:
    async with keyvault(f"1:{master_keys[1]}") as kv:
        response = await kv.get("/health/ready")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("lost", ["postgresql", "redis"])
async def test_not_ready_when_its_database_or_redis_is_gone(
    kv: httpx.AsyncClient, lost: str
) -> None:
    # A pool or client towards a port where nothing listens stands in for the server going away.
    vault: Vault = kv.app.state.vault  # type: ignore[attr-defined]
    repo, redis = vault.repo, vault.redis
    if lost == "postgresql":
        dead_pool = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0)
        vault.repo = KeyRepository(dead_pool)
    else:
        vault.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        response = await kv.get("/health/ready")
        live = await kv.get("/health/live")
    finally:
        if lost == "postgresql":
            await vault.repo.pool.close()
        else:
            await vault.redis.aclose()
        vault.repo, vault.redis = repo, redis
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "internal_error"
    assert error["message"] == "PostgreSQL or Redis is unavailable"
    assert "127.0.0.1" not in response.text
    assert error["trace_id"] == response.headers["x-request-id"]
    assert live.status_code == 200
    assert (await kv.get("/health/ready")).status_code == 200
