"""Users' own provider keys through the edge: stored sealed, used for their requests only."""

import asyncio
import secrets
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from services.fleet.plan import SIMULATOR_KEY, FleetConfig
from services.simulator import keys
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import (
    assert_envelope,
    auth,
    chat_body,
    held_at,
    new_trace,
    release,
    upstream_record,
)

# Every key this module hands to the gateway; none may ever show up in a log.
USED_KEYS: list[str] = []


def own_key(prefix: str = "sk-ant-own") -> str:
    """A key the (simulated) provider issued."""
    key = keys.issue(prefix)
    USED_KEYS.append(key)
    return key


async def add_key(edge: httpx.AsyncClient, token: str, provider: str, key: str) -> dict[str, str]:
    response = await edge.post(
        "/api/v1/keys",
        json={"provider": provider, "apiKey": key, "name": "Production Key"},
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def upstream_key_of_chat(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, token: str
) -> str:
    trace = new_trace()
    body = chat_body("anthropic", "claude-3-5-sonnet-20241022", "hi [[sim tokens=2]]")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token, trace))
    assert response.status_code == 200, response.text
    record = await upstream_record(simulator, trace)
    key: str = record["headers"]["x-api-key"]
    return key


async def test_add_list_use_and_delete_an_own_key(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, database_url: str
) -> None:
    key = own_key()
    added = await add_key(edge, user_token, "anthropic", key)
    assert set(added) == {"id", "provider", "name", "maskedKey"}
    assert added["maskedKey"] == f"sk-ant-...{key[-3:]}"

    listed = await edge.get("/api/v1/keys", headers=auth(user_token))
    assert [k["id"] for k in listed.json()["keys"]] == [added["id"]]
    assert key not in listed.text

    assert await upstream_key_of_chat(edge, simulator, user_token) == key

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT * FROM provider_keys WHERE id = $1", added["id"])
    finally:
        await conn.close()
    assert len(rows) == 1
    assert key.encode() not in b"".join(str(v).encode() for v in rows[0].values())

    deleted = await edge.delete(f"/api/v1/keys/{added['id']}", headers=auth(user_token))
    assert deleted.status_code == 204
    assert await upstream_key_of_chat(edge, simulator, user_token) == SIMULATOR_KEY


async def test_jobs_name_the_key_but_never_carry_it(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    redis_url: str,
    fleet: FleetConfig,
) -> None:
    key = own_key()
    added = await add_key(edge, user_token, "anthropic", key)
    gate = f"job{secrets.token_hex(3)}"
    body = chat_body("anthropic", "claude-3-5-sonnet-20241022", f"hi [[sim hold={gate}]]")
    redis = Redis.from_url(redis_url)
    try:
        # Workers delete a job's entry once it is answered: the answer is held upstream while
        # the stream is read from the last id it had before the request.
        stream = RedisKeys(fleet.redis_prefix).jobs("anthropic")
        last = await last_id(redis, stream)
        answer = asyncio.create_task(edge.post("/api/v1/chat", json=body, headers=auth(user_token)))
        try:
            await held_at(simulator, gate, 1)
            [[_, entries]] = await redis.xread({stream: last}, count=100)
        finally:
            await release(simulator, gate)
        assert (await answer).status_code == 200
    finally:
        await redis.aclose()
    jobs = [fields[b"job"] for _, fields in entries]
    assert any(added["id"].encode() in job for job in jobs)
    assert not any(key.encode() in job for job in jobs)


async def last_id(redis: Redis, stream: str) -> bytes:
    """The id of the last entry ever added to `stream` (deleted or not), 0-0 if none."""
    if not await redis.exists(stream):
        return b"0-0"
    info = await redis.xinfo_stream(stream)
    return bytes(info["last-generated-id"])


