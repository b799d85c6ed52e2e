"""The official `openai` SDK as a client of the running edge's OpenAI-compatible API."""

import base64
import json
import struct
from urllib.parse import quote

import httpx
import openai
import pytest

from services.fleet.plan import FleetConfig
from services.simulator import retrieval
from tests.e2e.helpers import auth, new_trace, sse_payloads, upstream_record, upstream_usage

MODEL = "deepseek/deepseek-chat"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    },
}
PARIS = quote(json.dumps({"city": "Paris"}))
WEATHER_QUESTION = f"Weather? [[sim tool=get_weather tool_args={PARIS}]]"


@pytest.fixture
def client(fleet: FleetConfig, user_token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fleet.edge_url}/v1", api_key=user_token, max_retries=0)


@pytest.fixture
def async_client(fleet: FleetConfig, user_token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{fleet.edge_url}/v1", api_key=user_token, max_retries=0)


async def test_sync_chat_completion(client: openai.OpenAI, simulator: httpx.AsyncClient) -> None:
    trace = new_trace()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Explain quantum computing"},
        ],
        max_completion_tokens=100,
        temperature=0.3,
        extra_headers={"X-Request-ID": trace},
    )

    record = await upstream_record(simulator, trace)
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == record["reply"]
    assert completion.choices[0].finish_reason == "stop"
    prompt, generated = upstream_usage(record)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        prompt,
        generated,
    )
    sent = record["body"]
    assert sent["model"] == "deepseek-chat"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_tokens"] == 100
    assert sent["temperature"] == 0.3


