"""Pure translation of messages, images and tools to Anthropic's blocks and back (§1, §10.1).

A request that came in on `/v1/messages` goes back to Anthropic as it was sent: every block
keeps its `cache_control`, text blocks stay apart, earlier thinking goes back with its signature.

system messages          -> top-level `system`: text (joined with blank lines), or its text
                            blocks when a system message holds parts (`cache_control` kept)
text parts               -> text blocks (`cache_control` kept)
image_url (data URL)     -> image block, base64 source (other URLs: url source)
assistant reasoning      -> its `thinking` / `redacted_thinking` blocks first, from the
                            `reasoning_details` Anthropic signed (`shared.thinking`)
assistant `tool_calls`   -> `tool_use` blocks, input = the parsed arguments
`tool` messages          -> one user turn of `tool_result` blocks per run of them (`is_error`
                            and the message's `cache_control` kept)
`tool_use` blocks        -> ToolCall with the input as JSON text
"""

import re
from typing import Any

import orjson

from shared.errors import InvalidRequest
from shared.schemas import ChatMessage, ChatRequest, ToolCall, ToolCallFunction
from shared.thinking import blocks_of

_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.+)$", re.DOTALL)


def _invalid(message: str, field: str) -> InvalidRequest:
    return InvalidRequest(message, details={"provider": "anthropic", "field": field})


def _marked(block: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """`block` with the prompt-cache breakpoint `part` carries, if any."""
    if isinstance(marker := part.get("cache_control"), dict):
        block["cache_control"] = marker
    return block


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise _invalid("An image_url part needs a url", "messages")
    if match := _DATA_URL.match(url):
        source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
        return _marked({"type": "image", "source": source}, part)
    if url.startswith("data:"):
        raise _invalid("Anthropic takes images as base64 data URLs or http(s) URLs", "messages")
    return _marked({"type": "image", "source": {"type": "url", "url": url}}, part)


def content_blocks(content: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "image_url":
            blocks.append(image_block(part))
        elif part.get("type") == "text":
            blocks.append(_marked({"type": "text", "text": str(part.get("text", ""))}, part))
        else:
            blocks.append(part)  # already an Anthropic block (image, document, ...)
    return blocks


def _as_list(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _tool_use(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = orjson.loads(call.function.arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"Tool call {call.id} has arguments that are not JSON", "messages") from exc
    return {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}


def _turn(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": content_blocks(message.content),
        }
        if message.is_error:
            block["is_error"] = True
        return {
            "role": "user",
            "content": [_marked(block, {"cache_control": message.cache_control})],
        }
    content = content_blocks(message.content)
    if message.role == "assistant":
        thinking = blocks_of(message.reasoning_details)
        calls = [_tool_use(call) for call in message.tool_calls or []]
        if thinking or calls:
            content = thinking + _as_list(content) + calls
    return {"role": message.role, "content": content}


def system_prompt(messages: list[ChatMessage]) -> str | list[dict[str, Any]]:
    """The system messages as one text, or as text blocks when one of them holds parts."""
    systems = [m for m in messages if m.role == "system"]
    if all(isinstance(m.content, str) for m in systems):
        return "\n\n".join(m.text() for m in systems)
    blocks: list[dict[str, Any]] = []
    for message in systems:
        found = content_blocks(message.content)
        blocks += _as_list(found)
    return blocks


def convert_messages(
    messages: list[ChatMessage],
) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text or blocks, Anthropic turns); consecutive tool results share one user turn,
    and so does a user message right after them (Anthropic's turn: results first)."""
    turns: list[dict[str, Any]] = []
    previous_was_tool = False
    for message in messages:
        if message.role == "system":
            continue
        turn = _turn(message)
        if message.role in ("tool", "user") and previous_was_tool:
            turns[-1]["content"].extend(_as_list(turn["content"]))
        else:
            turns.append(turn)
        previous_was_tool = message.role == "tool"
    return system_prompt(messages), turns


def convert_tools(request: ChatRequest) -> dict[str, Any]:
    """`tools` and `tool_choice` fields of the body (empty when the request has no tools)."""
    fields: dict[str, Any] = {}
    if request.tools:
        fields["tools"] = [
            _marked(
                {
                    "name": tool.function.name,
                    "description": tool.function.description or "",
                    "input_schema": tool.function.parameters
                    or {"type": "object", "properties": {}},
                },
                {"cache_control": tool.cache_control},
            )
            for tool in request.tools
        ]
    choice = tool_choice(request.tool_choice)
    if request.parallel_tool_calls is False and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None and request.tools:
        fields["tool_choice"] = choice
    return fields


def tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"type": {"required": "any"}.get(choice, choice)}
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else choice.get("name")
    if choice.get("type") in ("function", "tool") and isinstance(name, str):
        return {"type": "tool", "name": name}
    if choice.get("type") in ("auto", "any", "none"):
        return {"type": choice["type"]}
    raise _invalid("tool_choice must be auto, none, required or a named function", "tool_choice")


def tool_calls_from(blocks: list[dict[str, Any]], skip: str | None = None) -> list[ToolCall] | None:
    """The `tool_use` blocks as tool calls (but the one named `skip`: the answer's JSON)."""
    calls = [
        ToolCall(
            id=str(block.get("id", "")),
            function=ToolCallFunction(
                name=str(block.get("name", "")),
                arguments=orjson.dumps(block.get("input") or {}).decode(),
            ),
        )
        for block in blocks
        if block.get("type") == "tool_use" and block.get("name") != skip
    ]
    return calls or None
