"""Matrix rows driven through instructor, over the `openai` and `anthropic` SDKs."""

import anthropic
import instructor
import openai
from pydantic import BaseModel

from tests.compat.matrix import ANTHROPIC_MODEL, Ctx, Row, params, row

ROWS: list[Row] = []


class Book(BaseModel):
    title: str
    author: str
    year: int


def openai_client(ctx: Ctx, mode: instructor.Mode) -> instructor.Instructor:
    raw = openai.OpenAI(base_url=f"{ctx.edge}/v1", api_key=ctx.token, max_retries=0)
    return instructor.from_openai(raw, mode=mode)


def ask() -> list[dict[str, str]]:
    return [{"role": "user", "content": "A famous book, in JSON"}]


@row(ROWS, "instructor-json-deepseek", "instructor", "Mode.JSON (response_format json_object)")
async def json_mode(ctx: Ctx) -> None:
    book = openai_client(ctx, instructor.Mode.JSON).chat.completions.create(
        model="deepseek/deepseek-chat", response_model=Book, messages=ask(), max_retries=0
    )
    assert isinstance(book, Book)


@row(ROWS, "instructor-json-schema-anthropic", "instructor", "Mode.JSON_SCHEMA, Anthropic model")
async def json_schema(ctx: Ctx) -> None:
    book = openai_client(ctx, instructor.Mode.JSON_SCHEMA).chat.completions.create(
        model=f"anthropic/{ANTHROPIC_MODEL}", response_model=Book, messages=ask(), max_retries=0
    )
    assert isinstance(book, Book)


@row(
    ROWS,
    "instructor-tools-anthropic",
    "instructor",
    "Mode.TOOLS (a forced function), Anthropic model",
)
async def tools_mode(ctx: Ctx) -> None:
    book = openai_client(ctx, instructor.Mode.TOOLS).chat.completions.create(
        model=f"anthropic/{ANTHROPIC_MODEL}", response_model=Book, messages=ask(), max_retries=0
    )
    assert isinstance(book, Book)


@row(ROWS, "instructor-anthropic-sdk", "instructor", "from_anthropic (tools on /v1/messages)")
async def anthropic_sdk(ctx: Ctx) -> None:
    raw = anthropic.Anthropic(base_url=ctx.edge, api_key=ctx.token, max_retries=0)
    book = instructor.from_anthropic(raw).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=200, response_model=Book, messages=ask(), max_retries=0
    )
    assert isinstance(book, Book)


@params(ROWS)
async def test_instructor(matrix_row: Row, ctx: Ctx) -> None:
    await matrix_row.check(ctx)
