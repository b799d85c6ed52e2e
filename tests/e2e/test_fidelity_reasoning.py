"""Reasoning and per-model parameters as the providers document them (docs/providers.md §2-§4,
§10.1): the assistant's reasoning comes back on every surface and goes back upstream as the
provider requires; the provider's own thinking switch; parameters a model refuses get our 400."""

from typing import Any

import anthropic
import httpx
import openai
import pytest

from services.fleet.plan import FleetConfig
from tests.e2e.anthropic_support import client as anthropic_client
from tests.e2e.helpers import assert_envelope, auth, new_trace, sse_payloads, upstream_record

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = {"role": "user", "content": "Weather in Paris? [[sim tool=get_weather]]"}


async def chat(edge: httpx.AsyncClient, token: str, body: dict[str, Any], trace: str) -> Any:
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token, trace))
    assert response.status_code == 200, response.text
    return response.json()


async def test_deepseek_tool_loop_sends_the_reasoning_back(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    body = {"provider": "deepseek", "model": "deepseek-reasoner", "tools": [WEATHER]}
    first = await chat(edge, user_token, {**body, "messages": [ASK]}, new_trace())
    turn = first["choices"][0]["message"]
    assert turn["reasoning_content"] and turn["tool_calls"]
    result = {"role": "tool", "tool_call_id": turn["tool_calls"][0]["id"], "content": "sunny"}
    trace = new_trace()

    second = await chat(edge, user_token, {**body, "messages": [ASK, turn, result]}, trace)

    sent = (await upstream_record(simulator, trace))["body"]["messages"][1]
    assert sent["reasoning_content"] == turn["reasoning_content"]
    assert second["choices"][0]["finish_reason"] == "stop"


async def test_openai_sdk_tool_loop_keeps_deepseek_reasoning(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str
) -> None:
    client = openai.OpenAI(base_url=f"{fleet.edge_url}/v1", api_key=user_token, max_retries=0)
    model, trace = "deepseek/deepseek-reasoner", new_trace()
    first = client.chat.completions.create(model=model, messages=[ASK], tools=[WEATHER])
    message = first.choices[0].message
    assert message.tool_calls
    turn = message.model_dump(exclude_none=True)
    result = {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "sunny"}

    second = client.chat.completions.create(
        model=model,
        messages=[ASK, turn, result],
        tools=[WEATHER],
        extra_headers={"X-Request-ID": trace},
    )

    sent = (await upstream_record(simulator, trace))["body"]["messages"][1]
    assert turn["reasoning_content"]
    assert sent["reasoning_content"] == turn["reasoning_content"]
    assert second.choices[0].finish_reason == "stop"


async def test_anthropic_sdk_tool_loop_keeps_deepseek_reasoning(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str
) -> None:
    client = anthropic_client(fleet, user_token)
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}]
    model, ask = "deepseek/deepseek-reasoner", [ASK]
    first = client.messages.create(model=model, max_tokens=500, messages=ask, tools=tools)
    kinds = [block.type for block in first.content]
    call = next(b for b in first.content if b.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
    history: Any = [*ask, {"role": "assistant", "content": first.content}]

    trace = new_trace()
    second = client.messages.create(
        model=model,
        max_tokens=500,
        messages=[*history, {"role": "user", "content": [result]}],
        tools=tools,
        extra_headers={"X-Request-ID": trace},
    )

    sent = (await upstream_record(simulator, trace))["body"]["messages"][1]
    thinking = first.content[0].thinking if first.content[0].type == "thinking" else None
    assert kinds == ["thinking", "tool_use"]
    assert sent["reasoning_content"] == thinking
    assert second.stop_reason == "end_turn"


async def test_openrouter_reasoning_details_round_trip(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    body = {"provider": "openrouter", "model": "deepseek/deepseek-r1", "tools": [WEATHER]}
    first = await chat(edge, user_token, {**body, "messages": [ASK]}, new_trace())
    turn = first["choices"][0]["message"]
    details = turn["reasoning_details"]
    result = {"role": "tool", "tool_call_id": turn["tool_calls"][0]["id"], "content": "sunny"}
    trace = new_trace()

    await chat(edge, user_token, {**body, "messages": [ASK, turn, result]}, trace)

    sent = (await upstream_record(simulator, trace))["body"]["messages"][1]
    assert details == [
        {
            "type": "reasoning.text",
            "text": turn["reasoning_content"],
            "format": "unknown",
            "index": 0,
        }
    ]
    assert sent["reasoning_details"] == details
    assert "reasoning_content" not in sent


async def test_openrouter_streams_reasoning_details(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = {
        "provider": "openrouter",
        "model": "deepseek/deepseek-r1",
        "messages": [{"role": "user", "content": "hi [[sim reasoning_tokens=3]]"}],
        "stream": True,
    }
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    deltas = [p["delta"] for p in sse_payloads(response.text) if isinstance(p, dict)]
    details = [piece for delta in deltas for piece in delta.get("reasoning_details", [])]
    reasoning = "".join(delta.get("reasoning_content", "") for delta in deltas)
    assert [d["type"] for d in details] == ["reasoning.text"] * 3
    assert "".join(d["text"] for d in details) == reasoning


@pytest.mark.parametrize(
    ("provider", "model", "sent"),
    [
        ("deepseek", "deepseek-reasoner", {"thinking": {"type": "disabled"}}),
        ("openrouter", "deepseek/deepseek-r1", {"reasoning": {"enabled": False}}),
    ],
)
async def test_thinking_switched_off_with_the_providers_own_switch(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
    sent: dict[str, Any],
) -> None:
    trace = new_trace()
    body = {
        "provider": provider,
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "disabled"},
    }
    answer = await chat(edge, user_token, body, trace)

    record = await upstream_record(simulator, trace)
    assert {k: record["body"][k] for k in sent} == sent
    assert "reasoning_content" not in answer["choices"][0]["message"]


@pytest.mark.parametrize(
    ("provider", "model", "extra", "parameter"),
    [
        ("xai", "grok-3-mini", {"presence_penalty": 0.5}, "presence_penalty"),
        ("xai", "grok-3-mini", {"stop": ["END"]}, "stop"),
        ("xai", "grok-3-mini", {"reasoning_effort": "medium"}, "reasoning_effort"),
        ("xai", "grok-4-1-fast-reasoning", {"frequency_penalty": 1}, "frequency_penalty"),
        ("xai", "grok-3", {"reasoning_effort": "low"}, "reasoning_effort"),
        ("openrouter", "openai/gpt-4o-mini", {"reasoning_effort": "max"}, "reasoning_effort"),
        ("anthropic", "claude-sonnet-4-20250514", {"presence_penalty": 1}, "presence_penalty"),
        (
            "nvidia_nim",
            "meta/llama-3.3-70b-instruct",
            {"reasoning_effort": "low"},
            "reasoning_effort",
        ),
    ],
)
async def test_a_parameter_the_model_refuses_is_our_400_naming_it(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
    extra: dict[str, Any],
    parameter: str,
) -> None:
    trace = new_trace()
    body = {"provider": provider, "model": model, "messages": [ASK], **extra}
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    error = assert_envelope(response, 400, "validation_error")
    assert parameter in str(error["message"])
    details = error["details"]
    assert isinstance(details, dict)
    assert (details["provider"], details["model"], details["parameter"]) == (
        provider,
        model,
        parameter,
    )
    calls = (await simulator.get("/_sim/requests", params={"trace_id": trace})).json()
    assert [r for r in calls["requests"] if r["method"] == "POST"] == []


async def test_accepted_reasoning_values_reach_the_provider_in_its_form(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = new_trace()
    body = {
        "provider": "openrouter",
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": "xhigh",
    }
    await chat(edge, user_token, body, trace)
    xai = {**body, "provider": "xai", "model": "grok-3-mini", "reasoning_effort": "high"}
    await chat(edge, user_token, xai, new_trace())

    record = await upstream_record(simulator, trace)
    assert record["body"]["reasoning"] == {"effort": "xhigh"}


def test_openai_sdk_refusal_names_the_parameter(fleet: FleetConfig, user_token: str) -> None:
    client = openai.OpenAI(base_url=f"{fleet.edge_url}/v1", api_key=user_token, max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="xai/grok-3-mini",
            messages=[{"role": "user", "content": "hi"}],
            frequency_penalty=0.5,
        )
    assert "frequency_penalty" in refused.value.message


async def test_anthropic_sdk_sees_the_refusal_as_invalid_request(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str
) -> None:
    client, trace = anthropic_client(fleet, user_token), new_trace()
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model="xai/grok-3-mini",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            stop_sequences=["END"],
            extra_headers={"X-Request-ID": trace},
        )
    assert "'stop'" in refused.value.message
    calls = (await simulator.get("/_sim/requests", params={"trace_id": trace})).json()
    assert [r for r in calls["requests"] if r["method"] == "POST"] == []
