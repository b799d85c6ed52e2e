"""What the Anthropic SDK tests share: the targets, a tool, the client and SSE reading."""

import secrets
from typing import Any

import anthropic
import orjson

from services.fleet.plan import FleetConfig

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


def tool_use_blocks(message: anthropic.types.Message) -> list[anthropic.types.ToolUseBlock]:
    return [b for b in message.content if isinstance(b, anthropic.types.ToolUseBlock)]
