"""What a provider's answers must look like before any field of them is used (OWASP API10).

Only the fields the adapters read are declared, strictly typed (a count is a non-negative JSON
integer, text is a string, a list is a list); everything else passes untouched. Fields may be
absent or null where docs/providers.md says some provider leaves them out.
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Far above any real token count, and within the 64-bit counters usage is settled in.
MAX_COUNT = 2**31 - 1

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class Shape(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


# --- OpenAI dialect (docs/providers.md §0) ---


class CountDetails(Shape):
    cached_tokens: Count | None = None
    reasoning_tokens: Count | None = None


class OpenAIUsage(Shape):
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    total_tokens: Count | None = None
    prompt_cache_hit_tokens: Count | None = None
    reasoning_tokens: Count | None = None
    citation_tokens: Count | None = None
    num_search_queries: Count | None = None
    prompt_tokens_details: CountDetails | None = None
    completion_tokens_details: CountDetails | None = None


class Function(Shape):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None  # some servers send the object itself


class OpenAIToolCall(Shape):
    index: Count | None = None
    id: str | None = None
    function: Function | None = None


class OpenAIMessage(Shape):
    """A message, or a stream delta."""

    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    tool_calls: list[OpenAIToolCall] | None = None


class OpenAILogprobs(Shape):
    content: list[dict[str, Any]] | None = None  # one entry per token


class OpenAIChoice(Shape):
    index: Count | None = None
    message: OpenAIMessage | None = None
    delta: OpenAIMessage | None = None
    finish_reason: str | None = None
    logprobs: OpenAILogprobs | None = None


class OpenAICompletion(Shape):
    id: str | None = None
    model: str | None = None
    choices: list[OpenAIChoice] = Field(min_length=1)
    usage: OpenAIUsage | None = None


class OpenAIChunk(Shape):
    id: str | None = None
    model: str | None = None
    choices: list[OpenAIChoice] | None = None
    usage: OpenAIUsage | None = None


# --- Anthropic (docs/providers.md §1) ---


class AnthropicUsage(Shape):
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cache_creation_input_tokens: Count | None = None
    cache_read_input_tokens: Count | None = None


class AnthropicBlock(Shape):
    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None  # redacted thinking
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None


class AnthropicMessage(Shape):
    id: str | None = None
    model: str | None = None
    content: list[AnthropicBlock]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: AnthropicUsage | None = None


class AnthropicTokenCount(Shape):
    input_tokens: Count


class AnthropicStart(Shape):
    id: str | None = None
    model: str | None = None
    usage: AnthropicUsage | None = None


class AnthropicDelta(Shape):
    type: str | None = None
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class AnthropicEvent(Shape):
    type: str
    index: Count | None = None
    message: AnthropicStart | None = None
    content_block: AnthropicBlock | None = None
    delta: AnthropicDelta | None = None
    usage: AnthropicUsage | None = None


# --- Model lists and embeddings (OpenAI shape; Anthropic's pages have the same `data`) ---


class ModelPage(Shape):
    data: list[dict[str, Any]] | None = None


class EmbeddingItem(Shape):
    index: Count | None = None


class OpenAIEmbeddings(Shape):
    data: list[EmbeddingItem] | None = None
    usage: OpenAIUsage | None = None
