"""A `/v1/messages` request as the unified `ChatRequest` (the rules: `anthropic_schemas`)."""

from typing import Any

import orjson

from services.edge.anthropic_schemas import (
    DEFAULT_PROVIDER,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from shared.schemas import ChatMessage, ChatRequest, ToolCall, ToolCallFunction
from shared.thinking import details_of


def _user_messages(content: list[ContentBlock], anthropic: bool) -> list[ChatMessage]:
    results = [b.message() for b in content if isinstance(b, ToolResultBlock)]
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, TextBlock | ImageBlock):
            parts.append(block.part())
        elif isinstance(block, DocumentBlock):
            if not anthropic:
                raise ValueError("document blocks are sent to Anthropic models only")
            parts.append(block.part())
    return [*results, ChatMessage(role="user", content=parts)] if parts else results


def _assistant_message(content: list[ContentBlock]) -> ChatMessage:
    texts = [b for b in content if isinstance(b, TextBlock)]
    signed = [
        b.model_dump() for b in content if isinstance(b, ThinkingBlock | RedactedThinkingBlock)
    ]
    thoughts = [b.thinking for b in content if isinstance(b, ThinkingBlock)]
    calls = [
        ToolCall(
            id=b.id,
            function=ToolCallFunction(name=b.name, arguments=orjson.dumps(b.input).decode()),
        )
        for b in content
        if isinstance(b, ToolUseBlock)
    ]
    text: str | list[dict[str, Any]] | None = "".join(b.text for b in texts)
    if len(texts) > 1 or any(b.cache_control for b in texts):
        text = [b.part() for b in texts]
    return ChatMessage(
        role="assistant",
        content=text or (None if calls else ""),
        tool_calls=calls or None,
        reasoning_content="".join(thoughts) if thoughts else None,
        reasoning_details=details_of(signed) or None,
    )


def chat_messages(body: MessagesRequest, anthropic: bool) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if isinstance(body.system, str) and body.system:
        messages.append(ChatMessage(role="system", content=body.system))
    elif isinstance(body.system, list) and body.system:
        messages.append(ChatMessage(role="system", content=[b.part() for b in body.system]))
    for message in body.messages:
        if isinstance(message.content, str):
            messages.append(ChatMessage(role=message.role, content=message.content))
        elif message.role == "user":
            messages.extend(_user_messages(message.content, anthropic))
        else:
            messages.append(_assistant_message(message.content))
    return messages


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.type == "tool":
        if not choice.name:
            raise ValueError("tool_choice of type 'tool' needs a name")
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def chat_request(body: MessagesRequest, anthropic_version: str | None) -> ChatRequest:
    """The unified request; raises `ValueError` (pydantic's included) for what it cannot carry."""
    provider, model = body.target()
    anthropic = provider == DEFAULT_PROVIDER
    choice = body.tool_choice
    return ChatRequest(
        provider=provider,
        model=model,
        messages=chat_messages(body, anthropic),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        stop=body.stop_sequences or None,
        stream=body.stream,
        tools=[t.tool() for t in body.tools or []] or None,
        tool_choice=_tool_choice(choice) if choice else None,
        parallel_tool_calls=False if choice and choice.disable_parallel_tool_use else None,
        thinking=body.thinking,
        service_tier=body.service_tier,
        user=body.metadata.user_id if body.metadata else None,
        drop_params=body.drop_params,
        anthropic_version=anthropic_version if anthropic else None,
    )
