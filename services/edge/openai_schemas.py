"""OpenAI's request and response bodies, as far as the OpenAI-compatible surface speaks them.

Request fields are declared loosely (the native `ChatRequest` checks their values); fields not
declared here are judged in `openai_translate` (refused, or dropped on request), never ignored.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.identifiers import QUALIFIED_MODEL_MAX_LENGTH
from shared.schemas import JsonObject, JsonParts, ToolCall, Usage


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class OpenAIMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | JsonParts | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    # An earlier answer's reasoning, sent back as the provider requires (DeepSeek, OpenRouter).
    reasoning_content: str | None = None
    reasoning_details: JsonParts | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class OpenAIChatRequest(_Lenient):
    """`POST /v1/chat/completions`; `model` is `provider/model`."""

    model: str = Field(
        min_length=3, max_length=QUALIFIED_MODEL_MAX_LENGTH, examples=["deepseek/deepseek-chat"]
    )
    messages: list[OpenAIMessage] = Field(min_length=1)
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: JsonParts | None = None
    tool_choice: str | JsonObject | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    thinking: JsonObject | None = None  # the provider's switch, e.g. {"type": "disabled"}
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: JsonObject | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    top_k: int | None = None  # not OpenAI's: taken by providers that sample with it
    drop_params: bool | None = None  # drop what the target cannot honour (X-Dropped-Params)


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: str
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class OpenAIEmbeddingsRequest(_Lenient):
    """`POST /v1/embeddings`; besides OpenAI's fields, NIM's `input_type` and `truncate` pass."""

    model: str = Field(
        min_length=3,
        max_length=QUALIFIED_MODEL_MAX_LENGTH,
        examples=["nvidia_nim/nvidia/nv-embedqa-e5-v5"],
    )
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: Literal["query", "passage"] | None = None
    truncate: Literal["NONE", "START", "END"] | None = None
    user: str | None = None


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # a base64 string for `encoding_format: "base64"`


class EmbeddingsUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingsUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
