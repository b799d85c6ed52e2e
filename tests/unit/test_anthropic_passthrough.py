"""A `/v1/messages` request reaches Anthropic as it was sent: translated into the unified
request on the edge and back into Anthropic's body in the worker, nothing is lost."""

from typing import Any

from services.edge.anthropic_schemas import MessagesRequest
from services.edge.anthropic_translate import chat_request
from services.workers.providers.anthropic_request import build_body

IMAGE = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
EPHEMERAL = {"type": "ephemeral"}
SENT: dict[str, Any] = {
    "model": "claude-sonnet-4-20250514",
    "max_tokens": 4096,
    "system": [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Long rules.", "cache_control": EPHEMERAL},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hello"},
                {"type": "text", "text": "world"},
                {"type": "image", "source": IMAGE, "cache_control": EPHEMERAL},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "c2lnbmVk"},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "no station",
                    "is_error": True,
                    "cache_control": EPHEMERAL,
                },
                {"type": "text", "text": "Try again."},
            ],
        },
    ],
    "tools": [
        {
            "name": "weather",
            "description": "The weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "cache_control": EPHEMERAL,
        }
    ],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "top_k": 40,
    "service_tier": "standard_only",
    "metadata": {"user_id": "end-user-7"},
    "stop_sequences": ["END"],
}


def test_an_anthropic_request_reaches_anthropic_as_it_was_sent() -> None:
    unified = chat_request(MessagesRequest.model_validate(SENT), "2023-06-01")
    assert build_body(unified) == SENT


def test_other_targets_get_the_blocks_as_parts_and_the_thinking_as_reasoning() -> None:
    unified = chat_request(MessagesRequest.model_validate(SENT | {"model": "deepseek/x"}), None)
    user, assistant, result, rest = unified.messages[1:]
    assert user.content == [
        {"type": "text", "text": "Hello"},
        {"type": "text", "text": "world"},
        {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{IMAGE['data']}"},
            "cache_control": EPHEMERAL,
        },
    ]
    assert assistant.reasoning_content == "Look it up."
    assert (result.role, result.is_error, result.content) == ("tool", True, "no station")
    assert (rest.role, rest.content) == ("user", [{"type": "text", "text": "Try again."}])
    assert unified.user == "end-user-7"
