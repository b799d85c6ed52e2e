"""OWASP API4:2023 Unrestricted Resource Consumption: open streams.

The streams a user (`MAX_OPEN_STREAMS`) and a gateway API key (`MAX_OPEN_STREAMS_PER_KEY`) have
open at once are counted in Redis across edge replicas, and each slot is given back when its
stream ends, fails or loses its client (or, from an edge that died, when it expires).
"""

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from services.edge.admission import Admission, Limits, StreamSlot
from services.fleet.plan import FleetConfig
from shared.errors import RateLimitError
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import (
    assert_envelope,
    auth,
    chat_body,
    eventually,
    running_edge,
    sse_payloads,
)
from tests.security.support import register, setting_default

DEEPSEEK = ("deepseek", "deepseek-chat")
MAX_OPEN_STREAMS = setting_default("max_open_streams")


SLOW_STREAM = "stream me [[sim tokens=60 chunk_delay_ms=250]]"  # about 15 s when read through


async def _open_stream(
    stack: AsyncExitStack, edge: httpx.AsyncClient, token: str
) -> httpx.Response:
    """A stream held open (its first chunk read) until `stack` closes it."""
    body = chat_body(*DEEPSEEK, SLOW_STREAM, stream=True)
    response = await stack.enter_async_context(
        edge.stream("POST", "/api/v1/chat", json=body, headers=auth(token))
    )
    if response.status_code == 200:
        chunks = response.aiter_raw()
        await anext(chunks)
        stack.push_async_callback(chunks.aclose)  # dropped, it would close the stream
    else:
        await response.aread()
    return response


