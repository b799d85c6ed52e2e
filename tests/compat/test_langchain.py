"""Matrix rows driven through LangChain's `ChatOpenAI` and `ChatAnthropic`."""

import json
from typing import Any

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.compat.matrix import ANTHROPIC_MODEL, LONG_PROMPT, Ctx, Row, params, row

ROWS: list[Row] = []


class Person(BaseModel):
    name: str
    age: int


def chat_openai(ctx: Ctx, model: str) -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=f"{ctx.edge}/v1", api_key=ctx.token, max_retries=0)  # type: ignore[arg-type]


def chat_anthropic(ctx: Ctx, **extra: Any) -> ChatAnthropic:
    return ChatAnthropic(  # type: ignore[call-arg]
        model=ANTHROPIC_MODEL, base_url=ctx.edge, api_key=ctx.token, max_retries=0, **extra
    )


@row(
    ROWS,
    "langchain-openai-structured",
    "langchain-openai",
    "with_structured_output (json_schema), Anthropic model",
)
async def openai_structured(ctx: Ctx) -> None:
    model = chat_openai(ctx, f"anthropic/{ANTHROPIC_MODEL}").with_structured_output(Person)
    person = model.invoke("Who wrote Hamlet?")
    assert isinstance(person, Person)


@row(
    ROWS,
    "langchain-openai-json-mode",
    "langchain-openai",
    "with_structured_output (json_mode), DeepSeek",
)
async def openai_json_mode(ctx: Ctx) -> None:
    model = chat_openai(ctx, "deepseek/deepseek-chat").with_structured_output(
        Person, method="json_mode", include_raw=True
    )
    schema = json.dumps(Person.model_json_schema())
    answer: Any = model.invoke(f"Who wrote Hamlet? Answer in JSON that fits {schema}")
    assert answer["parsing_error"] is None
    assert isinstance(answer["raw"].content, str) and answer["raw"].content.startswith("{")


@row(
    ROWS,
    "langchain-anthropic-structured",
    "langchain-anthropic",
    "with_structured_output (a forced tool)",
)
async def anthropic_structured(ctx: Ctx) -> None:
    person = chat_anthropic(ctx).with_structured_output(Person).invoke("Who wrote Hamlet?")
    assert isinstance(person, Person)


@row(ROWS, "langchain-anthropic-thinking", "langchain-anthropic", "extended thinking")
async def anthropic_thinking(ctx: Ctx) -> None:
    model = chat_anthropic(
        ctx, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}
    )
    answer = model.invoke("Why is the sky blue?")
    assert isinstance(answer.content, list)
    kinds = [b["type"] for b in answer.content if isinstance(b, dict)]
    assert kinds[0] == "thinking" and answer.content[0]["signature"]  # type: ignore[index]


@row(ROWS, "langchain-anthropic-cache", "langchain-anthropic", "cache_control and cache usage")
async def anthropic_cache(ctx: Ctx) -> None:
    system = SystemMessage(
        content=[{"type": "text", "text": LONG_PROMPT, "cache_control": {"type": "ephemeral"}}]
    )
    model = chat_anthropic(ctx, max_tokens=20)
    model.invoke([system, HumanMessage("first question")])
    second = model.invoke([system, HumanMessage("second question")])
    assert second.usage_metadata is not None
    assert second.usage_metadata.get("input_token_details", {}).get("cache_read") == 1100


@params(ROWS)
async def test_langchain(matrix_row: Row, ctx: Ctx) -> None:
    await matrix_row.check(ctx)
