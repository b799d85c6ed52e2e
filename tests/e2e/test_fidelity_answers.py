"""Answers as the providers document them (docs/providers.md): argument-less tool calls streamed
from Anthropic, errors inside a 200 answer, Perplexity's usage and `<think>` reasoning, NIM's
202 polling, and what the Anthropic-compatible surface reports for other providers."""

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from services.fleet.plan import FleetConfig
from shared.messages import RerankJob, RerankResultEvent
from shared.schemas import RerankRequest
from tests.e2e.anthropic_support import client as anthropic_client
from tests.e2e.anthropic_support import sse_events, user
from tests.e2e.helpers import auth, chat_body, new_trace, sse_payloads, upstream_record
from tests.e2e.reliability import Pool, pool_for

NOW_TOOL: Any = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}


def test_streamed_anthropic_call_without_arguments_has_an_empty_object(
    fleet: FleetConfig, user_token: str
) -> None:
    client = openai.OpenAI(base_url=f"{fleet.edge_url}/v1", api_key=user_token, max_retries=0)
    stream = client.chat.completions.create(
        model="anthropic/claude-sonnet-4-20250514",
        messages=[{"role": "user", "content": "time? [[sim tool=now]]"}],
        tools=[NOW_TOOL],
        stream=True,
    )
    arguments = "".join(
        call.function.arguments or ""
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function
    )
    assert arguments == "{}"


@pytest.mark.parametrize("stream", [False, True])
async def test_openrouter_error_after_it_began_is_an_error(
    edge: httpx.AsyncClient, user_token: str, stream: bool
) -> None:
    body = chat_body("openrouter", "openai/gpt-4o-mini", "hi [[sim fail=midstream]]", stream=stream)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    if stream:
        last = sse_payloads(response.text)[-2]
        assert isinstance(last, dict)
        error = last["error"]
    else:
        assert response.status_code == 502, response.text
        error = response.json()["error"]
    assert "Provider" in error["message"]


