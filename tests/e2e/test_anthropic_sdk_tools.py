"""Tool use through the official `anthropic` SDK against the running edge."""

from typing import Any

import httpx
import pytest

from services.fleet.plan import FleetConfig
from tests.e2e.anthropic_support import (
    TARGETS,
    WEATHER_TOOL,
    client,
    tool_use_blocks,
    traced,
    user,
)
from tests.e2e.helpers import upstream_record


@pytest.mark.parametrize("model", TARGETS)
async def test_tool_use_round_trip(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str, model: str
) -> None:
    sdk = client(fleet, user_token)
    question = user("What is the weather in Paris? [[sim tool=get_weather]]")
    first = sdk.messages.create(
        model=model, max_tokens=100, messages=question, tools=[WEATHER_TOOL]
    )

    assert first.stop_reason == "tool_use"
    (call,) = tool_use_blocks(first)
    assert call.name == "get_weather"
    assert call.input == {"location": "location-value"}

    trace, headers = traced()
    follow_up = [
        *question,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21C"}],
        },
    ]
    second = sdk.messages.create(
        model=model, max_tokens=100, messages=follow_up, tools=[WEATHER_TOOL], extra_headers=headers
    )

    record = await upstream_record(simulator, trace)
    assert second.stop_reason == "end_turn"
    assert [(b.type, getattr(b, "text", None)) for b in second.content] == [
        ("text", record["reply"])
    ]
    upstream = record["body"]
    assert isinstance(upstream, dict)
    last = upstream["messages"][-1]
    if model.startswith("anthropic/"):
        (result,) = [b for b in last["content"] if b["type"] == "tool_result"]
        assert result["tool_use_id"] == call.id
    else:
        assert last["role"] == "tool"
        assert last["tool_call_id"] == call.id
        assert last["content"] == "Sunny, 21C"


@pytest.mark.parametrize("model", TARGETS)
async def test_streamed_tool_use_reassembles_the_input(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str, model: str
) -> None:
    trace, headers = traced()
    with client(fleet, user_token).messages.stream(
        extra_headers=headers,
        model=model,
        max_tokens=100,
        messages=user("Weather in Rome? [[sim tool=get_weather]]"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    assert any(
        e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events
    )
    assert final.stop_reason == "tool_use"
    (call,) = tool_use_blocks(final)
    assert call.name == "get_weather"
    assert call.input == {"location": "location-value"}

    upstream = (await upstream_record(simulator, trace))["body"]
    if model.startswith("anthropic/"):
        assert upstream["tool_choice"]["type"] == "tool"
        assert upstream["tool_choice"]["name"] == "get_weather"
        assert upstream["tools"][0]["input_schema"] == WEATHER_TOOL["input_schema"]
    else:
        assert upstream["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        assert upstream["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]


async def test_images_and_tool_errors_reach_an_openai_dialect_provider(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace, headers = traced()
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    messages: list[Any] = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such city"},
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image", "source": image},
            ],
        },
    ]
    messages[2]["content"][0]["is_error"] = True
    client(fleet, user_token).messages.create(
        model="deepseek/deepseek-chat",
        max_tokens=20,
        messages=messages,
        tools=[WEATHER_TOOL],
        extra_headers=headers,
    )

    upstream = (await upstream_record(simulator, trace))["body"]
    assert upstream["messages"][1]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"},
        }
    ]
    assert upstream["messages"][2]["role"] == "tool"
    assert upstream["messages"][2]["tool_call_id"] == "toolu_1"
    assert "no such city" in upstream["messages"][2]["content"]
    assert "error" in upstream["messages"][2]["content"].lower()
    assert upstream["messages"][3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }


async def test_reasoning_streams_as_a_thinking_block(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace, headers = traced()
    with client(fleet, user_token).messages.stream(
        model="deepseek/deepseek-reasoner",
        max_tokens=100,
        messages=user("Think first [[sim tokens=6 reasoning_tokens=4]]"),
        extra_headers=headers,
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    record = await upstream_record(simulator, trace)
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == record["reasoning"]
    assert text == final.content[1].text == record["reply"]
