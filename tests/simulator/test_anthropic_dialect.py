"""The Anthropic Messages surface, driven by the official anthropic SDK."""

import anthropic
import httpx
import httpx2
import pytest

MODEL = "claude-sonnet-4-20250514"
USER = {"role": "user", "content": "Say hello to the simulator please"}
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture
def client(sim_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{sim_url}/anthropic", api_key="sk-ant-test", max_retries=0
    )


def test_create_and_stream_agree(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, system="Be brief.", messages=[USER]
    )
    with client.messages.stream(
        model=MODEL, max_tokens=100, system="Be brief.", messages=[USER]
    ) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert message.role == "assistant"
    assert message.content[0].type == "text"
    text = message.content[0].text
    assert len(text.split()) == 12
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 8
    assert message.usage.output_tokens == 12
    assert streamed_text == text
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 8
    assert final.usage.output_tokens == 12


def test_system_as_text_blocks_counts_tokens(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        system=[{"type": "text", "text": "You are a terse bot."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
    )
    assert message.usage.input_tokens == 7


def test_max_tokens_stops_with_max_tokens(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=3, messages=[USER]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 3
    assert final.content[0].type == "text"
    assert len(final.content[0].text.split()) == 3


def test_system_role_in_messages_is_rejected(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="system"):
        client.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "system", "content": "no"}, USER],  # type: ignore[list-item]
        )


@pytest.mark.parametrize(
    ("directive", "key", "error", "error_type"),
    [
        ("[[sim fail=401]]", "sk-ant-test", anthropic.AuthenticationError, "authentication_error"),
        ("[[sim fail=403]]", "sk-ant-test", anthropic.PermissionDeniedError, "permission_error"),
        ("", "sk-ant-fail-401", anthropic.AuthenticationError, "authentication_error"),
        ("[[sim fail=429]]", "sk-ant-test", anthropic.RateLimitError, "rate_limit_error"),
        ("", "sk-ant-fail-429", anthropic.RateLimitError, "rate_limit_error"),
        ("[[sim fail=500]]", "sk-ant-test", anthropic.InternalServerError, "api_error"),
        ("[[sim fail=529]]", "sk-ant-test", anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_failures_raise_sdk_errors(
    sim_url: str,
    directive: str,
    key: str,
    error: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    client = anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": f"hello {directive}"}]
    with pytest.raises(error) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=messages)  # type: ignore[arg-type]
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == caught.value.response.headers["request-id"]
    if caught.value.status_code in (429, 529):
        assert caught.value.response.headers["retry-after"] == "1"


def test_midstream_error_event_raises(client: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": "hello [[sim fail=midstream]]"}]
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model=MODEL, max_tokens=50, messages=messages) as stream,  # type: ignore[arg-type]
    ):
        received.extend(stream.text_stream)
    assert len(received) == 3
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "overloaded_error"


def test_disconnect_drops_the_stream(client: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": "hello [[sim fail=disconnect]]"}]
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        client.messages.stream(model=MODEL, max_tokens=50, messages=messages) as stream,  # type: ignore[arg-type]
    ):
        stream.get_final_message()


def test_disconnect_without_stream_is_a_connection_error(client: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": "hello [[sim fail=disconnect]]"}]
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=MODEL, max_tokens=50, messages=messages)  # type: ignore[arg-type]


def test_models_list(client: anthropic.Anthropic) -> None:
    models = list(client.models.list())
    assert models[0].id == MODEL
    assert all(m.type == "model" and m.display_name for m in models)


def test_count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, system="Be brief.", messages=[USER])
    assert counted.input_tokens == 8


def test_missing_key_is_authentication_error(sim_url: str) -> None:
    response = httpx.post(
        f"{sim_url}/anthropic/v1/messages",
        headers={"anthropic-version": "2023-06-01"},
        json={"model": MODEL, "max_tokens": 5, "messages": [USER]},
    )
    assert response.status_code == 401
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("headers", "body", "needle"),
    [
        ({"x-api-key": "sk-ant-test"}, {"model": MODEL, "max_tokens": 5}, "anthropic-version"),
        (HEADERS, {"model": MODEL, "messages": [USER]}, "max_tokens"),
    ],
)
def test_bad_requests_are_invalid_request_errors(
    sim_url: str, headers: dict[str, str], body: dict[str, object], needle: str
) -> None:
    response = httpx.post(f"{sim_url}/anthropic/v1/messages", headers=headers, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert needle in response.json()["error"]["message"]
