"""The official `anthropic` SDK as a client of the running edge (`POST /v1/messages`)."""

import secrets
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from services.fleet.plan import FleetConfig
from tests.e2e.helpers import upstream_record, upstream_usage

ANTHROPIC_MODEL = "claude-3-5-sonnet-20241022"
TARGETS = [f"anthropic/{ANTHROPIC_MODEL}", "deepseek/deepseek-chat"]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
}


def client(fleet: FleetConfig, token: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fleet.edge_url, api_key=token, max_retries=0)


def traced() -> tuple[str, dict[str, str]]:
    trace = f"req_test_{secrets.token_hex(6)}"
    return trace, {"X-Request-ID": trace}


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in filter(None, text.split("\n\n")):
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), frame
        data = orjson.loads(data_line[6:])
        assert data["type"] == name_line[7:]
        events.append((name_line[7:], data))
    return events


def assert_error_body(body: object, error_type: str) -> None:
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    assert body["error"]["trace_id"].startswith("req_")


@pytest.mark.parametrize("model", TARGETS)
async def test_create_returns_exactly_what_the_provider_answered(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str, model: str
) -> None:
    trace, headers = traced()
    message = client(fleet, user_token).messages.create(
        model=model,
        max_tokens=100,
        messages=user("Explain quantum computing briefly"),
        extra_headers=headers,
    )

    record = await upstream_record(simulator, trace)
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == model
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", record["reply"])
    ]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    prompt, completion = upstream_usage(record)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (prompt, completion)