async def test_openrouter_bare_error_body_keeps_its_message(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = chat_body("openrouter", "openai/gpt-4o-mini", "hi [[sim fail=error_body]]")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    assert response.status_code == 502, response.text
    assert "Provider returned error" in response.json()["error"]["message"]


async def test_text_generation_inference_string_error_reaches_the_client(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = chat_body(
        "huggingface", "meta-llama/Llama-3.1-8B-Instruct", "hi [[sim fail=midstream]]", stream=True
    )
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    last = sse_payloads(response.text)[-2]
    assert isinstance(last, dict)
    assert "Request failed during generation" in last["error"]["message"]


async def test_perplexity_research_usage_counts_citations_and_reasoning(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = new_trace()
    body = chat_body("perplexity", "sonar-deep-research", "Survey fusion power")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    usage, raw = response.json()["usage"], (await upstream_record(simulator, trace))["usage"]
    assert raw["citation_tokens"] > 0 and raw["reasoning_tokens"] > 0
    assert usage["prompt_tokens"] == raw["prompt_tokens"] + raw["citation_tokens"]
    assert usage["completion_tokens"] == raw["completion_tokens"] + raw["reasoning_tokens"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": raw["reasoning_tokens"]}
    assert response.json()["provider_metadata"]["cost"] == raw["cost"]


@pytest.mark.parametrize("stream", [False, True])
async def test_perplexity_think_tags_become_reasoning(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, stream: bool
) -> None:
    trace = new_trace()
    body = chat_body("perplexity", "sonar-reasoning-pro", "Why [[sim tokens=6]]", stream=stream)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    record = await upstream_record(simulator, trace)
    if stream:
        deltas = [p["delta"] for p in sse_payloads(response.text) if isinstance(p, dict)]
        content = "".join(d.get("content", "") for d in deltas)
        reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    else:
        message = response.json()["choices"][0]["message"]
        content, reasoning = message["content"], message["reasoning_content"]
    assert reasoning == record["reasoning"]
    assert content == record["reply"]


async def test_perplexity_lists_no_deprecated_model(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    response = await edge.get("/api/v1/providers", headers=auth(user_token))
    perplexity = next(p for p in response.json()["providers"] if p["id"] == "perplexity")
    assert "sonar-reasoning" not in perplexity["models"]
    assert "sonar-reasoning-pro" in perplexity["models"]


async def test_nim_hosted_rerank_is_polled_when_accepted(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = new_trace()
    body = {
        "provider": "nvidia_nim",
        "model": "nvidia/llama-3.2-nv-rerankqa-1b-v2",
        "query": "gpu memory [[sim pending=3]]",
        "documents": ["cpu cache", "gpu memory bandwidth"],
    }
    response = await edge.post("/api/v1/rerank", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    assert [r["index"] for r in response.json()["results"]] == [1, 0]
    records = (await simulator.get("/_sim/requests", params={"trace_id": trace})).json()
    polls = [r for r in records["requests"] if "/pexec/status/" in r["path"]]
    assert len(polls) == 3


@pytest.fixture
async def pool(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    async for private in pool_for(fleet, redis_url):
        yield private


async def test_self_hosted_nim_ranks_on_its_own_base_url(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    """No retrieval URL and a base URL that is not NVIDIA's hosted one: a self-hosted NIM."""
    await pool.worker("nvidia_nim", NVIDIA_NIM_RETRIEVAL_URL="")
    now, trace = time.time(), new_trace()
    request = RerankRequest(
        provider="nvidia_nim",
        model="nvidia/llama-3.2-nv-rerankqa-1b-v2",
        query="gpu memory",
        documents=["cpu cache", "gpu memory bandwidth"],
    )
    job_id = f"job_test_{secrets.token_hex(6)}"
    job = RerankJob(
        id=job_id,
        reply_to=pool.keys.replies(job_id),
        trace=trace,
        ts=now,
        deadline=now + 30,
        user_id="usr_test",
        request=request,
    )
    reply = await pool.send(job, "nvidia_nim")
    answer = await reply.terminal()
    await reply.leave()

    assert isinstance(answer, RerankResultEvent), answer
    assert [r.index for r in answer.results] == [1, 0]
    record = await upstream_record(simulator, trace)
    assert record["path"] == "/nvidia_nim/ranking"


async def test_anthropic_surface_reports_the_real_input_usage_and_cache_fields(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = new_trace()
    body = {
        "model": "anthropic/claude-sonnet-4-20250514",
        "max_tokens": 100,
        "stream": True,
        "messages": user("Count the words in this sentence please"),
    }
    headers = {"x-api-key": user_token, "X-Request-ID": trace}
    response = await edge.post("/v1/messages", json=body, headers=headers)

    events = dict(sse_events(response.text))
    record = await upstream_record(simulator, trace)
    start = events["message_start"]["message"]["usage"]
    assert start["input_tokens"] == record["usage"]["input_tokens"] > 0
    final = events["message_delta"]["usage"]
    assert final["cache_read_input_tokens"] == 0
    assert final["cache_creation_input_tokens"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_surface_reports_the_stop_sequence(
    fleet: FleetConfig, user_token: str, stream: bool
) -> None:
    client = anthropic_client(fleet, user_token)
    model, ask = "anthropic/claude-sonnet-4-20250514", user("Tell me more")
    plain = client.messages.create(model=model, max_tokens=100, messages=ask)
    text = plain.content[0].text if plain.content[0].type == "text" else ""
    stop = text.split()[4]
    if stream:
        with client.messages.stream(
            model=model, max_tokens=100, messages=ask, stop_sequences=[stop]
        ) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(
            model=model, max_tokens=100, messages=ask, stop_sequences=[stop]
        )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == stop


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_surface_does_not_pass_a_failed_answer_as_complete(
    edge: httpx.AsyncClient, user_token: str, stream: bool
) -> None:
    body = {
        "model": "deepseek/deepseek-chat",
        "max_tokens": 100,
        "stream": stream,
        "messages": user("hi [[sim finish=insufficient_system_resource]]"),
    }
    response = await edge.post("/v1/messages", json=body, headers={"x-api-key": user_token})

    if stream:
        names = [name for name, _ in sse_events(response.text)]
        assert names[-1] == "error" and "message_delta" not in names
        error = sse_events(response.text)[-1][1]["error"]
    else:
        assert response.status_code == 503, response.text
        error = response.json()["error"]
    assert error["type"] == "overloaded_error"


@pytest.mark.parametrize(("status", "error_type"), [(402, "billing_error"), (504, "timeout_error")])
async def test_anthropic_surface_uses_anthropics_error_types(
    edge: httpx.AsyncClient, user_token: str, status: int, error_type: str
) -> None:
    body = {
        "model": "anthropic/claude-sonnet-4-20250514",
        "max_tokens": 100,
        "messages": user(f"hi [[sim fail={status}]]"),
    }
    response = await edge.post("/v1/messages", json=body, headers={"x-api-key": user_token})

    assert response.json()["error"]["type"] == error_type
