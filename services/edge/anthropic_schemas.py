"""Anthropic Messages API request bodies, and their translation into a unified `ChatRequest`.

Nothing of the request is lost on the way (docs/providers.md §1, §10.1): `system` becomes a
system message (its blocks kept as text parts); text and image blocks stay apart as content
parts, each with its `cache_control`; `tool_use` blocks become assistant `tool_calls`
(arguments = the JSON text of `input`); `tool_result` blocks become `tool` messages placed
before the rest of their user turn (`is_error` and `cache_control` kept); `thinking` and
`redacted_thinking` blocks become the turn's `reasoning_details` with their signatures
(`shared.thinking`) and its `reasoning_content`; `metadata.user_id` becomes `user`;
`stop_sequences` → `stop`; `thinking`, `top_k` and `service_tier` are carried as they are.
So an Anthropic target gets the request back as it was sent (`workers/providers/anthropic_tools`),
and other targets get it translated (`anthropic_translate`); `document` blocks go to Anthropic
models only.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.identifiers import QUALIFIED_MODEL_MAX_LENGTH
from shared.schemas import ChatMessage, JsonObject, ServiceTier, Thinking, Tool, ToolFunction

DEFAULT_PROVIDER = "anthropic"


class _Block(BaseModel):
    # Blocks may carry extras (`citations`) that mean nothing to the answer.
    model_config = ConfigDict(extra="ignore")

    cache_control: JsonObject | None = None

    def marked(self, part: dict[str, Any]) -> dict[str, Any]:
        """`part` with this block's prompt-cache breakpoint, if any."""
        return part | {"cache_control": self.cache_control} if self.cache_control else part


class TextBlock(_Block):
    type: Literal["text"]
    text: str

    def part(self) -> dict[str, Any]:
        return self.marked({"type": "text", "text": self.text})


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

    def part(self) -> dict[str, Any]:
        source = self.source
        url = (
            f"data:{source.media_type};base64,{source.data}"
            if isinstance(source, Base64Source)
            else source.url
        )
        return self.marked({"type": "image_url", "image_url": {"url": url}})


class DocumentBlock(BaseModel):
    """A PDF or text document: Anthropic's own, passed to Anthropic models as it came."""

    model_config = ConfigDict(extra="allow")

    type: Literal["document"]
    source: JsonObject

    def part(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


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

    def message(self) -> ChatMessage:
        content = (
            self.content if isinstance(self.content, str) else [b.part() for b in self.content]
        )
        return ChatMessage(
            role="tool",
            tool_call_id=self.tool_use_id,
            content=content,
            is_error=True if self.is_error else None,
            cache_control=self.cache_control,
        )


class ThinkingBlock(_Block):
    """Earlier reasoning sent back in the history, with the signature Anthropic gave it."""

    type: Literal["thinking"]
    thinking: str = ""
    signature: str = ""


class RedactedThinkingBlock(_Block):
    type: Literal["redacted_thinking"]
    data: str


ContentBlock = Annotated[
    TextBlock
    | ImageBlock
    | DocumentBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock,
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
    cache_control: JsonObject | None = None

    def tool(self) -> Tool:
        function = ToolFunction(
            name=self.name, description=self.description, parameters=self.input_schema
        )
        return Tool(function=function, cache_control=self.cache_control)


class ToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["auto", "any", "none", "tool"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, min_length=1, max_length=256)


class MessagesRequest(BaseModel):
    """`POST /v1/messages` as Anthropic defines it (`drop_params` is ours); unknown fields are
    rejected."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=QUALIFIED_MODEL_MAX_LENGTH)
    max_tokens: int = Field(gt=0)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, gt=0)
    tools: list[AnthropicTool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    service_tier: ServiceTier | None = None
    metadata: Metadata | None = None
    stream: bool = False
    drop_params: bool | None = None

    def target(self) -> tuple[str, str]:
        """(provider, model): `provider/model`, or a bare Anthropic model name."""
        provider, slash, model = self.model.partition("/")
        return (provider, model) if slash else (DEFAULT_PROVIDER, self.model)


class CountTokensRequest(BaseModel):
    """`POST /v1/messages/count_tokens`: what of a message request is input."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=QUALIFIED_MODEL_MAX_LENGTH)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None

    def as_message_request(self) -> MessagesRequest:
        """The message request it counts (its `max_tokens` never used)."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return MessagesRequest.model_construct(**fields, max_tokens=1, stream=False)
