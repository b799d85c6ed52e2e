"""Deadlines, backpressure and open circuits: a queue that is too long or a provider whose
breaker is open answers 503 at once, and a job no worker answers in time ends in 504, never a
hang. The edge here serves a Redis namespace no worker reads."""

import secrets
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.breaker import Breaker, BreakerConfig
from shared.messages import decode_job
from shared.providers import PROVIDERS
from shared.redis_keys import RedisKeys
from tests.conftest import RUN_ID
from tests.e2e.helpers import assert_envelope, auth, chat_body, running_edge

QUEUE_LIMIT = 3
PREFIX = f"gw-bp-{RUN_ID}"


@pytest.fixture(scope="module")
def lonely_edge(fleet: FleetConfig) -> Iterator[str]:
    """An edge whose provider streams no worker reads (its own Redis namespace)."""
    with running_edge(
        fleet, REDIS_PREFIX=PREFIX, QUEUE_LIMIT=str(QUEUE_LIMIT), REQUEST_TIMEOUT="2s"
    ) as url:
        yield url


async def test_a_job_nobody_answers_ends_in_504(lonely_edge: str, user_token: str) -> None:
    async with httpx.AsyncClient(base_url=lonely_edge, timeout=30) as client:
        body = chat_body("xai", "grok-3", f"hi {secrets.token_hex(3)}")
        response = await client.post("/api/v1/chat", json=body, headers=auth(user_token))
    error = assert_envelope(response, 504, "provider_error")
    assert error["details"]["provider"] == "xai"


async def test_a_full_queue_answers_503_with_retry_after(
    lonely_edge: str, user_token: str, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        stream = RedisKeys(PREFIX).jobs("perplexity")
        for _ in range(QUEUE_LIMIT):
            await redis.xadd(stream, {"job": b"{}"})
        async with httpx.AsyncClient(base_url=lonely_edge, timeout=30) as client:
            body = chat_body("perplexity", "sonar", "hi")
            response = await client.post("/api/v1/chat", json=body, headers=auth(user_token))
        assert await redis.xlen(stream) == QUEUE_LIMIT  # nothing more was queued
    finally:
        await redis.aclose()
    error = assert_envelope(response, 503, "provider_error")
    assert response.headers["retry-after"] == "1"
    assert error["details"] == {"provider": "perplexity", "waiting": QUEUE_LIMIT}


async def test_an_open_circuit_answers_503_before_queueing(
    lonely_edge: str, user_token: str, redis_url: str, fleet: FleetConfig
) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = RedisKeys(PREFIX)
        breaker = Breaker(redis, keys, BreakerConfig(30, 2, 0.5, 60, 1))
        for _ in range(2):
            await breaker.record("openrouter", ok=False)
        assert await breaker.state("openrouter") == "open"
        async with httpx.AsyncClient(base_url=lonely_edge, timeout=30) as client:
            body = chat_body("openrouter", "openai/gpt-4o-mini", "hi")
            response = await client.post("/api/v1/chat", json=body, headers=auth(user_token))
            health = await client.get("/api/v1/health", headers=auth(user_token))
            metrics = (await client.get("/metrics")).text
        queued = await redis.xrange(keys.jobs("openrouter"))
        # No chat job; the edge may have asked for the provider's model list.
        assert [decode_job(fields[b"job"]).kind for _, fields in queued] in ([], ["models"])
    finally:
        await redis.aclose()
    error = assert_envelope(response, 503, "provider_error")
    assert error["details"] == {"provider": "openrouter", "circuit": "open"}
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # No worker beats in this namespace: every provider is offline here.
    assert health.json()["providers"]["openrouter"] == "offline"
    assert health.json()["status"] == "degraded"
    states = {
        sample.labels["provider"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "gateway_breaker_state"
        for sample in family.samples
    }
    assert states == {provider: 2.0 if provider == "openrouter" else 0.0 for provider in PROVIDERS}


async def test_health_reports_every_provider_database_and_redis(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    response = await edge.get("/api/v1/health", headers=auth(user_token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "healthy",
        "providers": dict.fromkeys(PROVIDERS, "online"),
        "database": "connected",
        "redis": "connected",
    }
    assert (await edge.get("/api/v1/health")).status_code == 401
