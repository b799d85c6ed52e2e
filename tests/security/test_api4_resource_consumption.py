"""OWASP API4:2023 Unrestricted Resource Consumption.

What is capped: the request body (`MAX_BODY_BYTES`, announced or streamed); on every surface
the messages of a chat (`MAX_MESSAGES`), the characters of its text (`MAX_PROMPT_CHARS`), its
`max_tokens` (`MAX_OUTPUT_TOKENS`), the inputs of embeddings and rerank (`MAX_INPUTS`); the
number of tools and fallbacks, JSON depth and integer size; the tokens of a minute
(`tokens_per_minute` of a user or gateway API key, reserved before the job is queued); and the
streams a user (`MAX_OPEN_STREAMS`) and a gateway API key (`MAX_OPEN_STREAMS_PER_KEY`) have
open at once, counted in Redis across edge replicas.
Upstream, a worker reads at most `UPSTREAM_MAX_BYTES` of an answer (or of one stream line) and
`UPSTREAM_MAX_STREAM_BYTES` of a stream, and no longer than the job's deadline
(`REQUEST_TIMEOUT`): a provider that streams forever, only keeps the connection alive, or sends
too much is cut off with a `provider_error`.
"""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.edge.admission import Admission, Limits, StreamSlot
from services.fleet.plan import FleetConfig
from shared.errors import RateLimitError
from shared.messages import ChatJob, DeltaEvent, ErrorEvent, Event, decode_event, encode
from shared.redis_keys import RedisKeys
from shared.schemas import MAX_TOOLS, ChatRequest
from shared.settings import Settings
from tests.e2e.helpers import (
    assert_envelope,
    auth,
    chat_body,
    new_trace,
    running_edge,
    sse_payloads,
)
from tests.security.support import keeps_serving, register

MAX_BODY_BYTES = 1_048_576  # the fleet's default
DEEPSEEK = ("deepseek", "deepseek-chat")