async def test_async_streaming_chat_with_usage(
    async_client: openai.AsyncOpenAI, simulator: httpx.AsyncClient
) -> None:
    trace = new_trace()
    stream = await async_client.chat.completions.create(
        model="anthropic/claude-sonnet-4-20250514",
        messages=[{"role": "user", "content": "Tell me a story [[sim tokens=30]]"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Request-ID": trace},
    )
    chunks = [chunk async for chunk in stream]

    record = await upstream_record(simulator, trace)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == record["reply"]
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 30


async def test_raw_shapes_match_openai(edge: httpx.AsyncClient, user_token: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi [[sim tokens=3]]"}]}
    headers = auth(user_token)
    answer = (await edge.post("/v1/chat/completions", json=body, headers=headers)).json()
    assert answer["id"].startswith("chatcmpl-")
    assert answer["object"] == "chat.completion"
    assert isinstance(answer["created"], int)
    assert answer["choices"][0]["logprobs"] is None
    assert set(answer["choices"][0]["message"]) == {"role", "content"}

    body |= {"stream": True, "stream_options": {"include_usage": True}}
    response = await edge.post("/v1/chat/completions", json=body, headers=headers)
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    *chunks, usage = payloads[:-1]
    assert {c["id"] for c in [*chunks, usage]} == {chunks[0]["id"]}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "finish_reason": "stop",
        "logprobs": None,
    }
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 3


async def test_a_mid_stream_failure_is_an_error_chunk_then_done(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi [[sim fail=midstream]]"}],
        "stream": True,
    }
    response = await edge.post("/v1/chat/completions", json=body, headers=auth(user_token))
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    error = payloads[-2]["error"]  # OpenAI's shape
    assert error["type"] == "server_error"
    assert error["details"]["provider"] == "deepseek"
    assert error["message"]
    assert error["trace_id"] == response.headers["x-request-id"]


async def test_sync_streaming_without_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi [[sim tokens=10]]"}], stream=True
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks)
    assert len("".join(c.choices[0].delta.content or "" for c in chunks).split()) == 10


async def test_async_chat_completion(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(
        model="openrouter/openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.model == "openrouter/openai/gpt-4o-mini"
    assert completion.choices[0].message.content


async def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": WEATHER_QUESTION}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


async def test_streaming_tool_round_trip_through_an_anthropic_model(
    async_client: openai.AsyncOpenAI, simulator: httpx.AsyncClient
) -> None:
    model = "anthropic/claude-sonnet-4-20250514"
    messages: list[dict[str, object]] = [{"role": "user", "content": WEATHER_QUESTION}]
    stream = await async_client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    names, arguments, ids, reasons = [], "", [], []
    async for chunk in stream:
        for choice in chunk.choices:
            reasons.append(choice.finish_reason)
            for piece in choice.delta.tool_calls or []:
                assert piece.index == 0
                ids += [piece.id] if piece.id else []
                if piece.function and piece.function.name:
                    names.append(piece.function.name)
                arguments += (piece.function.arguments or "") if piece.function else ""
    assert names == ["get_weather"]
    assert len(ids) == 1
    assert json.loads(arguments) == {"city": "Paris"}
    assert [r for r in reasons if r] == ["tool_calls"]

    call = {
        "id": ids[0],
        "type": "function",
        "function": {"name": names[0], "arguments": arguments},
    }
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": ids[0], "content": "Sunny, 21 C"},
    ]
    trace = new_trace()
    follow_up = await async_client.chat.completions.create(
        model=model,
        messages=messages,
        tools=[WEATHER_TOOL],
        stream=True,
        extra_headers={"X-Request-ID": trace},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in follow_up if c.choices])
    record = await upstream_record(simulator, trace)
    assert text == record["reply"]
    sent = record["body"]["messages"]
    assert sent[1]["content"][0] == {
        "type": "tool_use",
        "id": ids[0],
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert sent[2]["role"] == "user"
    assert sent[2]["content"][0]["type"] == "tool_result"
    assert sent[2]["content"][0]["tool_use_id"] == ids[0]


async def test_a_mid_stream_failure_raises_in_the_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi [[sim fail=midstream]]"}],
        stream=True,
    )
    with pytest.raises(openai.APIError):
        list(stream)


@pytest.mark.parametrize("encoding", ["float", "base64", None])
async def test_embeddings(client: openai.OpenAI, encoding: str | None) -> None:
    texts = ["hello world", "goodbye world"]
    extra = {"encoding_format": encoding} if encoding else {}
    result = client.embeddings.create(
        model="litellm/text-embedding-3-small",
        input=texts,
        **extra,  # type: ignore[arg-type]
    )

    assert result.model == "litellm/text-embedding-3-small"
    assert [d.index for d in result.data] == [0, 1]
    for item, text in zip(result.data, texts, strict=True):
        vector = item.embedding
        if encoding == "base64":  # asked for explicitly, the SDK hands the string over as is
            raw = base64.b64decode(str(vector))
            vector = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        assert vector == pytest.approx(retrieval.vector(text), abs=1e-5)
    assert result.usage.prompt_tokens == retrieval.token_count(texts)


async def test_async_embeddings_with_nim_input_type(async_client: openai.AsyncOpenAI) -> None:
    result = await async_client.embeddings.create(
        model="nvidia_nim/nvidia/nv-embedqa-e5-v5",
        input="a single query",
        extra_body={"input_type": "query"},
    )
    [item] = result.data
    assert item.embedding == pytest.approx(retrieval.vector("a single query"), abs=1e-5)


async def test_models_list(client: openai.OpenAI) -> None:
    ids = {m.id: m.owned_by for m in client.models.list()}
    assert ids[MODEL] == "deepseek"
    assert ids["huggingface/BAAI/bge-large-en-v1.5"] == "huggingface"
    assert all(owner == model.split("/", 1)[0] for model, owner in ids.items())
    assert client.models.retrieve(MODEL).id == MODEL


@pytest.mark.parametrize(
    ("model", "extra", "message", "raised"),
    [
        ("no-slash", {}, "provider/model", openai.BadRequestError),
        ("nope/some-model", {}, "Unknown provider", openai.NotFoundError),
        ("deepseek/not-a-model", {}, "Invalid model", openai.NotFoundError),
        (MODEL, {"n": 2}, "'n'", openai.BadRequestError),
    ],
)
async def test_bad_requests_raise_bad_request(
    client: openai.OpenAI,
    model: str,
    extra: dict[str, object],
    message: str,
    raised: type[openai.APIStatusError],
) -> None:
    """A bad request is a 400, a model that does not exist OpenAI's 404 `model_not_found`."""
    with pytest.raises(raised) as caught:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            **extra,  # type: ignore[arg-type]
        )
    assert message in caught.value.message


async def test_a_bad_token_raises_authentication_error(fleet: FleetConfig) -> None:
    client = openai.OpenAI(base_url=f"{fleet.edge_url}/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
