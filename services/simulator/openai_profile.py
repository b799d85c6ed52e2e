"""What makes one OpenAI-dialect provider different from the baseline (docs/providers.md §0)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ErrorStyle = Literal["openai", "xai", "openrouter", "litellm", "nim", "perplexity", "hf"]
UsageStyle = Literal["openai", "xai", "openrouter", "perplexity"]
ChunkStyle = Literal["openai", "xai", "perplexity"]
Preamble = Literal["none", "latency", "always"]


@dataclass(frozen=True)
class OpenAIProfile:
    """One OpenAI-dialect provider, served under `/{id}` (and `/{id}/v1`).

    keepalive: SSE comment sent first and every few chunks (and during latency).
    preamble: whitespace lines before a non-streamed JSON body: never, only while the latency
        directive makes the client wait, or always.
    envelope_extra: fields added to every response object and chunk.
    extra_get: further authenticated GET routes with a fixed JSON payload.
    silent_reasoning_models: reasoning models whose reasoning is counted, never shown (xAI).
    thinking_switch: `thinking: {"type": "enabled"|"disabled"}` turns reasoning on or off, and a
        thinking turn with tool calls must be sent back with its `reasoning_content` (DeepSeek).
    reasoning_limits: model -> the `reasoning_effort` values it takes (none: refused), and
        `reasoning_rejects` the parameters its reasoning models refuse (xAI); None: no check.
    reasoning_object: `reasoning: {effort, enabled, exclude}` with these efforts (OpenRouter);
        answers also carry `reasoning_details`.
    think_tags: reasoning arrives inside the content, between `<think>` and `</think>`.
    research_models: models that report citation and reasoning tokens apart (Perplexity).
    multiple_choices: `n` > 1 gets that many choices (the others answer one).
    json_types: the `response_format` types taken (others: a 400).
    """

    id: str
    models: tuple[str, ...]
    reasoning_models: frozenset[str] = frozenset()
    reasoning_field: str = "reasoning_content"
    keepalive: bytes | None = None
    preamble: Preamble = "none"
    cache_usage: bool = False
    usage_style: UsageStyle = "openai"
    chunk_style: ChunkStyle = "openai"
    error_style: ErrorStyle = "openai"
    auth_message: str = "Incorrect API key provided: {key}"
    envelope_extra: Mapping[str, Any] = field(default_factory=dict)
    native_finish_reason: bool = False
    done_marker: bool = True
    public_models: bool = False
    model_extra: Mapping[str, Any] = field(default_factory=dict)
    extra_get: Mapping[str, Any] = field(default_factory=dict)
    silent_reasoning_models: frozenset[str] = frozenset()
    thinking_switch: bool = False
    reasoning_limits: Mapping[str, tuple[str, ...]] | None = None
    reasoning_rejects: tuple[str, ...] = ()
    reasoning_object: tuple[str, ...] | None = None
    think_tags: bool = False
    research_models: frozenset[str] = frozenset()
    multiple_choices: bool = False
    json_types: tuple[str, ...] = ("text", "json_object", "json_schema")
