"""Matrix rows driven through the official `anthropic` SDK (`base_url=<edge>`, `x-api-key`)."""

from typing import Any

import anthropic
import pytest

from tests.compat.matrix import ANTHROPIC_MODEL, LONG_PROMPT, Ctx, Row, new_trace, params, row

ROWS: list[Row] = []
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
WEATHER: Any = [
    {
        "name": "weather",
        "description": "The weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def client(ctx: Ctx) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=ctx.edge, api_key=ctx.token, max_retries=0)


def ask(text: str) -> Any:
    return [{"role": "user", "content": text}]


@row(ROWS, "anthropic-thinking", "anthropic", "extended thinking: signed thinking blocks")
async def thinking(ctx: Ctx) -> None:
    message = client(ctx).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=2048, thinking=THINKING, messages=ask("Why?")
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    block = message.content[0]
    assert block.type == "thinking" and block.thinking and block.signature


@row(ROWS, "anthropic-thinking-stream", "anthropic", "thinking_delta and signature_delta")
async def thinking_stream(ctx: Ctx) -> None:
    with client(ctx).messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=2048, thinking=THINKING, messages=ask("Why?")
    ) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert "thinking_delta" in kinds and "signature_delta" in kinds
    block = final.content[0]
    assert block.type == "thinking" and block.signature


@row(ROWS, "anthropic-thinking-tools", "anthropic", "thinking and signature passed back")
async def thinking_tools(ctx: Ctx) -> None:
    messages = ask("Weather in Oslo? [[sim tool=weather]]")
    first = client(ctx).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=2048, thinking=THINKING, tools=WEATHER, messages=messages
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "-3C"}],
        },
    ]
    second = client(ctx).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=2048, thinking=THINKING, tools=WEATHER, messages=messages
    )
    assert second.stop_reason == "end_turn"


@row(ROWS, "anthropic-blocks-kept", "anthropic", "content blocks reach Anthropic as sent")
async def blocks_kept(ctx: Ctx) -> None:
    trace, headers = new_trace()
    content = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "world"}]
    system = [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}]
    client(ctx).messages.create(
        model=ANTHROPIC_MODEL,
        max_tokens=50,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": content}],  # type: ignore[typeddict-item]
        extra_headers=headers,
    )
    sent = (await ctx.upstream(trace))["body"]
    assert sent["messages"] == [{"role": "user", "content": content}]
    assert sent["system"] == system


@row(ROWS, "anthropic-prompt-cache", "anthropic", "cache_control kept; cache usage reported")
async def prompt_cache(ctx: Ctx) -> None:
    system: Any = [{"type": "text", "text": LONG_PROMPT, "cache_control": {"type": "ephemeral"}}]

    def usage(question: str) -> anthropic.types.Usage:
        message = client(ctx).messages.create(
            model=ANTHROPIC_MODEL, max_tokens=20, system=system, messages=ask(question)
        )
        return message.usage

    first, second = usage("first question"), usage("second question")
    assert first.cache_creation_input_tokens == 1100
    assert second.cache_read_input_tokens == 1100


@row(ROWS, "anthropic-sampling-metadata", "anthropic", "top_k, service_tier, metadata.user_id")
async def sampling_metadata(ctx: Ctx) -> None:
    trace, headers = new_trace()
    client(ctx).messages.create(
        model=ANTHROPIC_MODEL,
        max_tokens=50,
        service_tier="standard_only",
        metadata={"user_id": "end-user-7"},
        messages=ask("Hi"),
        extra_body={"top_k": 40},  # this SDK version has no top_k argument of its own
        extra_headers=headers,
    )
    sent = (await ctx.upstream(trace))["body"]
    assert (sent["top_k"], sent["service_tier"]) == (40, "standard_only")
    assert sent["metadata"] == {"user_id": "end-user-7"}


@row(ROWS, "anthropic-count-tokens", "anthropic", "POST /v1/messages/count_tokens")
async def count_tokens(ctx: Ctx) -> None:
    counted = client(ctx).messages.count_tokens(
        model=ANTHROPIC_MODEL, system="one two three", messages=ask("four five")
    )
    assert counted.input_tokens == 5


@row(ROWS, "anthropic-models", "anthropic", "GET /v1/models with x-api-key, Anthropic's shape")
async def models(ctx: Ctx) -> None:
    page = client(ctx).models.list(limit=5)
    assert len(page.data) == 5 and all(m.type == "model" for m in page.data)
    assert page.has_more and page.last_id == page.data[-1].id
    following = client(ctx).models.list(limit=5, after_id=page.data[-1].id)
    assert following.data[0].id not in {m.id for m in page.data}


@row(ROWS, "anthropic-not-found", "anthropic", "unknown model: NotFoundError (not_found_error)")
async def not_found(ctx: Ctx) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(ctx).messages.create(model="claude-no-such-model", max_tokens=10, messages=ask("Hi"))
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["error"]["type"] == "not_found_error"


@params(ROWS)
async def test_anthropic_client(matrix_row: Row, ctx: Ctx) -> None:
    await matrix_row.check(ctx)
