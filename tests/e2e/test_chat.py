"""Chat through the whole fleet: edge → Redis stream → worker → simulator → back."""

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.fleet.plan import FleetConfig
from shared.messages import DeltaEvent, DoneEvent
from tests.e2e.helpers import auth, chat_body, sse_payloads, upstream_record, upstream_usage
from tests.e2e.reliability import Pool, chat_job, pool_for, upstream_calls

PROVIDER_MODELS = [("anthropic", "claude-3-5-sonnet-20241022"), ("deepseek", "deepseek-chat")]


@pytest.mark.parametrize(("provider", "model"), PROVIDER_MODELS)
async def test_chat_returns_exactly_what_the_provider_answered(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = chat_body(provider, model, "Explain quantum computing briefly", max_tokens=100)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == trace
    answer = response.json()
    record = await upstream_record(simulator, trace)
    assert answer["provider"] == provider
    assert answer["model"] == model
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": record["reply"]}
    assert answer["choices"][0]["finish_reason"] == "stop"
    prompt, completion = upstream_usage(record)
    assert answer["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@pytest.mark.parametrize(("provider", "model"), PROVIDER_MODELS)
async def test_streaming_chat_relays_every_delta_then_usage_then_done(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = chat_body(provider, model, "Tell me a story [[sim tokens=40]]", stream=True)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response.text)
    record = await upstream_record(simulator, trace)
    assert payloads[-1] == "[DONE]"
    *deltas, final = payloads[:-1]
    assert "".join(d["delta"]["content"] for d in deltas) == record["reply"]
    assert len(str(record["reply"]).split()) == 40
    assert final["delta"] == {}
    assert final["finish_reason"] == "stop"
    prompt, completion = upstream_usage(record)
    assert (final["usage"]["prompt_tokens"], final["usage"]["completion_tokens"]) == (
        prompt,
        completion,
    )
    assert completion == 40


async def test_tokens_trickling_in_arrive_whole(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    """Tokens 1 ms apart, coalesced (STREAM_COALESCE) into however many deltas the timing
    makes: none lost or reordered."""
    trace = f"req_test_{secrets.token_hex(6)}"
    text = "Trickle [[sim tokens=60 chunk_delay_ms=1]]"
    body = chat_body("deepseek", "deepseek-chat", text, stream=True)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    deltas = [p["delta"]["content"] for p in sse_payloads(response.text)[:-2]]
    record = await upstream_record(simulator, trace)
    assert "".join(deltas) == record["reply"]
    assert len(str(record["reply"]).split()) == 60


@pytest.fixture
async def pool(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    async for created in pool_for(fleet, redis_url):
        yield created


async def test_deltas_within_the_coalescing_window_share_one_message(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    """The first delta goes out at once; the 19 after it, all within the window (60 s here),
    go out as one message when the answer ends. (200 ms apart, the first token is not read
    together with the second, which would make them share the first message.)"""
    await pool.worker("deepseek", STREAM_COALESCE="60s")
    job = chat_job("deepseek", "Trickle [[sim tokens=20 chunk_delay_ms=200]]", stream=True)
    reply = await pool.send(job)
    assert isinstance(await reply.terminal(), DoneEvent)
    deltas = [e.content for e in reply.events if isinstance(e, DeltaEvent)]
    [record] = await upstream_calls(simulator, job.trace)
    assert "".join(deltas) == record["reply"]
    assert len(deltas) == 2, deltas


async def test_max_tokens_cut_maps_to_length(edge: httpx.AsyncClient, user_token: str) -> None:
    body = chat_body(
        "anthropic", "claude-3-5-sonnet-20241022", "Go on [[sim tokens=50]]", max_tokens=5
    )
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 5


async def test_system_prompt_reaches_anthropic_as_top_level_system(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = {
        "provider": "anthropic",
        "model": "claude-3-5-sonnet-20241022",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "temperature": 0.5,
    }
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    record = await upstream_record(simulator, trace)
    sent = record["body"]
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [{"role": "user", "content": "Hello"}]
    assert sent["max_tokens"] > 0
    assert sent["temperature"] == 0.5
    assert record["headers"]["x-api-key"]
    assert record["headers"]["anthropic-version"] == "2023-06-01"


async def first_token_count(edge: httpx.AsyncClient, provider: str) -> float:
    """How many streams of `provider` the edge's /metrics says got their first delta."""
    response = await edge.get("/metrics")
    assert response.status_code == 200
    name = "gateway_time_to_first_token_seconds"
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name == name
        for sample in family.samples
        if sample.name == f"{name}_count" and sample.labels == {"provider": provider}
    )


async def test_time_to_first_token_is_recorded_as_the_first_delta_is_written(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    provider, model = PROVIDER_MODELS[1]
    before = await first_token_count(edge, provider)
    body = chat_body(provider, model, "Slowly [[sim tokens=20 chunk_delay_ms=50]]", stream=True)
    async with edge.stream("POST", "/api/v1/chat", json=body, headers=auth(user_token)) as r:
        assert r.status_code == 200
        chunks = r.aiter_bytes()
        await anext(chunks)  # the first delta; the rest of the answer takes about a second
        assert await first_token_count(edge, provider) == before + 1  # not at the stream's end
        rest = b"".join([chunk async for chunk in chunks])
    assert rest.endswith(b"data: [DONE]\n\n")
    assert await first_token_count(edge, provider) == before + 1  # once per stream
