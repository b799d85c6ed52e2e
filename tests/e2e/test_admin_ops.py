"""The operators' routes through the real fleet: providers (queues, workers, breakers and
recent traffic from the audit log), finding users, and dead letters listed, retried and
dropped. Dead letters are written as the workers' recovery writes them
(`services/workers/recovery.py`, whose own path is tested in test_worker_recovery.py)."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from services.workers.recovery import WORKER_STOPPED
from shared.messages import ChatJob, encode
from shared.providers import PROVIDERS
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest
from tests.e2e.helpers import assert_envelope, auth, chat_body
from tests.security.support import admin_token, register

SECRET_PROMPT = "the-prompt-nobody-but-the-user-sees"


@pytest.fixture
async def redis(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def dead_letter(redis: Redis, fleet: FleetConfig, user_id: str, *, stream: bool) -> str:
    """A chat job for deepseek set aside as recovery sets one aside; its entry id."""
    past = time.time() - 600
    request = ChatRequest(
        provider="deepseek",
        model="deepseek-chat",
        messages=[{"role": "user", "content": f"{SECRET_PROMPT} [[sim tokens=5]]"}],
        stream=stream,
    )
    job = ChatJob(
        id=f"job_test_{secrets.token_hex(6)}",
        reply_to="gw-test:replies:none",  # nobody waits for a dead letter's first run
        trace=f"req_test_{secrets.token_hex(6)}",
        ts=past,
        deadline=past + 30,
        user_id=user_id,
        request=request,
    )
    record = {"job": encode(job), "error": WORKER_STOPPED, "deliveries": "3", "ts": str(past)}
    entry_id = await redis.xadd(RedisKeys(fleet.redis_prefix).dead_letters("deepseek"), record)
    return str(entry_id.decode())


async def listed(edge: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    response = await edge.get("/api/v1/admin/dead-letters?provider=deepseek", headers=auth(token))
    assert response.status_code == 200, response.text
    assert SECRET_PROMPT not in response.text
    return {letter["id"]: letter for letter in response.json()["dead_letters"]}


async def test_only_admins_with_a_login_token_see_the_operators_routes(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    for path in ("/api/v1/admin/providers", "/api/v1/admin/dead-letters"):
        assert_envelope(await edge.get(path), 401, "authentication_error")
        assert_envelope(await edge.get(path, headers=auth(user_token)), 403, "authorization_error")
    admin = await admin_token(edge)
    created = await edge.post("/api/v1/api-keys", json={"name": "ops"}, headers=auth(admin))
    key = created.json()["key"]
    response = await edge.get("/api/v1/admin/providers", headers=auth(key))
    assert_envelope(response, 401, "authentication_error")
    path = "/api/v1/admin/dead-letters/deepseek/1-0"
    assert_envelope(await edge.delete(path, headers=auth(user_token)), 403, "authorization_error")
    signed_out = await admin_token(edge)
    assert (await edge.get("/api/v1/admin/providers", headers=auth(signed_out))).status_code == 200
    await edge.post("/api/v1/auth/logout", headers=auth(signed_out))
    response = await edge.get("/api/v1/admin/providers", headers=auth(signed_out))
    assert_envelope(response, 401, "authentication_error")


async def test_providers_show_queues_workers_breakers_and_recent_errors(
    edge: httpx.AsyncClient,
) -> None:
    admin = await admin_token(edge)
    ok = chat_body("perplexity", "sonar", "hi [[sim tokens=3]]")
    failing = chat_body("perplexity", "sonar", "hi [[sim fail=500]]")
    assert (await edge.post("/api/v1/chat", json=ok, headers=auth(admin))).status_code == 200
    assert (await edge.post("/api/v1/chat", json=failing, headers=auth(admin))).status_code == 502
    deadline = time.monotonic() + 20
    while True:  # the audit service stores the two requests' rows within moments
        response = await edge.get("/api/v1/admin/providers?minutes=10", headers=auth(admin))
        assert response.status_code == 200, response.text
        body = response.json()
        views = {p["id"]: p for p in body["providers"]}
        recent = views["perplexity"]["recent"]
        if recent["requests"] >= 2 and recent["errors"] >= 1:
            break
        assert time.monotonic() < deadline, views["perplexity"]
        await asyncio.sleep(0.2)
    assert body["window_minutes"] == 10
    assert set(views) == set(PROVIDERS)
    view = views["perplexity"]
    assert view["workers_alive"] >= 1
    assert view["breaker"] == {"state": "closed", "retry_after": 0.0}
    assert view["queue_depth"] >= 0 and view["pending"] >= 0 and view["dead_letters"] >= 0
    assert 0 < recent["error_rate"] <= 1
    assert recent["latency_ms"]["p95"] >= recent["latency_ms"]["p50"] > 0
    bad = await edge.get("/api/v1/admin/providers?minutes=0", headers=auth(admin))
    assert_envelope(bad, 400, "validation_error")


async def test_admins_find_users_by_part_of_their_email(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    admin = await admin_token(edge)
    marker = secrets.token_hex(5)
    user_id, _ = await register(edge, f"find-{marker}@example.com")
    response = await edge.get(f"/api/v1/admin/users?q={marker.upper()}", headers=auth(admin))
    assert response.status_code == 200, response.text
    (found,) = response.json()["users"]
    assert (found["id"], found["email"], found["tier"]) == (
        user_id,
        f"find-{marker}@example.com",
        "free",
    )
    assert "password" not in response.text
    by_id = await edge.get(f"/api/v1/admin/users?q={user_id}", headers=auth(admin))
    assert [u["id"] for u in by_id.json()["users"]] == [user_id]
    refused = await edge.get(f"/api/v1/admin/users?q={marker}", headers=auth(user_token))
    assert_envelope(refused, 403, "authorization_error")
    blank = await edge.get("/api/v1/admin/users?q=%20", headers=auth(admin))
    assert_envelope(blank, 400, "validation_error")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_dead_letter_retried_runs_again_and_leaves_the_list(
    edge: httpx.AsyncClient, user_token: str, fleet: FleetConfig, redis: Redis, stream: bool
) -> None:
    admin = await admin_token(edge)
    user_id = jwt.decode(user_token, options={"verify_signature": False})["sub"]
    entry_id = await dead_letter(redis, fleet, user_id, stream=stream)
    letter = (await listed(edge, admin))[entry_id]
    assert letter["error"] == WORKER_STOPPED
    assert (letter["kind"], letter["model"], letter["user_id"]) == (
        "chat",
        "deepseek-chat",
        user_id,
    )
    assert (letter["deliveries"], letter["stream"]) == (3, stream)

    path = f"/api/v1/admin/dead-letters/deepseek/{entry_id}"
    response = await edge.post(f"{path}/retry", headers=auth(admin))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["outcome"] == "success", result
    assert result["usage"]["completion_tokens"] == 5
    assert result["job_id"] != letter["job_id"]
    assert SECRET_PROMPT not in response.text
    assert entry_id not in await listed(edge, admin)
    again = await edge.post(f"{path}/retry", headers=auth(admin))
    assert_envelope(again, 404, "validation_error")


async def test_a_dead_letter_dropped_is_gone(
    edge: httpx.AsyncClient, fleet: FleetConfig, redis: Redis
) -> None:
    admin = await admin_token(edge)
    entry_id = await dead_letter(redis, fleet, "usr_test", stream=False)
    path = f"/api/v1/admin/dead-letters/deepseek/{entry_id}"
    assert (await edge.delete(path, headers=auth(admin))).status_code == 204
    assert entry_id not in await listed(edge, admin)
    assert_envelope(await edge.delete(path, headers=auth(admin)), 404, "validation_error")
    unknown = await edge.delete(f"/api/v1/admin/dead-letters/nope/{entry_id}", headers=auth(admin))
    assert_envelope(unknown, 400, "validation_error")
    malformed = await edge.delete("/api/v1/admin/dead-letters/deepseek/1-x", headers=auth(admin))
    assert_envelope(malformed, 400, "validation_error")
