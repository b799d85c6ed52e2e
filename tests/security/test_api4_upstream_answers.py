"""OWASP API4:2023 Unrestricted Resource Consumption: upstream answers.

A worker reads at most `UPSTREAM_MAX_BYTES` of an answer (or of one stream line) and
`UPSTREAM_MAX_STREAM_BYTES` of a stream, and no longer than the job's deadline
(`REQUEST_TIMEOUT`): a provider that streams forever, only keeps the connection alive, or sends
too much is cut off with a `provider_error`.
"""

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.messages import ChatJob, DeltaEvent, ErrorEvent, Event, decode_event, encode, unframe
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest
from tests.e2e.helpers import (
    assert_envelope,
    auth,
    chat_body,
    new_trace,
    running_edge,
    sse_payloads,
    upstream_stream_ended,
)
from tests.security.support import keeps_serving

DEEPSEEK = ("deepseek", "deepseek-chat")

FOREVER = "[[sim tokens=20000 chunk_delay_ms=5]]"  # 100 s of tokens, a few KB a second


@pytest.fixture(scope="module")
def short_deadline_edge(fleet: FleetConfig) -> Iterator[str]:
    """One more edge of the shared fleet, giving its jobs a 3 s deadline (REQUEST_TIMEOUT)."""
    with running_edge(fleet, REQUEST_TIMEOUT="3s") as url:
        yield url


def stream_error(response: httpx.Response) -> dict[str, Any]:
    """The error that ends a stream after some deltas."""
    assert response.status_code == 200, response.text
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    assert any(isinstance(p, dict) and "delta" in p for p in payloads[:-2])
    last = payloads[-2]
    assert isinstance(last, dict)
    error: dict[str, Any] = last["error"]
    assert error["type"] == "provider_error"
    assert error["details"]["provider"] == "deepseek"
    return error


async def upstream_stopped(simulator: httpx.AsyncClient, trace: str) -> None:
    """The simulator's stream to `trace` was cut by the gateway, not sent to its end."""
    record = await upstream_stream_ended(simulator, trace)
    assert not record["finished"]


async def test_a_stream_over_upstream_max_stream_bytes_is_cut(
    edge: httpx.AsyncClient, user_token: str, redis_url: str, fleet: FleetConfig
) -> None:
    body = chat_body(*DEEPSEEK, "hi [[sim tokens=20000]]", stream=True)  # ~4 MB of SSE
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    error = stream_error(response)
    limit = int(fleet.extra_env["UPSTREAM_MAX_STREAM_BYTES"])
    assert f"a stream larger than {limit} bytes" in error["message"]
    await keeps_serving(edge, user_token, redis_url, fleet.redis_prefix, *DEEPSEEK)


async def test_a_stream_that_never_ends_is_cut_at_the_deadline(
    short_deadline_edge: str,
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    redis_url: str,
    fleet: FleetConfig,
) -> None:
    trace = new_trace()
    body = chat_body(*DEEPSEEK, f"hi {FOREVER}", stream=True)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=short_deadline_edge, timeout=30) as client:
        response = await client.post("/api/v1/chat", json=body, headers=auth(user_token, trace))
    took = time.monotonic() - started
    error = stream_error(response)
    # The edge's wait and the worker's call end at the same deadline; either may say so.
    assert any(said in error["message"] for said in ("in time", "deadline")), error
    # Cut at the 3 s deadline: not before it, and long before the 100 s of tokens ended.
    assert 3.0 <= took < 60, took
    await upstream_stopped(simulator, trace)
    await keeps_serving(edge, user_token, redis_url, fleet.redis_prefix, *DEEPSEEK)


async def test_a_stream_of_only_keepalives_is_cut_at_the_deadline(
    short_deadline_edge: str,
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    redis_url: str,
    fleet: FleetConfig,
) -> None:
    trace = new_trace()
    # DeepSeek sends `: keep-alive` comments while it waits: no event for 25 s.
    body = chat_body(*DEEPSEEK, "hi [[sim latency_ms=25000]]", stream=True)
    async with httpx.AsyncClient(base_url=short_deadline_edge, timeout=30) as client:
        response = await client.post("/api/v1/chat", json=body, headers=auth(user_token, trace))
    error = assert_envelope(response, 504, "provider_error")
    assert error["details"] == {"provider": "deepseek"}
    await upstream_stopped(simulator, trace)
    await keeps_serving(edge, user_token, redis_url, fleet.redis_prefix, *DEEPSEEK)


async def test_the_worker_ends_a_job_at_its_deadline_though_its_client_listens(
    redis_url: str, fleet: FleetConfig, simulator: httpx.AsyncClient
) -> None:
    """Below the edge: a worker given a job whose deadline is 2 s away cuts the provider's
    endless stream itself and says so on the reply channel (the client is still there)."""
    now = time.time()
    request = ChatRequest(
        provider="deepseek",
        model="deepseek-chat",
        messages=[{"role": "user", "content": f"hi {FOREVER}"}],
        stream=True,
    )
    job_id = f"job_test_{secrets.token_hex(6)}"
    job = ChatJob(
        id=job_id,
        reply_to=RedisKeys(fleet.redis_prefix).replies(job_id),
        trace=new_trace(),
        ts=now,
        deadline=now + 2,
        user_id="usr_test",
        request=request,
    )
    keys = RedisKeys(fleet.redis_prefix)
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub()
    events: list[Event] = []
    try:
        await pubsub.subscribe(job.reply_to)
        await redis.xadd(keys.jobs("deepseek"), {"job": encode(job)})
        give_up = time.monotonic() + 30
        while not events or isinstance(events[-1], DeltaEvent):
            assert time.monotonic() < give_up, events[-3:]
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                events.append(decode_event(unframe(message["data"])[1]))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()
    error = events[-1]
    assert isinstance(error, ErrorEvent), error
    assert (error.type, error.status) == ("provider_error", 504)
    assert "deadline" in error.message and error.details == {"provider": "deepseek"}
    assert isinstance(events[0], DeltaEvent)
    await upstream_stopped(simulator, job.trace)
