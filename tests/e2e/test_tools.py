"""Tool calling through `/api/v1/chat` in both dialects, streaming and not, and the follow-up
turn carrying the tool result to the provider in its own form."""

import secrets
import urllib.parse
from typing import Any

import httpx
import orjson
import pytest

from shared.providers import PROVIDERS
from tests.e2e.helpers import auth, sse_payloads
from tests.e2e.test_providers import upstream_record

TOOL_PROVIDERS = [
    ("anthropic", "claude-sonnet-4-20250514"),
    ("deepseek", "deepseek-chat"),
    ("openrouter", "openai/gpt-4o-mini"),
    ("xai", "grok-3"),
    ("litellm", "gpt-4o-mini"),
    ("nvidia_nim", "meta/llama-3.3-70b-instruct"),
    ("huggingface", "meta-llama/Llama-3.1-8B-Instruct"),
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a place",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["location"],
        },
    },
}
CLOCK = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        },
    },
}
ARGUMENTS = {"location": "Florence, IT", "days": 3, "note": 'quotes " and {braces}'}


def ask(provider: str, model: str, stream: bool, directive: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "messages": [{"role": "user", "content": f"Weather in Florence? [[sim {directive}]]"}],
        "tools": [WEATHER, CLOCK],
        "stream": stream,
        **extra,
    }


def encoded(arguments: dict[str, Any]) -> str:
    return urllib.parse.quote(orjson.dumps(arguments).decode(), safe="")


def reassemble(payloads: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tool calls rebuilt from OpenAI-shape deltas by index, and the final frame."""
    calls: dict[int, dict[str, Any]] = {}
    for payload in payloads[:-2]:
        for piece in payload["delta"].get("tool_calls", []):
            call = calls.setdefault(piece["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = piece.get("id") or call["id"]
            call["name"] = piece["function"].get("name") or call["name"]
            call["arguments"] += piece["function"].get("arguments", "")
    return [calls[i] for i in sorted(calls)], payloads[-2]


def test_every_provider_offering_function_calling_is_tested_here() -> None:
    able = [p.id for p in PROVIDERS.values() if p.can("function-calling")]
    assert sorted(p for p, _ in TOOL_PROVIDERS) == sorted(able)


@pytest.mark.parametrize(("provider", "model"), TOOL_PROVIDERS)
async def test_tool_call_non_streaming(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, provider, model
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = ask(provider, model, False, f"tool=get_weather tool_args={encoded(ARGUMENTS)}")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    record = await upstream_record(simulator, trace)
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == ARGUMENTS
    assert call["function"]["arguments"] == record["reply"]
    assert call["id"]
    if provider == "anthropic":
        assert record["body"]["tools"][0] == {
            "name": "get_weather",
            "description": "Current weather for a place",
            "input_schema": WEATHER["function"]["parameters"],
        }
    else:
        assert record["body"]["tools"] == [WEATHER, CLOCK]


@pytest.mark.parametrize(("provider", "model"), TOOL_PROVIDERS)
async def test_parallel_tool_calls_streaming_reassemble(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, provider, model
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = ask(provider, model, True, "tool=get_weather,get_time")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    calls, final = reassemble(payloads)
    record = await upstream_record(simulator, trace)
    assert final["finish_reason"] == "tool_calls"
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert all(c["id"] for c in calls)
    assert orjson.loads(calls[0]["arguments"]) == {"location": "location-value"}
    assert orjson.loads(calls[1]["arguments"]) == {"zone": "zone-value"}
    assert "".join(c["arguments"] for c in calls) == record["reply"]


async def test_anthropic_tool_choice_and_parallel_flag_are_mapped(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = ask(
        "anthropic",
        "claude-sonnet-4-20250514",
        False,
        "tool=get_weather",
        tool_choice="required",
        parallel_tool_calls=False,
    )
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    sent = (await upstream_record(simulator, trace))["body"]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}

    trace = f"req_test_{secrets.token_hex(6)}"
    named = {"type": "function", "function": {"name": "get_time"}}
    body = ask("anthropic", "claude-sonnet-4-20250514", False, "tool=get_time", tool_choice=named)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))
    assert response.status_code == 200, response.text
    sent = (await upstream_record(simulator, trace))["body"]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_time"}


def follow_up(provider: str, model: str, stream: bool) -> dict[str, Any]:
    calls = [
        {
            "id": "call_w",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Florence"}'},
        },
        {
            "id": "call_t",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"zone":"CET"}'},
        },
    ]
    return {
        "provider": provider,
        "model": model,
        "stream": stream,
        "tools": [WEATHER, CLOCK],
        "messages": [
            {"role": "user", "content": "Weather and time in Florence? [[sim tool=get_weather]]"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_w", "content": "Sunny, 24 C"},
            {"role": "tool", "tool_call_id": "call_t", "content": "14:05"},
        ],
    }


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("provider", "model"), TOOL_PROVIDERS)
async def test_tool_results_reach_the_provider_in_its_own_form(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
    stream: bool,
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = follow_up(provider, model, stream)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    record = await upstream_record(simulator, trace)
    if stream:
        payloads = sse_payloads(response.text)
        text = "".join(p["delta"].get("content", "") for p in payloads[:-2])
        finish = payloads[-2]["finish_reason"]
    else:
        text = response.json()["choices"][0]["message"]["content"]
        finish = response.json()["choices"][0]["finish_reason"]
    assert (text, finish) == (record["reply"], "stop")
    sent = record["body"]["messages"]
    if provider == "anthropic":
        assert sent[1] == {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_w",
                    "name": "get_weather",
                    "input": {"location": "Florence"},
                },
                {"type": "tool_use", "id": "call_t", "name": "get_time", "input": {"zone": "CET"}},
            ],
        }
        assert sent[2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_w", "content": "Sunny, 24 C"},
                {"type": "tool_result", "tool_use_id": "call_t", "content": "14:05"},
            ],
        }
        assert len(sent) == 3
    else:
        assert sent[1]["tool_calls"] == body["messages"][1]["tool_calls"]
        assert sent[2:] == [
            {"role": "tool", "tool_call_id": "call_w", "content": "Sunny, 24 C"},
            {"role": "tool", "tool_call_id": "call_t", "content": "14:05"},
        ]


async def test_tools_on_a_provider_without_function_calling_get_400(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = ask("perplexity", "sonar", False, "tool=get_weather")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert "Perplexity" in error["message"]
