"""Matrix rows driven through the official `openai` SDK (`base_url=<edge>/v1`)."""

import json

import openai
import pytest
from pydantic import BaseModel

from tests.compat.matrix import ANTHROPIC_MODEL, LONG_PROMPT, Ctx, Row, new_trace, params, row

ROWS: list[Row] = []
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class City(BaseModel):
    name: str
    population: int
    landmarks: list[str]


def client(ctx: Ctx) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{ctx.edge}/v1", api_key=ctx.token, max_retries=0)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@row(ROWS, "openai-json-object", "openai", "response_format json_object (DeepSeek)")
async def json_object(ctx: Ctx) -> None:
    completion = client(ctx).chat.completions.create(
        model="deepseek/deepseek-chat",
        messages=ask("Answer in JSON"),
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


@row(ROWS, "openai-parse-anthropic", "openai", "chat.completions.parse, Anthropic model")
async def parse_anthropic(ctx: Ctx) -> None:
    completion = client(ctx).chat.completions.parse(
        model=f"anthropic/{ANTHROPIC_MODEL}", messages=ask("Describe Paris"), response_format=City
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City) and parsed.landmarks
    assert completion.choices[0].finish_reason == "stop"


@row(ROWS, "openai-parse-stream-anthropic", "openai", "chat.completions.stream, JSON schema")
async def parse_stream_anthropic(ctx: Ctx) -> None:
    with client(ctx).chat.completions.stream(
        model=f"anthropic/{ANTHROPIC_MODEL}", messages=ask("Describe Rome"), response_format=City
    ) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, City)


@row(ROWS, "openai-parse-xai", "openai", "chat.completions.parse, json_schema forwarded (xAI)")
async def parse_xai(ctx: Ctx) -> None:
    trace, headers = new_trace()
    completion = client(ctx).chat.completions.parse(
        model="xai/grok-3",
        messages=ask("Describe Oslo"),
        response_format=City,
        extra_headers=headers,
    )
    assert isinstance(completion.choices[0].message.parsed, City)
    sent = (await ctx.upstream(trace))["body"]
    assert sent["response_format"]["type"] == "json_schema"


@row(ROWS, "openai-logprobs", "openai", "logprobs and top_logprobs, plain and streamed")
async def logprobs(ctx: Ctx) -> None:
    plain = client(ctx).chat.completions.create(
        model="deepseek/deepseek-chat", messages=ask("Hi"), logprobs=True, top_logprobs=2
    )
    tokens = plain.choices[0].logprobs.content if plain.choices[0].logprobs else None
    assert tokens and len(tokens[0].top_logprobs) == 2
    assert "".join(t.token for t in tokens) == plain.choices[0].message.content
    stream = client(ctx).chat.completions.create(
        model="deepseek/deepseek-chat", messages=ask("Hi"), logprobs=True, stream=True
    )
    streamed = [
        t.token for c in stream if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content or []
    ]  # fmt: skip
    assert streamed


@row(ROWS, "openai-n", "openai", "n > 1 choices (xAI)")
async def several_choices(ctx: Ctx) -> None:
    completion = client(ctx).chat.completions.create(
        model="xai/grok-3", messages=ask("Name a colour"), n=3
    )
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert len({c.message.content for c in completion.choices}) == 3


@row(ROWS, "openai-seed", "openai", "seed forwarded (xAI), refused by name (DeepSeek)")
async def seed(ctx: Ctx) -> None:
    trace, headers = new_trace()
    client(ctx).chat.completions.create(
        model="xai/grok-3", messages=ask("Hi"), seed=7, extra_headers=headers
    )
    assert (await ctx.upstream(trace))["body"]["seed"] == 7
    with pytest.raises(openai.BadRequestError) as refused:
        client(ctx).chat.completions.create(
            model="deepseek/deepseek-chat", messages=ask("Hi"), seed=7
        )
    assert (refused.value.code, refused.value.param) == ("unsupported_parameter", "seed")


@row(ROWS, "openai-user-anthropic", "openai", "user reaches Anthropic as metadata.user_id")
async def user_to_anthropic(ctx: Ctx) -> None:
    trace, headers = new_trace()
    client(ctx).chat.completions.create(
        model=f"anthropic/{ANTHROPIC_MODEL}",
        messages=ask("Hi"),
        user="end-user-42",
        extra_headers=headers,
    )
    assert (await ctx.upstream(trace))["body"]["metadata"] == {"user_id": "end-user-42"}


