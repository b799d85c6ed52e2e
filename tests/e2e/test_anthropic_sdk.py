"""The official `anthropic` SDK as a client of the running edge (`POST /v1/messages`)."""

import anthropic
import httpx
import pytest

from services.fleet.plan import FleetConfig
from tests.e2e.anthropic_support import (
    ANTHROPIC_MODEL,
    TARGETS,
    assert_error_body,
    client,
    sse_events,
    traced,
    user,
)
from tests.e2e.helpers import upstream_record, upstream_usage


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
    ("extra", "needle", "status", "kind"),
    [
        ({"frobnicate": True}, "frobnicate", 400, "invalid_request_error"),
        ({"model": "nowhere/some-model"}, "nowhere", 404, "not_found_error"),
        ({"temperature": 1.5}, "temperature", 400, "invalid_request_error"),
    ],
)
async def test_invalid_requests_are_bad_requests(
    edge: httpx.AsyncClient,
    user_token: str,
    extra: dict[str, object],
    needle: str,
    status: int,
    kind: str,
) -> None:
    """A bad field is a 400; a model that does not exist is Anthropic's 404."""
    body = {"model": "deepseek/deepseek-chat", "max_tokens": 20, "messages": user("Hi"), **extra}
    response = await edge.post("/v1/messages", json=body, headers={"x-api-key": user_token})

    assert response.status_code == status, response.text
    assert_error_body(response.json(), kind)
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
