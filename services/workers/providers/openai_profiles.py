"""How each OpenAI-dialect provider differs from the baseline (docs/providers.md §2–§8).

A profile names the provider's paths, how the spec's provider-specific fields reach it (body
fields or headers, in the provider's own form), where its answers keep extras that belong in
`provider_metadata`, and its stream and usage quirks.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from shared.schemas import ChatRequest

Apply = Callable[[ChatRequest, dict[str, Any], dict[str, str]], None]

# Perplexity documents no list endpoint: its documented Sonar models (sonar-reasoning is
# deprecated and no longer offered).
PERPLEXITY_MODELS = ("sonar", "sonar-pro", "sonar-reasoning-pro", "sonar-deep-research")
HistoryReasoning = Literal["drop", "tool_turns", "details"]


def _nothing(request: ChatRequest, body: dict[str, Any], headers: dict[str, str]) -> None:
    return None


def _reasoning_effort(request: ChatRequest, body: dict[str, Any], headers: dict[str, str]) -> None:
    if request.reasoning_effort is not None:
        body["reasoning_effort"] = request.reasoning_effort


def _deepseek(request: ChatRequest, body: dict[str, Any], headers: dict[str, str]) -> None:
    _reasoning_effort(request, body, headers)
    if request.thinking is not None:
        body["thinking"] = {"type": request.thinking.type}


def _openrouter(request: ChatRequest, body: dict[str, Any], headers: dict[str, str]) -> None:
    if request.site_url:
        headers["HTTP-Referer"] = request.site_url
    if request.app_name:
        headers["X-Title"] = request.app_name
    if request.transforms is not None:
        body["transforms"] = request.transforms
    reasoning: dict[str, Any] = {}
    if request.reasoning_effort is not None:
        reasoning["effort"] = request.reasoning_effort
    if request.thinking is not None:
        reasoning["enabled"] = request.thinking.type == "enabled"
        if request.thinking.budget_tokens is not None:
            reasoning["max_tokens"] = request.thinking.budget_tokens
    if reasoning:
        body["reasoning"] = reasoning


def _litellm(request: ChatRequest, body: dict[str, Any], headers: dict[str, str]) -> None:
    _reasoning_effort(request, body, headers)
    if request.fallback_models:
        body["fallbacks"] = request.fallback_models
    if request.cache is not None:
        # LiteLLM's per-request cache controls: `no-cache` skips the cache lookup. `cache: true`
        # asks for the default (use the cache), said explicitly so it is visible upstream.
        body["cache"] = {"no-cache": not request.cache}


def _nvidia_nim(request: ChatRequest, body: dict[str, Any], headers: dict[str, str]) -> None:
    """NIM's own extension (`nvext`) holds `top_k` and the schema output must fit
    (`guided_json`, the form NIM recommends over `response_format`)."""
    nvext: dict[str, Any] = {}
    if "top_k" in body:
        nvext["top_k"] = body.pop("top_k")
    if request.response_format is not None and request.response_format.type == "json_schema":
        del body["response_format"]
        nvext["guided_json"] = request.response_format.answer_schema
    if nvext:
        body["nvext"] = nvext


def _huggingface(request: ChatRequest, body: dict[str, Any], headers: dict[str, str]) -> None:
    if request.use_cache is False:
        headers["x-use-cache"] = "false"


@dataclass(frozen=True)
class OpenAIProfile:
    """chat_path/models_path: relative to the provider's base URL; `models_path=None` means
    the provider has no list endpoint and `fixed_models` is its documented list.

    reasoning_fields: where a message or delta carries reasoning text, first found wins.
    history_reasoning: what of an earlier assistant turn's reasoning goes back: nothing, its
    `reasoning_content` on turns with tool calls (DeepSeek), its `reasoning_details`
    (OpenRouter).
    think_tags: reasoning arrives in the content between `<think>` tags (Perplexity).
    reasoning_in_completion: False when `completion_tokens` excludes reasoning (xAI, Perplexity).
    prompt_extras: usage counts reported apart that belong to the prompt (Perplexity's
    citation tokens).
    cumulative_chunks: chunks may carry the whole message so far (Perplexity).
    merge_same_role: the provider requires alternating roles (Perplexity).
    cache_markers: the provider reads Anthropic-style `cache_control` breakpoints on content
    parts and tools (OpenRouter, LiteLLM); the others cache on their own and get none.
    metadata_fields / choice_metadata / usage_metadata: extras moved to `provider_metadata`.
    key_check_path: the cheapest call that proves a key, when the model list does not (it is
    public on OpenRouter; Perplexity has none and is checked with a one-token chat).
    """

    chat_path: str = "/chat/completions"
    models_path: str | None = "/models"
    fixed_models: tuple[str, ...] = ()
    apply: Apply = _nothing
    stream_options: bool = True
    reasoning_fields: tuple[str, ...] = ("reasoning_content",)
    history_reasoning: HistoryReasoning = "drop"
    think_tags: bool = False
    reasoning_in_completion: bool = True
    prompt_extras: tuple[str, ...] = ()
    cumulative_chunks: bool = False
    merge_same_role: bool = False
    cache_markers: bool = False
    metadata_fields: tuple[str, ...] = ()
    choice_metadata: tuple[str, ...] = ()
    usage_metadata: tuple[str, ...] = ()
    key_check_path: str | None = None


PROFILES: MappingProxyType[str, OpenAIProfile] = MappingProxyType(
    {
        "deepseek": OpenAIProfile(apply=_deepseek, history_reasoning="tool_turns"),
        "xai": OpenAIProfile(apply=_reasoning_effort, reasoning_in_completion=False),
        "openrouter": OpenAIProfile(
            apply=_openrouter,
            reasoning_fields=("reasoning", "reasoning_content"),
            history_reasoning="details",
            cache_markers=True,
            metadata_fields=("provider",),
            choice_metadata=("native_finish_reason",),
            usage_metadata=("cost",),
            key_check_path="/key",
        ),
        "litellm": OpenAIProfile(apply=_litellm, models_path="/v1/models", cache_markers=True),
        # NIM: the baseline but for `nvext`; its mid-stream `{"error": ...}` chunk is handled
        # generically.
        "nvidia_nim": OpenAIProfile(apply=_nvidia_nim),
        "perplexity": OpenAIProfile(
            apply=_reasoning_effort,
            models_path=None,
            fixed_models=PERPLEXITY_MODELS,
            stream_options=False,
            cumulative_chunks=True,
            merge_same_role=True,
            think_tags=True,
            reasoning_in_completion=False,
            prompt_extras=("citation_tokens",),
            metadata_fields=("citations", "search_results", "images", "related_questions"),
            usage_metadata=("cost", "num_search_queries", "search_context_size"),
        ),
        "huggingface": OpenAIProfile(
            apply=_huggingface, chat_path="/v1/chat/completions", models_path="/v1/models"
        ),
    }
)