@row(ROWS, "openai-drop-params", "openai", "drop_params: dropped, named in X-Dropped-Params")
async def drop_params(ctx: Ctx) -> None:
    trace, headers = new_trace()
    raw = client(ctx).chat.completions.with_raw_response.create(
        model="deepseek/deepseek-chat",
        messages=ask("Hi"),
        seed=7,
        user="u-1",
        extra_body={"drop_params": True},
        extra_headers=headers,
    )
    assert raw.headers["x-dropped-params"] == "seed, user"
    sent = (await ctx.upstream(trace))["body"]
    assert "seed" not in sent and "user" not in sent
    assert raw.parse().choices[0].message.content


@row(ROWS, "openai-cached-tokens", "openai", "prompt_tokens_details.cached_tokens (Anthropic)")
async def cached_tokens(ctx: Ctx) -> None:
    system = {
        "role": "system",
        "content": [{"type": "text", "text": LONG_PROMPT, "cache_control": {"type": "ephemeral"}}],
    }

    def usage(question: str) -> openai.types.CompletionUsage:
        completion = client(ctx).chat.completions.create(
            model=f"anthropic/{ANTHROPIC_MODEL}",
            messages=[system, {"role": "user", "content": question}],  # type: ignore[list-item]
        )
        assert completion.usage is not None
        return completion.usage

    usage("first question")
    second = usage("second question")
    assert second.prompt_tokens_details and second.prompt_tokens_details.cached_tokens == 1100


@row(ROWS, "openai-not-found", "openai", "unknown model: NotFoundError, code model_not_found")
async def not_found(ctx: Ctx) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client(ctx).chat.completions.create(model="deepseek/no-such-model", messages=ask("Hi"))
    assert missing.value.code == "model_not_found"
    assert isinstance(missing.value.body, dict) and missing.value.body["type"]


@row(ROWS, "openai-error-shape", "openai", "errors in OpenAI's shape: type, code, param")
async def error_shape(ctx: Ctx) -> None:
    with pytest.raises(openai.BadRequestError) as invalid:
        client(ctx).chat.completions.create(
            model="deepseek/deepseek-chat", messages=ask("Hi"), temperature=9
        )
    body = invalid.value.body
    assert isinstance(body, dict)
    assert (body["type"], body["param"]) == ("invalid_request_error", "temperature")
    assert body["trace_id"] == invalid.value.response.headers["x-request-id"]


@row(ROWS, "openai-traceparent", "openai", "W3C traceparent passed on to the provider")
async def traceparent(ctx: Ctx) -> None:
    trace, headers = new_trace()
    client(ctx).chat.completions.create(
        model="deepseek/deepseek-chat",
        messages=ask("Hi"),
        extra_headers={**headers, "traceparent": TRACEPARENT},
    )
    sent = (await ctx.upstream(trace))["headers"]["traceparent"]
    version, trace_id, parent, flags = sent.split("-")
    assert (version, trace_id, flags) == ("00", TRACEPARENT[3:35], "01")
    assert parent != TRACEPARENT[36:52]


@row(ROWS, "openai-thinking-tools", "openai", "Anthropic thinking kept across a tool call")
async def thinking_tools(ctx: Ctx) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "Weather in Oslo? [[sim tool=weather]]"}
    ]
    first = client(ctx).chat.completions.create(
        model=f"anthropic/{ANTHROPIC_MODEL}",
        messages=messages,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        max_tokens=2048,
        extra_body=thinking,
    )
    turn = first.choices[0].message.model_dump(exclude_none=True)
    assert turn["tool_calls"] and turn["reasoning_details"][0]["signature"]
    messages += [
        turn,
        {"role": "tool", "tool_call_id": turn["tool_calls"][0]["id"], "content": "-3C"},
    ]
    second = client(ctx).chat.completions.create(
        model=f"anthropic/{ANTHROPIC_MODEL}",
        messages=messages,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        max_tokens=2048,
        extra_body=thinking,
    )
    assert second.choices[0].message.content


@params(ROWS)
async def test_openai_client(matrix_row: Row, ctx: Ctx) -> None:
    await matrix_row.check(ctx)
