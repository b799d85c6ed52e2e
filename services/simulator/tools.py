"""Tool calls driven by `[[sim tool=NAME]]` (both dialects).

`tool=NAME` (or `tool=a,b` for parallel calls) answers with a call to each named tool, but only
when the request declares `tools` and the conversation ends with a plain user turn (not a
`tool` message or a user turn carrying Anthropic `tool_result` blocks), so a follow-up request
after the tool result gets an ordinary text reply. A request whose `tool_choice` names a tool
(Anthropic's `{"type": "tool"}`, OpenAI's `{"type": "function"}`) gets a call to it, and one that
must call some tool (`any`, `required`) a call to the directive's tool or else the first.
Arguments are `tool_args=<url-encoded JSON object>` when given, else generated from the tool
schema's `required` properties (`schema_values.py`: a string is `"<property>-value"` or the first
`enum` value, integer 1, number 1.5, boolean true).
"""

import hashlib
import logging
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from services.simulator import schema_values
from services.simulator.replies import Directives

logger = logging.getLogger(__name__)

ARGUMENT_FRAGMENTS = 4


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    @property
    def input(self) -> Any:
        return orjson.loads(self.arguments)

    @property
    def fragments(self) -> tuple[str, ...]:
        """`arguments` cut into `ARGUMENT_FRAGMENTS` non-empty pieces (fewer when it is short)."""
        size = max(1, -(-len(self.arguments) // ARGUMENT_FRAGMENTS))
        return tuple(self.arguments[i : i + size] for i in range(0, len(self.arguments), size))


def _spec(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        return {}
    function = tool.get("function")
    return function if isinstance(function, dict) else tool


def _schema(spec: dict[str, Any]) -> dict[str, Any]:
    schema = spec.get("parameters") or spec.get("input_schema") or {}
    return schema if isinstance(schema, dict) else {}


def example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    return schema_values.object_for(schema)


def _explicit_arguments(raw: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(urllib.parse.unquote(raw))
    except orjson.JSONDecodeError:
        logger.warning("ignoring sim tool_args that are not JSON: %r", raw)
        return None
    return value if isinstance(value, dict) else None


def _call_id(prefix: str, seed: bytes, index: int) -> str:
    digest = hashlib.sha256(seed + index.to_bytes(2, "big")).hexdigest()
    return f"{prefix}{digest[:24]}"


def _called(directives: Directives, names: list[Any], choice: Any, user_turn: bool) -> list[str]:
    """The names of the tools to call, as `tool_choice` and the directives say."""
    wanted = [n for n in (directives.tool or "").split(",") if n] if user_turn else []
    if isinstance(choice, dict):
        function = choice.get("function")
        forced = function.get("name") if isinstance(function, dict) else choice.get("name")
        if choice.get("type") in ("tool", "function") and isinstance(forced, str):
            return [forced]
        choice = choice.get("type")
    if choice in ("any", "required"):
        return wanted or [str(n) for n in names[:1]]
    return wanted


def plan_tool_calls(
    directives: Directives,
    tools: Any,
    ends_with_user_turn: bool,
    id_prefix: str,
    seed: bytes,
    choice: Any = None,
) -> tuple[ToolCall, ...]:
    """The tool calls to answer with; empty when the request should get a text reply."""
    if not isinstance(tools, list) or not tools:
        return ()
    specs = {spec.get("name"): spec for spec in map(_spec, tools)}
    explicit = _explicit_arguments(directives.tool_args) if directives.tool_args else None
    calls = []
    for index, name in enumerate(_called(directives, list(specs), choice, ends_with_user_turn)):
        arguments = explicit
        if arguments is None:
            arguments = example_arguments(_schema(specs.get(name, {})))
        calls.append(
            ToolCall(
                id=_call_id(id_prefix, seed, index),
                name=name,
                arguments=orjson.dumps(arguments).decode(),
            )
        )
    return tuple(calls)


def completion_tokens(calls: tuple[ToolCall, ...]) -> int:
    return sum(len(call.fragments) for call in calls)


def openai_message_calls(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def openai_deltas(calls: tuple[ToolCall, ...]) -> Iterator[dict[str, Any]]:
    """Stream deltas: id/type/name with empty arguments first, then the argument pieces."""
    for index, call in enumerate(calls):
        head = {"name": call.name, "arguments": ""}
        yield {
            "tool_calls": [{"index": index, "id": call.id, "type": "function", "function": head}]
        }
        for piece in call.fragments:
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def anthropic_blocks(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in calls]


def anthropic_events(
    calls: tuple[ToolCall, ...], first: int = 0
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(event, data)` pairs: per call a `tool_use` block with `input: {}` and JSON deltas (the
    blocks numbered from `first`)."""
    for index, call in enumerate(calls, first):
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        # A call without arguments streams one empty fragment; `input` stays `{}`.
        for piece in call.fragments if call.input else ("",):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