async def _admitted_within(edge: httpx.AsyncClient, token: str, seconds: float) -> bool:
    """Whether a new stream of the user gets in within `seconds` (polled, bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with AsyncExitStack() as stack:
            if (await _open_stream(stack, edge, token)).status_code == 200:
                return True
        await asyncio.sleep(0.2)
    return False


async def test_open_streams_per_user_are_capped_and_given_back_when_a_client_leaves(
    edge: httpx.AsyncClient,
) -> None:
    _, token = await register(edge)
    created = await edge.post("/api/v1/api-keys", json={"name": "streams"}, headers=auth(token))
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    async with AsyncExitStack() as held:
        first = AsyncExitStack()
        await held.enter_async_context(first)
        assert (await _open_stream(first, edge, token)).status_code == 200
        for _ in range(MAX_OPEN_STREAMS - 1):
            assert (await _open_stream(held, edge, token)).status_code == 200
        async with AsyncExitStack() as extra:
            for caller in (token, key):  # a user's keys share the user's streams
                over = await _open_stream(extra, edge, caller)
                assert over.status_code == 429, over.text
                assert over.json()["error"]["type"] == "rate_limit_error"
                assert over.json()["error"]["details"] == {"open_streams": MAX_OPEN_STREAMS}
                assert over.headers["retry-after"] == "1"
        # A plain (non-streaming) request is not a stream: it still gets in.
        plain = chat_body(*DEEPSEEK, "hi [[sim tokens=1]]")
        assert (await edge.post("/api/v1/chat", json=plain, headers=auth(key))).status_code == 200
        await first.aclose()  # the client leaves mid-stream: its slot is given back
        assert await _admitted_within(edge, token, seconds=10)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/chat", chat_body(*DEEPSEEK, "hi [[sim latency_ms=20000]]", stream=True)),
        (
            "/v1/chat/completions",
            {
                "model": "deepseek/deepseek-chat",
                "messages": [{"role": "user", "content": "hi [[sim latency_ms=20000]]"}],
                "stream": True,
            },
        ),
    ],
    ids=["native", "openai"],
)
async def test_a_client_gone_before_its_stream_began_gives_its_slot_back(
    fleet: FleetConfig, path: str, body: dict[str, Any]
) -> None:
    redis = Redis.from_url(fleet.redis_url)
    with running_edge(fleet, MAX_OPEN_STREAMS="1") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as edge:
            user_id, token = await register(edge)
            slots = RedisKeys(fleet.redis_prefix).open_streams("user", user_id)
            waiting = asyncio.ensure_future(edge.post(path, json=body, headers=auth(token)))
            try:

                async def slot_held() -> bool:
                    return await redis.zcard(slots) == 1

                await eventually(slot_held, "the waiting stream holding the user's one slot")
                async with AsyncExitStack() as stack:
                    assert (await _open_stream(stack, edge, token)).status_code == 429
            finally:
                waiting.cancel()  # the client leaves before the first token (20 s away)
                await redis.aclose()
            assert await _admitted_within(edge, token, seconds=10)


@pytest.mark.parametrize(
    ("text", "status", "ends_with"),
    [
        ("hi [[sim tokens=3]]", 200, "finish_reason"),
        ("hi [[sim fail=midstream]]", 200, "provider_error"),  # the error ends the stream
        ("hi [[sim fail=500]]", 502, None),  # failed before it began: an error answer
    ],
    ids=["ends", "fails-midstream", "fails-before"],
)
async def test_a_stream_slot_is_given_back_when_the_stream_ends_or_fails(
    edge: httpx.AsyncClient, fleet: FleetConfig, text: str, status: int, ends_with: str | None
) -> None:
    user_id, token = await register(edge)
    redis = Redis.from_url(fleet.redis_url)
    slots = RedisKeys(fleet.redis_prefix).open_streams("user", user_id)
    try:
        for _ in range(MAX_OPEN_STREAMS + 1):  # one more than the cap: each gave its slot back
            body = chat_body(*DEEPSEEK, text, stream=True)
            response = await edge.post("/api/v1/chat", json=body, headers=auth(token))
            assert response.status_code == status, response.text
            if ends_with is None:
                assert_envelope(response, status, "provider_error")
            else:
                payloads = sse_payloads(response.text)
                assert payloads[-1] == "[DONE]"
                assert ends_with in orjson.dumps(payloads[-2]).decode()

        async def all_given_back() -> bool:
            return await redis.zcard(slots) == 0

        await eventually(all_given_back, "every stream slot given back")
    finally:
        await redis.aclose()


async def test_a_slot_an_edge_never_gave_back_expires(redis_url: str) -> None:
    """A dead edge cannot release its streams: their slots outlive the longest stream only."""
    redis = Redis.from_url(redis_url)
    admission = Admission(redis, RedisKeys(f"gw-slots-{secrets.token_hex(4)}"))
    limits, slot = Limits(requests=100, window_seconds=60), StreamSlot(allowed=1, ttl_ms=5000)
    now = int(time.time() * 1000)
    try:
        _, held = await admission.admit(
            scope="user", owner_id="u", limits=limits, now_ms=now, stream=slot
        )
        with pytest.raises(RateLimitError):
            await admission.admit(
                scope="user", owner_id="u", limits=limits, now_ms=now + 4000, stream=slot
            )
        _, taken_over = await admission.admit(
            scope="user", owner_id="u", limits=limits, now_ms=now + 5001, stream=slot
        )
        assert held is not None and taken_over is not None
        await admission.settle(taken_over, 0, now + 5002)
        await admission.admit(
            scope="user", owner_id="u", limits=limits, now_ms=now + 5003, stream=slot
        )
    finally:
        await redis.aclose()


@pytest.fixture
def small_stream_caps(fleet: FleetConfig) -> Iterator[str]:
    """A second edge replica on the same Redis, whose caps are 3 streams a user, 2 a key."""
    with running_edge(fleet, MAX_OPEN_STREAMS="3", MAX_OPEN_STREAMS_PER_KEY="2") as url:
        yield url


async def test_open_streams_are_counted_across_replicas_and_per_key(
    edge: httpx.AsyncClient, small_stream_caps: str
) -> None:
    _, token = await register(edge)
    created = await edge.post("/api/v1/api-keys", json={"name": "two"}, headers=auth(token))
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    async with (
        httpx.AsyncClient(base_url=small_stream_caps, timeout=30.0) as replica,
        AsyncExitStack() as held,
    ):
        for _ in range(2):
            assert (await _open_stream(held, replica, key)).status_code == 200
        over_key = await _open_stream(held, replica, key)
        assert over_key.status_code == 429, over_key.text
        assert over_key.json()["error"]["details"] == {"open_streams": 2}
        # The user's third stream, on the other replica, is counted where the replica sees it.
        assert (await _open_stream(held, edge, token)).status_code == 200
        over_user = await _open_stream(held, replica, token)
        assert over_user.status_code == 429, over_user.text
        assert over_user.json()["error"]["details"] == {"open_streams": 3}
