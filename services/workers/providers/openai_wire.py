"""Pure translation to and from the OpenAI chat-completions dialect (docs/providers.md §0, §10)."""

from dataclasses import dataclass, field
from typing import Any

import orjson

from services.workers.providers.openai_profiles import OpenAIProfile
from services.workers.providers.think_tags import ThinkTags
from shared.messages import DeltaEvent, ToolCallDelta
from shared.schemas import ChatMessage, ChatRequest, ToolCall, ToolCallFunction, Usage

FINISH_REASONS = {"insufficient_system_resource": "error"}


def merge_same_role(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive messages of one role (not tool results) folded into one."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        last = merged[-1] if merged else None
        plain = message["role"] != "tool" and "tool_calls" not in message
        if (
            plain
            and last is not None
            and last["role"] == message["role"]
            and "tool_calls" not in last
        ):
            last["content"] = _join(last.get("content"), message.get("content"))
        else:
            merged.append(dict(message))
    return merged


def unmarked(part: dict[str, Any]) -> dict[str, Any]:
    """A content part (or tool) without its prompt-cache breakpoint."""
    if "cache_control" not in part:
        return part
    return {k: v for k, v in part.items() if k != "cache_control"}


def _join(first: Any, second: Any) -> Any:
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"

    def parts(value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        return [{"type": "text", "text": value}] if value else []

    return parts(first) + parts(second)


def _history(message: ChatMessage, profile: OpenAIProfile) -> dict[str, Any]:
    """One message as the provider takes it back, with the reasoning it requires: DeepSeek
    wants `reasoning_content` on every turn with tool calls (empty when none was kept), and
    ignores it elsewhere; OpenRouter takes `reasoning_details`; the others take neither. A
    failed tool result says so in its text; prompt-cache markers go only to the providers that
    read them."""
    sent = message.model_dump(
        exclude_none=True, exclude={"reasoning_content", "reasoning_details", "is_error"}
    )
    if not profile.cache_markers:
        sent.pop("cache_control", None)
        if isinstance(message.content, list):
            sent["content"] = [unmarked(part) for part in message.content]
    if message.is_error:
        sent["content"] = _join("Error:", sent.get("content"))
    if profile.history_reasoning == "tool_turns" and message.tool_calls:
        sent["reasoning_content"] = message.reasoning_content or ""
    elif profile.history_reasoning == "details" and message.reasoning_details:
        sent["reasoning_details"] = message.reasoning_details
    return sent


def _messages(request_messages: list[ChatMessage], profile: OpenAIProfile) -> list[dict[str, Any]]:
    messages = [_history(m, profile) for m in request_messages]
    return merge_same_role(messages) if profile.merge_same_role else messages


def build_body(
    request: ChatRequest, profile: OpenAIProfile, headers: dict[str, str]
) -> dict[str, Any]:
    """The provider's body; `headers` gains the provider's own headers for the spec fields."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.messages, profile),
    }
    optional: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "frequency_penalty": request.frequency_penalty,
        "presence_penalty": request.presence_penalty,
        "stop": request.stop_list(),
        "tool_choice": request.tool_choice,
        "parallel_tool_calls": request.parallel_tool_calls,
        # What the parameter table lets through (shared/parameter_table.py), as OpenAI names
        # it; a profile's `apply` moves what the provider names otherwise.
        "top_k": request.top_k,
        "seed": request.seed,
        "n": request.n,
        "logprobs": request.logprobs,
        "top_logprobs": request.top_logprobs,
        "user": request.user,
        "metadata": request.metadata,
        "store": request.store,
        "service_tier": request.service_tier,
    }
    if request.response_format is not None:
        optional["response_format"] = request.response_format.model_dump(exclude_none=True)
    if request.tools:
        tools = [t.model_dump(exclude_none=True) for t in request.tools]
        optional["tools"] = tools if profile.cache_markers else [unmarked(t) for t in tools]
    body.update({k: v for k, v in optional.items() if v is not None})
    profile.apply(request, body, headers)
    if request.stream:
        body["stream"] = True
        if profile.stream_options:
            body["stream_options"] = {"include_usage": True}
    return body


def usage_from(raw: dict[str, Any], profile: OpenAIProfile) -> Usage:
    """docs/providers.md §10.2: reasoning a provider leaves out of completion (xAI, Perplexity)
    is added back, and so are tokens it bills as input apart (Perplexity's citations)."""
    prompt = int(raw.get("prompt_tokens") or 0)
    prompt += sum(int(raw.get(name) or 0) for name in profile.prompt_extras)
    completion = int(raw.get("completion_tokens") or 0)
    cached = raw.get("prompt_cache_hit_tokens")
    if cached is None:
        cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens")
    details = raw.get("completion_tokens_details") or {}
    reasoning = int(details.get("reasoning_tokens") or raw.get("reasoning_tokens") or 0)
    if not profile.reasoning_in_completion:
        completion += reasoning
    searches = raw.get("num_search_queries")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details={"cached_tokens": int(cached)} if cached else None,
        completion_tokens_details={"reasoning_tokens": reasoning} if reasoning else None,
        num_search_queries=int(searches) if searches else None,
    )


def finish_reason(raw: Any) -> str:
    value = str(raw or "stop")
    return FINISH_REASONS.get(value, value)


def reasoning_of(part: dict[str, Any], profile: OpenAIProfile) -> str:
    for name in profile.reasoning_fields:
        if isinstance(value := part.get(name), str) and value:
            return value
    return ""


def reasoning_details_of(part: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenRouter's `reasoning_details` (objects, each kept as the provider sent it)."""
    details = part.get("reasoning_details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def tool_calls_of(message: dict[str, Any]) -> list[ToolCall] | None:
    calls = []
    for raw in message.get("tool_calls") or []:
        function = raw.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):  # some servers send the object itself
            arguments = orjson.dumps(arguments or {}).decode()
        calls.append(
            ToolCall(
                id=str(raw.get("id", "")),
                function=ToolCallFunction(name=str(function.get("name", "")), arguments=arguments),
            )
        )
    return calls or None


def metadata_of(
    body: dict[str, Any], choice: dict[str, Any], profile: OpenAIProfile
) -> dict[str, Any]:
    usage = body.get("usage") or {}
    found = {k: body[k] for k in profile.metadata_fields if body.get(k) is not None}
    found |= {k: choice[k] for k in profile.choice_metadata if choice.get(k) is not None}
    found |= {k: usage[k] for k in profile.usage_metadata if usage.get(k) is not None}
    return found


@dataclass
class StreamState:
    """What a stream has said so far; `feed()` turns one chunk into at most one delta."""

    profile: OpenAIProfile
    id: str = ""
    model: str = ""
    finish: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    sent_text: str = ""
    tags: ThinkTags = field(default_factory=lambda: ThinkTags())

    def feed(self, chunk: dict[str, Any]) -> DeltaEvent | None:
        self.id = str(chunk.get("id") or self.id)
        self.model = str(chunk.get("model") or self.model)
        self.usage.update(chunk.get("usage") or {})
        content, reasoning, calls, details, logprobs = "", "", [], [], []
        for choice in chunk.get("choices") or []:
            self.metadata |= metadata_of(chunk, choice, self.profile)
            delta = choice.get("delta")
            content += self._content(delta, choice.get("message"))
            if isinstance(delta, dict):
                reasoning += reasoning_of(delta, self.profile)
                details += reasoning_details_of(delta)
                calls += [tool_call_delta(raw) for raw in delta.get("tool_calls") or []]
            if isinstance(found := choice.get("logprobs"), dict):
                tokens = found.get("content")
                logprobs += [t for t in tokens if isinstance(t, dict)] if tokens else []
            self.finish = choice.get("finish_reason") or self.finish
        if not chunk.get("choices"):
            self.metadata |= metadata_of(chunk, {}, self.profile)
        if self.profile.think_tags:
            content, thought = self.tags.feed(content, end=self.finish is not None)
            reasoning += thought
        if content or reasoning or calls or details or logprobs:
            return DeltaEvent(
                content=content,
                reasoning_content=reasoning,
                reasoning_details=tuple(details),
                tool_calls=tuple(calls),
                logprobs=tuple(logprobs),
            )
        return None

    def _content(self, delta: Any, message: Any) -> str:
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            text: str = delta["content"]
        elif self.profile.cumulative_chunks and isinstance(message, dict):
            # Only the whole message so far: send what was not sent yet.
            whole = str(message.get("content") or "")
            text = whole[len(self.sent_text) :] if whole.startswith(self.sent_text) else ""
        else:
            text = ""
        self.sent_text += text
        return text


def tool_call_delta(raw: dict[str, Any]) -> ToolCallDelta:
    function = raw.get("function") or {}
    arguments = function.get("arguments") or ""
    return ToolCallDelta(
        index=int(raw.get("index") or 0),
        id=raw.get("id"),
        name=function.get("name"),
        arguments=arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode(),
    )
