"""Pure translation of messages, images and tools to Anthropic's blocks and back (§1, §10.1).

system messages          -> top-level `system` (joined with blank lines; text blocks, with
                            their `cache_control`, when one marks a prompt-cache breakpoint)
image_url (data URL)     -> image block, base64 source (other URLs: url source)
assistant `tool_calls`   -> `tool_use` blocks, input = the parsed arguments
`tool` messages          -> one user turn of `tool_result` blocks per run of them
`tool_use` blocks        -> ToolCall with the input as JSON text
"""

import re
from typing import Any

import orjson

from shared.errors import InvalidRequest
from shared.schemas import ChatMessage, ChatRequest, ToolCall, ToolCallFunction

_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.+)$", re.DOTALL)


def _invalid(message: str, field: str) -> InvalidRequest:
    return InvalidRequest(message, details={"provider": "anthropic", "field": field})


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise _invalid("An image_url part needs a url", "messages")
    if match := _DATA_URL.match(url):
        source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
        return {"type": "image", "source": source}
    if url.startswith("data:"):
        raise _invalid("Anthropic takes images as base64 data URLs or http(s) URLs", "messages")
    return {"type": "image", "source": {"type": "url", "url": url}}


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
            blocks.append(_text_block(part))
        else:
            blocks.append(part)  # already an Anthropic block (image, document, ...)
    return blocks


def _text_block(part: dict[str, Any]) -> dict[str, Any]:
    """A text part; its prompt-cache breakpoint (`cache_control`) goes with it."""
    block = {"type": "text", "text": str(part.get("text", ""))}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


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
        block = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": content_blocks(message.content),
        }
        return {"role": "user", "content": [block]}
    content = content_blocks(message.content)
    if message.role == "assistant" and message.tool_calls:
        content = _as_list(content) + [_tool_use(call) for call in message.tool_calls]
    return {"role": message.role, "content": content}


def _system(messages: list[ChatMessage]) -> str | list[dict[str, Any]]:
    """The system messages as one text, or as text blocks when one of them marks a
    prompt-cache breakpoint (`cache_control` on a text part)."""
    systems = [m for m in messages if m.role == "system"]
    parts = [p for m in systems if isinstance(m.content, list) for p in m.content]
    if not any(p.get("type") == "text" and "cache_control" in p for p in parts):
        return "\n\n".join(m.text() for m in systems)
    blocks: list[dict[str, Any]] = []
    for message in systems:
        if isinstance(message.content, str):
            blocks.append({"type": "text", "text": message.content})
        else:
            blocks += [_text_block(p) for p in message.content or [] if p.get("type") == "text"]
    return blocks


def convert_messages(
    messages: list[ChatMessage],
) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text or blocks, Anthropic turns); consecutive tool results share one user turn."""
    system = _system(messages)
    turns: list[dict[str, Any]] = []
    previous_was_tool = False
    for message in messages:
        if message.role == "system":
            continue
        turn = _turn(message)
        if message.role == "tool" and previous_was_tool:
            turns[-1]["content"].extend(turn["content"])
        else:
            turns.append(turn)
        previous_was_tool = message.role == "tool"
    return system, turns


def convert_tools(request: ChatRequest) -> dict[str, Any]:
    """`tools` and `tool_choice` fields of the body (empty when the request has no tools)."""
    fields: dict[str, Any] = {}
    if request.tools:
        fields["tools"] = [
            {
                "name": tool.function.name,
                "description": tool.function.description or "",
                "input_schema": tool.function.parameters or {"type": "object", "properties": {}},
            }
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


def tool_calls_from(blocks: list[dict[str, Any]]) -> list[ToolCall] | None:
    calls = [
        ToolCall(
            id=str(block.get("id", "")),
            function=ToolCallFunction(
                name=str(block.get("name", "")),
                arguments=orjson.dumps(block.get("input") or {}).decode(),
            ),
        )
        for block in blocks
        if block.get("type") == "tool_use"
    ]
    return calls or None
