"""`[[sim tool=NAME]]` tool calls in both dialects, through the official SDKs."""

import json
import urllib.parse
from typing import Any

import anthropic
import openai
import pytest

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
        "detailed": {"type": "boolean"},
    },
    "required": ["city", "unit", "days"],
}
EXPECTED = {"city": "city-value", "unit": "celsius", "days": 1}
OPENAI_TOOLS: Any = [
    {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
ANTHROPIC_TOOLS: Any = [{"name": "get_weather", "description": "weather", "input_schema": SCHEMA}]
ASK = "weather please [[sim tool=get_weather]]"


@pytest.fixture(params=["deepseek", "xai", "openrouter"])
def oai(request: pytest.FixtureRequest, sim_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sim_url}/{request.param}", api_key="sk-test", max_retries=0)


@pytest.fixture
def claude(sim_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{sim_url}/anthropic", api_key="sk-ant", max_retries=0)


def test_openai_tool_call(oai: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": ASK}]
    completion = oai.chat.completions.create(model="m", messages=messages, tools=OPENAI_TOOLS)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == EXPECTED


def test_openai_streamed_tool_call_reassembles(oai: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": ASK}]
    stream = oai.chat.completions.create(
        model="m", messages=messages, tools=OPENAI_TOOLS, stream=True
    )
    fragments = [
        call
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]
    assert fragments[0].id is not None
    assert fragments[0].function is not None
    assert fragments[0].function.name == "get_weather"
    assert fragments[0].function.arguments == ""
    later = fragments[1:]
    assert len(later) >= 3
    assert all(f.id is None and f.function is not None and f.function.name is None for f in later)
    arguments = "".join(f.function.arguments or "" for f in later if f.function)
    assert json.loads(arguments) == EXPECTED


def test_openai_reply_after_tool_result_is_text(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": ASK}], tools=OPENAI_TOOLS
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    messages: Any = [
        {"role": "user", "content": ASK},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and 21 degrees"},
    ]
    follow_up = oai.chat.completions.create(model="m", messages=messages, tools=OPENAI_TOOLS)
    assert follow_up.choices[0].finish_reason == "stop"
    assert follow_up.choices[0].message.tool_calls is None
    assert len((follow_up.choices[0].message.content or "").split()) == 12


def test_explicit_arguments_and_parallel_calls(sim_url: str) -> None:
    client = openai.OpenAI(base_url=f"{sim_url}/litellm", api_key="sk-test", max_retries=0)
    arguments = urllib.parse.quote(json.dumps({"city": "Paris", "days": 3}))
    explicit = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": f"[[sim tool=get_weather tool_args={arguments}]]"}],
        tools=OPENAI_TOOLS,
    )
    parallel = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "[[sim tool=get_weather,get_time]]"}],
        tools=OPENAI_TOOLS,
    )
    call = (explicit.choices[0].message.tool_calls or [])[0]
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}
    names = [c.function.name for c in parallel.choices[0].message.tool_calls or []]
    assert names == ["get_weather", "get_time"]


def test_without_tools_the_directive_is_ignored(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": ASK}])
    assert completion.choices[0].finish_reason == "stop"


def test_anthropic_tool_use(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=[{"role": "user", "content": ASK}],
        tools=ANTHROPIC_TOOLS,
    )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.id.startswith("toolu_")
    assert block.input == EXPECTED


def test_anthropic_streamed_tool_use(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=[{"role": "user", "content": ASK}],
        tools=ANTHROPIC_TOOLS,
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    partials = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    starts = [e for e in events if e.type == "content_block_start"]
    assert len(partials) >= 3
    assert starts[0].content_block.type == "tool_use"
    assert starts[0].content_block.input == {}
    assert json.loads("".join(partials)) == EXPECTED
    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.input == EXPECTED


def test_anthropic_reply_after_tool_result_is_text(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=[{"role": "user", "content": ASK}],
        tools=ANTHROPIC_TOOLS,
    )
    block = first.content[0]
    assert block.type == "tool_use"
    result: Any = {
        "type": "tool_result",
        "tool_use_id": block.id,
        "content": [{"type": "text", "text": "sunny and 21 degrees"}],
    }
    follow_up = claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=[
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [result]},
        ],
        tools=ANTHROPIC_TOOLS,
    )
    assert follow_up.stop_reason == "end_turn"
    assert follow_up.content[0].type == "text"
    assert follow_up.usage.input_tokens == 4 + 4