async def test_a_body_over_the_limit_is_413_announced_or_streamed(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    huge = chat_body(*DEEPSEEK, "x" * (MAX_BODY_BYTES + 1))
    response = await edge.post("/api/v1/chat", json=huge, headers=auth(user_token))
    assert_envelope(response, 413, "validation_error")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"provider": "deepseek", "model": "deepseek-chat", "messages": [{"role": "user",'
        for _ in range(20):
            yield b' "content": "' + b"y" * 65_536 + b'",'
        yield b'"x": 1}]}'

    streamed = await edge.post(
        "/api/v1/chat",
        content=chunks(),
        headers=auth(user_token) | {"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413, streamed.text


async def test_many_messages_or_a_huge_prompt_cannot_pass_the_body_limit(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    messages = [{"role": "user", "content": "z" * 100}] * 20_000
    for path, body in (
        ("/api/v1/chat", {"provider": "deepseek", "model": "deepseek-chat", "messages": messages}),
        ("/v1/chat/completions", {"model": "deepseek/deepseek-chat", "messages": messages}),
        (
            "/v1/messages",
            {"model": "deepseek/deepseek-chat", "max_tokens": 5, "messages": messages},
        ),
        ("/api/v1/embeddings", {"provider": "huggingface", "model": "m", "input": "e" * 2**21}),
    ):
        response = await edge.post(path, json=body, headers=auth(user_token))
        assert response.status_code == 413, (path, response.text)


async def test_bounded_lists_and_numbers(edge: httpx.AsyncClient, user_token: str) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    too_many_tools = chat_body(*DEEPSEEK, "hi", tools=[tool] * (MAX_TOOLS + 1))
    too_many_fallbacks = chat_body(*DEEPSEEK, "hi", fallbacks=["deepseek/deepseek-chat"] * 6)
    for body in (
        too_many_tools,
        too_many_fallbacks,
        chat_body(*DEEPSEEK, "hi", max_tokens=0),
        chat_body(*DEEPSEEK, "hi", max_tokens=-1),
        chat_body(*DEEPSEEK, "hi", max_tokens=2**64),  # was a 500 at the queue hop
        chat_body(*DEEPSEEK, "hi", max_tokens=10**30),
        {**chat_body(*DEEPSEEK, "hi"), "messages": []},
    ):
        response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
        assert_envelope(response, 400, "validation_error")
    documents = {"provider": "nvidia_nim", "model": "m", "query": "q", "documents": ["d"] * 1001}
    response = await edge.post("/api/v1/rerank", json=documents, headers=auth(user_token))
    assert_envelope(response, 400, "validation_error")
    hello = [{"role": "user", "content": "hi"}]
    for path, body in (
        ("/v1/chat/completions", {"model": "deepseek/deepseek-chat", "messages": hello}),
        ("/v1/messages", {"model": "deepseek/deepseek-chat", "messages": hello}),
    ):
        for field in ("max_tokens", "max_completion_tokens"):
            if path == "/v1/messages" and field == "max_completion_tokens":
                continue
            response = await edge.post(path, json={**body, field: 2**64}, headers=auth(user_token))
            assert response.status_code == 400, (path, field, response.text)


async def test_an_absurd_max_tokens_is_refused_by_the_token_budget(
    edge: httpx.AsyncClient,
) -> None:
    _, token = await register(edge)
    created = await edge.post(
        "/api/v1/api-keys",
        json={"name": "budgeted", "limits": {"tokens_per_minute": 1000}},
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    absurd = chat_body(*DEEPSEEK, "hi [[sim tokens=1]]", max_tokens=5000)
    response = await edge.post("/api/v1/chat", json=absurd, headers=auth(key))
    assert_envelope(response, 429, "rate_limit_error")
    assert "retry-after" in response.headers
    fits = chat_body(*DEEPSEEK, "hi [[sim tokens=1]]", max_tokens=100)
    assert (await edge.post("/api/v1/chat", json=fits, headers=auth(key))).status_code == 200


def _default(name: str) -> int:
    value = Settings.model_fields[name].default
    assert isinstance(value, int)
    return value


MAX_MESSAGES = _default("max_messages")
MAX_PROMPT_CHARS = _default("max_prompt_chars")
MAX_OUTPUT_TOKENS = _default("max_output_tokens")
MAX_INPUTS = _default("max_inputs")
MAX_OPEN_STREAMS = _default("max_open_streams")


def _surfaces(messages: list[dict[str, str]], max_tokens: int) -> list[tuple[str, dict[str, Any]]]:
    """The same chat on the native, OpenAI- and Anthropic-compatible routes, to a model whose
    own output limit is the operator's cap (shared/model_limits.py)."""
    return [
        (
            "/api/v1/chat",
            chat_body(
                "deepseek", "deepseek-reasoner", "", messages=messages, max_tokens=max_tokens
            ),
        ),
        (
            "/v1/chat/completions",
            {"model": "deepseek/deepseek-reasoner", "messages": messages, "max_tokens": max_tokens},
        ),
        (
            "/v1/chat/completions",
            {
                "model": "deepseek/deepseek-reasoner",
                "messages": messages,
                "max_completion_tokens": max_tokens,
            },
        ),
        (
            "/v1/messages",
            {"model": "deepseek/deepseek-reasoner", "messages": messages, "max_tokens": max_tokens},
        ),
    ]


def _refused_field(response: httpx.Response) -> str:
    """The field a 400 names, in the standard envelope or Anthropic's (with our trace id)."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["trace_id"] == response.headers["x-request-id"]
    assert error["type"] in ("validation_error", "invalid_request_error")
    field: str = error["details"]["field"]
    assert f"'{field}'" in error["message"]
    return field


async def test_messages_prompt_size_and_max_tokens_are_capped_on_every_chat_surface(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    hello = [{"role": "user", "content": "hi"}]
    too_many = [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)
    too_long = [{"role": "user", "content": "w" * (MAX_PROMPT_CHARS + 1)}]
    cases = [
        (_surfaces(too_many, 5), "messages"),
        (_surfaces(too_long, 5), "messages"),
        (_surfaces(hello, MAX_OUTPUT_TOKENS + 1), "max_tokens"),
    ]
    for surfaces, field in cases:
        for path, body in surfaces:
            for stream in (False, True):
                response = await edge.post(
                    path, json={**body, "stream": stream}, headers=auth(user_token)
                )
                assert _refused_field(response) == field, (path, response.text)
    at_the_caps = [{"role": "user", "content": "hi [[sim tokens=1]]"}] * MAX_MESSAGES
    for path, body in _surfaces(at_the_caps, MAX_OUTPUT_TOKENS):
        response = await edge.post(path, json=body, headers=auth(user_token))
        assert response.status_code == 200, (path, response.text)


async def test_embeddings_and_rerank_inputs_are_capped(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    long_text = "v" * (MAX_PROMPT_CHARS // 2 + 1)
    for path, body, field in (
        ("/api/v1/embeddings", {"input": ["e"] * (MAX_INPUTS + 1)}, "input"),
        ("/api/v1/embeddings", {"input": [long_text, long_text]}, "input"),
        ("/api/v1/rerank", {"query": "q", "documents": ["d"] * (MAX_INPUTS + 1)}, "documents"),
        ("/api/v1/rerank", {"query": "q", "documents": [long_text, long_text]}, "documents"),
    ):
        provider = {"provider": "nvidia_nim", "model": "nvidia/nv-embedqa-e5-v5"}
        response = await edge.post(path, json=provider | body, headers=auth(user_token))
        assert _refused_field(response) == field, (path, response.text)
    openai = {"model": "nvidia_nim/nvidia/nv-embedqa-e5-v5", "input": ["e"] * (MAX_INPUTS + 1)}
    response = await edge.post("/v1/embeddings", json=openai, headers=auth(user_token))
    assert _refused_field(response) == "input"


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
                for _ in range(100):  # until the waiting stream holds the user's one slot
                    if await redis.zcard(slots) == 1:
                        break
                    await asyncio.sleep(0.05)
                async with AsyncExitStack() as stack:
                    assert (await _open_stream(stack, edge, token)).status_code == 429
            finally:
                waiting.cancel()  # the client leaves before the first token (20 s away)
                await redis.aclose()
            assert await _admitted_within(edge, token, seconds=10)


async def test_a_stream_slot_is_given_back_when_the_stream_ends_or_fails(
    edge: httpx.AsyncClient,
) -> None:
    _, token = await register(edge)
    for text in ("hi [[sim tokens=3]]", "hi [[sim fail=midstream]]", "hi [[sim fail=500]]"):
        for _ in range(MAX_OPEN_STREAMS + 1):
            body = chat_body(*DEEPSEEK, text, stream=True)
            response = await edge.post("/api/v1/chat", json=body, headers=auth(token))
            assert response.status_code in (200, 502), (text, response.text)


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


# --- Upstream answers: the most a worker reads of a stream, and how long it waits ---

UPSTREAM_MAX_STREAM_BYTES = 1_048_576  # the test fleet's (tests/conftest.py)
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
    """The simulator stopped streaming to `trace`: its one call is unfinished and sends no
    more frames."""

    async def chunks() -> int:
        found = await simulator.get("/_sim/requests", params={"trace_id": trace})
        (call,) = [r for r in found.json()["requests"] if r["method"] == "POST"]
        assert not call["finished"]
        return int(call["chunks"])

    sent = await chunks()
    await asyncio.sleep(0.5)  # ~100 frames if it were still streaming
    assert await chunks() == sent


async def test_a_stream_over_upstream_max_stream_bytes_is_cut(
    edge: httpx.AsyncClient, user_token: str, redis_url: str, fleet: FleetConfig
) -> None:
    body = chat_body(*DEEPSEEK, "hi [[sim tokens=20000]]", stream=True)  # ~4 MB of SSE
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    error = stream_error(response)
    assert f"a stream larger than {UPSTREAM_MAX_STREAM_BYTES} bytes" in error["message"]
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
    async with httpx.AsyncClient(base_url=short_deadline_edge, timeout=30) as client:
        response = await client.post("/api/v1/chat", json=body, headers=auth(user_token, trace))
    stream_error(response)
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
    job = ChatJob(
        id=f"job_test_{secrets.token_hex(6)}",
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
        await pubsub.subscribe(keys.reply(job.id))
        await redis.xadd(keys.jobs("deepseek"), {"job": encode(job)})
        give_up = time.monotonic() + 30
        while not events or isinstance(events[-1], DeltaEvent):
            assert time.monotonic() < give_up, events[-3:]
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                events.append(decode_event(message["data"]))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()
    error = events[-1]
    assert isinstance(error, ErrorEvent), error
    assert (error.type, error.status) == ("provider_error", 504)
    assert "deadline" in error.message and error.details == {"provider": "deepseek"}
    assert isinstance(events[0], DeltaEvent)
    await upstream_stopped(simulator, job.trace)


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
