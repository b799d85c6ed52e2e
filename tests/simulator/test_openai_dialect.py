"""The DeepSeek (OpenAI-dialect) surface, driven by the official openai SDK."""

import httpcore2
import httpx
import httpx2
import openai
import pytest

USER = {"role": "user", "content": "Say hello to the simulator please"}


@pytest.fixture
def client(sim_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim_url}/deepseek", api_key="sk-test", max_retries=0)


def test_stream_joins_to_the_non_streamed_content(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "Be brief."}, USER]
    completion = client.chat.completions.create(model="deepseek-chat", messages=messages)
    stream = client.chat.completions.create(
        model="deepseek-chat",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = completion.choices[0].message.content
    assert text is not None
    assert len(text.split()) == 12
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 8
    assert completion.usage.completion_tokens == 12
    assert completion.usage.total_tokens == 20
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == completion.usage


async def test_async_client_streams_one_word_per_chunk(sim_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{sim_url}/deepseek/v1", api_key="sk-test")
    messages = [{"role": "user", "content": "count [[sim tokens=5]]"}]
    stream = await client.chat.completions.create(
        model="deepseek-chat", messages=messages, stream=True
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    await client.close()

    words = [p for p in pieces if p]
    assert len(words) == 5
    assert not words[0].startswith(" ")
    assert all(w.startswith(" ") for w in words[1:])


def test_max_tokens_truncates_with_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="deepseek-chat", messages=[USER], max_tokens=4
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4
    assert len((completion.choices[0].message.content or "").split()) == 4


def test_same_request_same_reply_different_request_different_reply(client: openai.OpenAI) -> None:
    def reply(text: str) -> str | None:
        messages = [{"role": "user", "content": text}]
        completion = client.chat.completions.create(model="deepseek-chat", messages=messages)
        return completion.choices[0].message.content

    assert reply("one") == reply("one")
    assert reply("one") != reply("two")


def test_deepseek_usage_carries_cache_fields(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="deepseek-chat", messages=[USER])
    assert completion.usage is not None
    extra = completion.usage.model_extra or {}
    assert extra["prompt_cache_hit_tokens"] == 0
    assert extra["prompt_cache_miss_tokens"] == completion.usage.prompt_tokens


def test_reasoner_returns_reasoning_content_first(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "think [[sim tokens=3 reasoning_tokens=4]]"}]
    completion = client.chat.completions.create(model="deepseek-reasoner", messages=messages)
    stream = client.chat.completions.create(
        model="deepseek-reasoner",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas = [c.choices[0].delta for c in stream if c.choices]

    message = completion.choices[0].message
    reasoning = (message.model_extra or {})["reasoning_content"]
    assert len(reasoning.split()) == 4
    assert len((message.content or "").split()) == 3
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4
    streamed_reasoning = [(d.model_extra or {}).get("reasoning_content") for d in deltas]
    assert "".join(r for r in streamed_reasoning if r) == reasoning
    assert "".join(d.content or "" for d in deltas) == message.content
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    last_reasoning = max(i for i, r in enumerate(streamed_reasoning) if r)
    assert last_reasoning < first_content


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["deepseek-chat", "deepseek-reasoner"]


@pytest.mark.parametrize(
    ("directive", "key", "error"),
    [
        ("[[sim fail=401]]", "sk-test", openai.AuthenticationError),
        ("", "sk-fail-401-user", openai.AuthenticationError),
        ("[[sim fail=429]]", "sk-test", openai.RateLimitError),
        ("", "sk-fail-429", openai.RateLimitError),
        ("[[sim fail=500]]", "sk-test", openai.InternalServerError),
        ("[[sim fail=503]]", "sk-test", openai.InternalServerError),
    ],
)
def test_failures_raise_sdk_errors(
    sim_url: str, directive: str, key: str, error: type[openai.APIStatusError]
) -> None:
    client = openai.OpenAI(base_url=f"{sim_url}/deepseek", api_key=key, max_retries=0)
    messages = [{"role": "user", "content": f"hello {directive}"}]
    with pytest.raises(error) as caught:
        client.chat.completions.create(model="deepseek-chat", messages=messages)
    assert isinstance(caught.value.body, dict)
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    if caught.value.status_code == 429:
        assert caught.value.response.headers["retry-after"] == "1"


def test_midstream_error_raises_after_some_content(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hello [[sim fail=midstream]]"}]
    stream = client.chat.completions.create(model="deepseek-chat", messages=messages, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError, match="overloaded"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert len([r for r in received if r]) == 3


def test_disconnect_drops_the_stream(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hello [[sim fail=disconnect]]"}]
    stream = client.chat.completions.create(model="deepseek-chat", messages=messages, stream=True)
    # The SDK's transport (httpx, or httpx2 in the openai versions built on it) raises as is.
    dropped = (
        httpx.RemoteProtocolError,
        httpx2.RemoteProtocolError,
        httpcore2.RemoteProtocolError,
        openai.APIConnectionError,
    )
    with pytest.raises(dropped):
        list(stream)


def test_disconnect_without_stream_is_a_connection_error(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "hello [[sim fail=disconnect]]"}]
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="deepseek-chat", messages=messages)


def test_missing_key_gets_deepseek_401_body(sim_url: str) -> None:
    response = httpx.post(
        f"{sim_url}/deepseek/chat/completions",
        json={"model": "deepseek-chat", "messages": [USER]},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == "invalid_request_error"
    assert error["param"] is None
    assert error["message"].startswith("Authentication Fails")


def test_balance(sim_url: str) -> None:
    response = httpx.get(
        f"{sim_url}/deepseek/user/balance", headers={"authorization": "Bearer sk-test"}
    )
    assert response.status_code == 200
    assert response.json()["is_available"] is True
    assert response.json()["balance_infos"][0]["currency"] == "USD"
