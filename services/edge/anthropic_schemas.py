"""Anthropic Messages API request bodies, and their translation into a unified `ChatRequest`.

Rules (docs/providers.md §1 and §10.1, read backwards): `system` becomes a system message;
`tool_use` blocks become assistant `tool_calls` (arguments = the JSON text of `input`);
`tool_result` blocks become `tool` messages placed before the rest of their user turn; base64
images become OpenAI `image_url` data-URL parts; `stop_sequences` → `stop`; Anthropic tools and
tool choice become their OpenAI function equivalents.
"""

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from shared.identifiers import QUALIFIED_MODEL_MAX_LENGTH
from shared.schemas import (
    ChatMessage,
    ChatRequest,
    JsonObject,
    Tool,
    ToolCall,
    ToolCallFunction,
    ToolFunction,
)

DEFAULT_PROVIDER = "anthropic"


class _Block(BaseModel):
    # Blocks carry optional extras (`cache_control`, `citations`) that mean nothing here.
    model_config = ConfigDict(extra="ignore")


class TextBlock(_Block):
    type: Literal["text"]
    text: str


class Base64Source(BaseModel):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(BaseModel):
    type: Literal["url"]
    url: str


class ImageBlock(_Block):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]

    def openai_part(self) -> dict[str, Any]:
        source = self.source
        url = (
            f"data:{source.media_type};base64,{source.data}"
            if isinstance(source, Base64Source)
            else source.url
        )
        return {"type": "image_url", "image_url": {"url": url}}


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str
    name: str
    input: JsonObject


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]] = ""
    is_error: bool = False

    def text(self) -> str:
        if isinstance(self.content, str):
            text = self.content
        else:
            text = "".join(b.text for b in self.content if isinstance(b, TextBlock))
        return f"Error: {text}" if self.is_error else text


class ThinkingBlock(_Block):
    """Earlier reasoning sent back in the history: it becomes the assistant turn's
    `reasoning_content`, which providers that need it get back (DeepSeek on tool-call turns)."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: str = ""


ContentBlock = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock,
    Field(discriminator="type"),
]


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class AnthropicTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["custom"] | None = None
    name: str
    description: str | None = None
    input_schema: JsonObject
    cache_control: dict[str, Any] | None = None


class ToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["auto", "any", "none", "tool"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class MessagesRequest(BaseModel):
    """`POST /v1/messages` as Anthropic defines it; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=QUALIFIED_MODEL_MAX_LENGTH)
    max_tokens: int = Field(gt=0)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    tools: list[AnthropicTool] | None = None
    tool_choice: ToolChoice | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None

    def target(self) -> tuple[str, str]:
        """(provider, model): `provider/model`, or a bare Anthropic model name."""
        provider, slash, model = self.model.partition("/")
        return (provider, model) if slash else (DEFAULT_PROVIDER, self.model)


def _user_messages(content: list[ContentBlock]) -> list[ChatMessage]:
    results = [
        ChatMessage(role="tool", tool_call_id=b.tool_use_id, content=b.text())
        for b in content
        if isinstance(b, ToolResultBlock)
    ]
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(block.openai_part())
    if not parts:
        return results
    if all(p["type"] == "text" for p in parts):
        text = "".join(str(p["text"]) for p in parts)
        return [*results, ChatMessage(role="user", content=text)]
    return [*results, ChatMessage(role="user", content=parts)]


def _assistant_message(content: list[ContentBlock]) -> ChatMessage:
    text = "".join(b.text for b in content if isinstance(b, TextBlock))
    thoughts = [b.thinking for b in content if isinstance(b, ThinkingBlock)]
    reasoning = "".join(thoughts) if thoughts else None
    calls = [
        ToolCall(
            id=b.id,
            function=ToolCallFunction(name=b.name, arguments=orjson.dumps(b.input).decode()),
        )
        for b in content
        if isinstance(b, ToolUseBlock)
    ]
    if calls:
        return ChatMessage(
            role="assistant", content=text or None, tool_calls=calls, reasoning_content=reasoning
        )
    return ChatMessage(role="assistant", content=text, reasoning_content=reasoning)


def chat_messages(body: MessagesRequest) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if body.system is not None:
        system = (
            body.system
            if isinstance(body.system, str)
            else "\n\n".join(b.text for b in body.system)
        )
        if system:
            messages.append(ChatMessage(role="system", content=system))
    for message in body.messages:
        if isinstance(message.content, str):
            messages.append(ChatMessage(role=message.role, content=message.content))
        elif message.role == "user":
            messages.extend(_user_messages(message.content))
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
    tools = [
        Tool(
            function=ToolFunction(name=t.name, description=t.description, parameters=t.input_schema)
        )
        for t in body.tools or []
    ]
    choice = body.tool_choice
    return ChatRequest(
        provider=provider,
        model=model,
        messages=chat_messages(body),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop_sequences or None,
        stream=body.stream,
        tools=tools or None,
        tool_choice=_tool_choice(choice) if choice else None,
        parallel_tool_calls=False if choice and choice.disable_parallel_tool_use else None,
        anthropic_version=anthropic_version if provider == DEFAULT_PROVIDER else None,
    )
