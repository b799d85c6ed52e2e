"""A token budget's reservation is settled however a stream ends: to the real usage when it
ends well, given back whole when the provider fails after output started, when the request's
deadline cuts it, or when its worker is SIGKILLed mid-stream. Read from the Redis budget hash
(`tpm:{user|key}:{id}`): a gateway API key's own budget, or on an edge of a private Redis
prefix, the budget `TOKENS_PER_MINUTE` gives every user."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.redis_keys import WORKER_GROUP, RedisKeys
from tests.e2e.helpers import (
    auth,
    budget_used,
    budgeted_key,
    chat_body,
    new_trace,
    running_edge,
    settled_to,
    sse_payloads,
    upstream_record,
    upstream_usage,
)
from tests.e2e.reliability import Pool, pool_for
from tests.security.support import register

pytestmark = pytest.mark.timeout(180)

DEEPSEEK = ("deepseek", "deepseek-chat")
MAX_TOKENS = 400  # with the prompt, what each request reserves


@pytest.fixture
async def pool(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    async for created in pool_for(fleet, redis_url):
        yield created


def stream_body(text: str, max_tokens: int = MAX_TOKENS) -> dict[str, object]:
    return chat_body(*DEEPSEEK, text, stream=True, max_tokens=max_tokens)


def error_after_deltas(response: httpx.Response) -> dict[str, object]:
    """The error event that ended a stream after some deltas."""
    assert response.status_code == 200, response.text
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    assert any(isinstance(p, dict) and p.get("delta", {}).get("content") for p in payloads)
    last = payloads[-2]
    assert isinstance(last, dict) and "error" in last, last
    error: dict[str, object] = last["error"]
    return error


async def test_a_stream_that_ends_is_settled_to_its_usage_and_one_that_fails_gives_back(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    redis_url: str,
    fleet: FleetConfig,
) -> None:
    key, owner = await budgeted_key(edge, user_token)
    keys, redis = RedisKeys(fleet.redis_prefix), Redis.from_url(redis_url)
    try:
        trace = new_trace()
        body = stream_body("hi [[sim tokens=5]]")
        response = await edge.post("/api/v1/chat", json=body, headers=auth(key, trace))
        assert response.status_code == 200, response.text
        real = sum(upstream_usage(await upstream_record(simulator, trace)))
        await settled_to(redis, keys, owner, real)

        body = stream_body("hi [[sim tokens=20 fail=midstream]]")
        response = await edge.post("/api/v1/chat", json=body, headers=auth(key))
        assert error_after_deltas(response)["type"] == "provider_error"
        await settled_to(redis, keys, owner, real)  # the failed one costs nothing
    finally:
        await redis.aclose()


async def test_a_stream_cut_at_its_deadline_gives_its_reservation_back(
    fleet: FleetConfig, user_token: str, redis_url: str
) -> None:
    keys, redis = RedisKeys(fleet.redis_prefix), Redis.from_url(redis_url)
    try:
        with running_edge(fleet, REQUEST_TIMEOUT="3s") as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as edge:
                key, owner = await budgeted_key(edge, user_token)
                # 8000 tokens 5 ms apart: 40 s, well past the 3 s deadline.
                body = stream_body("hi [[sim tokens=20000 chunk_delay_ms=5]]", 8000)
                response = await edge.post("/api/v1/chat", json=body, headers=auth(key))
        assert error_after_deltas(response)["type"] == "provider_error"
        await settled_to(redis, keys, owner, 0)
    finally:
        await redis.aclose()


async def test_a_stream_whose_worker_is_killed_gives_its_reservation_back(
    pool: Pool, fleet: FleetConfig
) -> None:
    worker = await pool.worker("deepseek")
    # Limits set through the API live under the fleet's prefix: here every user has a budget.
    settings = {"REDIS_PREFIX": pool.keys.prefix, "TOKENS_PER_MINUTE": "100000"}
    with running_edge(fleet, **settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as edge:
            user_id, token = await register(edge)
            owner = ("user", user_id)
            body = stream_body("hi [[sim tokens=200 chunk_delay_ms=100]]")  # 20 s of it
            async with edge.stream("POST", "/api/v1/chat", json=body, headers=auth(token)) as r:
                assert r.status_code == 200
                lines = r.aiter_lines()
                first = await anext(lines)
                assert first.startswith('data: {"delta"'), first
                reserved = await budget_used(pool.redis, pool.keys, owner)
                assert reserved > MAX_TOKENS  # held while the stream runs
                pending = await pool.redis.xpending(pool.keys.jobs("deepseek"), WORKER_GROUP)
                assert pending["pending"] == 1  # the job is in the worker's hands
                assert worker.process is not None
                os.kill(worker.process.pid, signal.SIGKILL)
                await asyncio.to_thread(worker.process.wait)

                # Another worker reclaims the job; it had streamed, so it ends it with 502.
                await pool.worker("deepseek", RECLAIM_IDLE="1s")
                rest = [line async for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    assert '"provider_error"' in rest[-2], rest[-2]
    await settled_to(pool.redis, pool.keys, owner, 0)