@pytest.mark.parametrize("model", TARGETS)
async def test_stream_text_equals_the_final_message(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str, model: str
) -> None:
    trace, headers = traced()
    with client(fleet, user_token).messages.stream(
        model=model,
        max_tokens=200,
        messages=user("Tell me a story [[sim tokens=40]]"),
        extra_headers=headers,
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    record = await upstream_record(simulator, trace)
    assert text == record["reply"]
    assert len(text.split()) == 40
    assert [(b.type, getattr(b, "text", None)) for b in final.content] == [("text", text)]
    assert final.model == model
    assert final.stop_reason == "end_turn"
    prompt, completion = upstream_usage(record)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (prompt, completion)
    assert completion == 40


async def test_stream_has_anthropics_event_sequence(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = {
        "model": "deepseek/deepseek-chat",
        "max_tokens": 100,
        "stream": True,
        "messages": user("Hello [[sim tokens=5]]"),
    }
    response = await edge.post("/v1/messages", json=body, headers={"x-api-key": user_token})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    deltas = len(names) - 5  # the worker may join deltas that arrive together
    assert deltas >= 1
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["model"] == "deepseek/deepseek-chat"
    assert start["id"].startswith("msg_")
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    text = "".join(data["delta"]["text"] for _, data in events[2 : 2 + deltas])
    assert all(data["index"] == 0 for _, data in events[1:-2])
    assert len(text.split()) == 5
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] == 5


async def test_max_tokens_cut_maps_to_max_tokens(fleet: FleetConfig, user_token: str) -> None:
    message = client(fleet, user_token).messages.create(
        model=ANTHROPIC_MODEL,  # a bare model name means Anthropic
        max_tokens=5,
        messages=user("Go on [[sim tokens=50]]"),
    )

    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5


async def test_system_prompt_and_version_reach_anthropic_as_anthropic_fields(
    fleet: FleetConfig, simulator: httpx.AsyncClient, user_token: str
) -> None:
    trace, headers = traced()
    client(fleet, user_token).messages.create(
        model=f"anthropic/{ANTHROPIC_MODEL}",
        max_tokens=50,
        system="Be brief.",
        messages=user("Say hi"),
        stop_sequences=["END"],
        extra_headers={**headers, "anthropic-version": "2023-01-01"},
    )

    record = await upstream_record(simulator, trace)
    upstream = record["body"]
    assert isinstance(upstream, dict)
    system = upstream["system"]
    if isinstance(system, list):
        system = "".join(block["text"] for block in system)
    assert system == "Be brief."
    assert [m["role"] for m in upstream["messages"]] == ["user"]
    assert upstream["stop_sequences"] == ["END"]
    assert upstream["max_tokens"] == 50
    assert record["headers"]["anthropic-version"] == "2023-01-01"


async def test_x_api_key_and_bearer_token_both_authenticate(
    fleet: FleetConfig, edge: httpx.AsyncClient, user_token: str
) -> None:
    body = {"model": "deepseek/deepseek-chat", "max_tokens": 20, "messages": user("Hi")}
    by_key = await edge.post("/v1/messages", json=body, headers={"x-api-key": user_token})
    bearer = anthropic.Anthropic(base_url=fleet.edge_url, auth_token=user_token, max_retries=0)
    message = bearer.messages.create(
        model="deepseek/deepseek-chat", max_tokens=20, messages=user("Hi")
    )

    assert by_key.status_code == 200, by_key.text
    assert by_key.json()["content"][0]["type"] == "text"
    assert message.content[0].type == "text"


async def test_bad_token_is_an_authentication_error(fleet: FleetConfig) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(fleet, "not-a-token").messages.create(
            model="deepseek/deepseek-chat", max_tokens=20, messages=user("Hi")
        )

    assert caught.value.status_code == 401
    assert_error_body(caught.value.body, "authentication_error")
    assert caught.value.body["error"]["trace_id"] == caught.value.response.headers["x-request-id"]


async def test_missing_max_tokens_is_a_bad_request(fleet: FleetConfig, user_token: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(fleet, user_token).messages.create(
            model="deepseek/deepseek-chat",
            max_tokens=anthropic.omit,
            messages=user("Hi"),
            timeout=30,  # else the SDK derives a timeout from max_tokens
        )

    assert caught.value.status_code == 400
    assert_error_body(caught.value.body, "invalid_request_error")
    assert "max_tokens" in caught.value.body["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"frobnicate": True}, "frobnicate"),
        ({"model": "nowhere/some-model"}, "nowhere"),
        ({"temperature": 1.5}, "temperature"),
    ],
)
async def test_invalid_requests_are_bad_requests(
    edge: httpx.AsyncClient, user_token: str, extra: dict[str, object], needle: str
) -> None:
    body = {"model": "deepseek/deepseek-chat", "max_tokens": 20, "messages": user("Hi"), **extra}
    response = await edge.post("/v1/messages", json=body, headers={"x-api-key": user_token})

    assert response.status_code == 400, response.text
    assert_error_body(response.json(), "invalid_request_error")
    assert needle in response.json()["error"]["message"]
    assert response.json()["error"]["trace_id"] == response.headers["x-request-id"]


async def test_other_routes_keep_the_standard_envelope(edge: httpx.AsyncClient) -> None:
    response = await edge.post("/api/v1/chat", json={}, headers={"Authorization": "Bearer x"})

    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["type"] == "authentication_error"


async def test_provider_rate_limit_is_a_rate_limit_error(
    fleet: FleetConfig, user_token: str
) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(fleet, user_token).messages.create(
            model=f"anthropic/{ANTHROPIC_MODEL}",
            max_tokens=20,
            messages=user("Hi [[sim fail=429]]"),
        )

    assert_error_body(caught.value.body, "rate_limit_error")
    assert caught.value.response.headers["retry-after"] == "1"


async def test_mid_stream_failure_is_an_error_event(fleet: FleetConfig, user_token: str) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client(fleet, user_token).messages.stream(
            model=f"anthropic/{ANTHROPIC_MODEL}",
            max_tokens=100,
            messages=user("Hi [[sim fail=midstream tokens=20]]"),
        ) as stream,
    ):
        "".join(stream.text_stream)

    assert_error_body(caught.value.body, "overloaded_error")


async def test_route_is_in_the_openapi_schema(edge: httpx.AsyncClient) -> None:
    schema = (await edge.get("/openapi.json")).json()

    assert "post" in schema["paths"]["/v1/messages"]


def tool_use_blocks(message: anthropic.types.Message) -> list[anthropic.types.ToolUseBlock]:
    return [b for b in message.content if isinstance(b, anthropic.types.ToolUseBlock)]


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