async def test_another_user_can_never_touch_someone_elses_key(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    added = await add_key(edge, user_token, "anthropic", own_key())
    intruder = (
        await edge.post(
            "/api/v1/auth/register",
            json={
                "email": f"intruder-{secrets.token_hex(4)}@example.com",
                "password": "correct-horse-battery",
                "name": "Mallory",
            },
        )
    ).json()["token"]

    assert (await edge.get("/api/v1/keys", headers=auth(intruder))).json() == {"keys": []}
    deleted = await edge.delete(f"/api/v1/keys/{added['id']}", headers=auth(intruder))
    assert_envelope(deleted, 404, "validation_error")
    validated = await edge.post(
        "/api/v1/keys/validate", json={"id": added["id"]}, headers=auth(intruder)
    )
    assert_envelope(validated, 404, "validation_error")
    assert await upstream_key_of_chat(edge, simulator, intruder) == SIMULATOR_KEY
    still_there = await edge.get("/api/v1/keys", headers=auth(user_token))
    assert added["id"] in still_there.text


@pytest.mark.parametrize(
    ("provider", "prefix"),
    [
        ("anthropic", "sk-ant"),
        ("deepseek", "sk"),
        ("xai", "xai"),
        ("openrouter", "sk-or"),
        ("perplexity", "pplx"),
        ("nvidia_nim", "nvapi"),
    ],
)
async def test_validate_tells_good_keys_from_bad_ones(
    edge: httpx.AsyncClient, user_token: str, provider: str, prefix: str
) -> None:
    good = await edge.post(
        "/api/v1/keys/validate",
        json={"provider": provider, "apiKey": own_key(prefix)},
        headers=auth(user_token),
    )
    assert good.status_code == 200, good.text
    assert good.json()["valid"] is True
    assert good.json()["provider"] == provider
    assert good.json()["details"]["hasAccess"] is True
    assert good.json()["details"]["models"]

    bad = await edge.post(
        "/api/v1/keys/validate",
        json={"provider": provider, "apiKey": own_key(f"{prefix}-fail-401")},
        headers=auth(user_token),
    )
    assert bad.status_code == 200, bad.text
    assert bad.json()["valid"] is False
    assert bad.json()["details"] == {
        "hasAccess": False,
        "models": [],
        "reason": bad.json()["details"]["reason"],
    }
    assert "credentials" in bad.json()["details"]["reason"]


async def test_validate_a_stored_key_by_id(edge: httpx.AsyncClient, user_token: str) -> None:
    added = await add_key(edge, user_token, "deepseek", own_key("sk"))
    response = await edge.post(
        "/api/v1/keys/validate", json={"id": added["id"]}, headers=auth(user_token)
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    assert response.json()["provider"] == "deepseek"


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "nope", "apiKey": "sk-1234567890"},
        {"provider": "anthropic", "apiKey": ""},
        {"provider": "anthropic", "apiKey": "sk-" + "k" * 10_240},
        {"provider": "anthropic", "apiKey": 1234567890},
        {"provider": 7, "apiKey": "sk-1234567890"},
        {"apiKey": "sk-1234567890"},
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/keys", "/api/v1/keys/validate"])
async def test_bad_key_input_gets_400(
    edge: httpx.AsyncClient, user_token: str, body: dict[str, object], path: str
) -> None:
    response = await edge.post(path, json=body, headers=auth(user_token))
    assert_envelope(response, 400, "validation_error")
    assert "k" * 100 not in response.text


async def test_key_routes_need_a_token(edge: httpx.AsyncClient) -> None:
    assert_envelope(await edge.get("/api/v1/keys"), 401, "authentication_error")
    body = {"provider": "anthropic", "apiKey": "sk-1234567890"}
    assert_envelope(await edge.post("/api/v1/keys", json=body), 401, "authentication_error")
    assert_envelope(
        await edge.post("/api/v1/keys/validate", json=body), 401, "authentication_error"
    )


def fleet_logs(fleet: FleetConfig) -> bytes:
    assert fleet.log_dir is not None
    return b"".join(path.read_bytes() for path in Path(fleet.log_dir).glob("*.log"))


def test_no_log_of_the_fleet_contains_a_key_used_here(fleet: FleetConfig) -> None:
    assert USED_KEYS, "the tests above hand keys to the gateway"
    logs = fleet_logs(fleet)
    assert b"keyvault" in logs and b"worker-anthropic" in logs
    leaked = [key for key in USED_KEYS if key.encode() in logs]
    assert leaked == []
