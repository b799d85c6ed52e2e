"""Anthropic Messages API (providers.md §1)."""

from collections.abc import AsyncGenerator
from typing import Any

from services.workers.providers.base import ProviderAdapter
from services.workers.sse import parse_sse
from shared.errors import ValidationError
from shared.messages import DeltaEvent, DoneEvent
from shared.schemas import ChatRequest, Usage

DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def build_body(request: ChatRequest) -> dict[str, Any]:
    if request.temperature is not None and request.temperature > 1:
        raise ValidationError(
            "Anthropic accepts temperature from 0 to 1",
            details={"provider": "anthropic", "field": "temperature"},
        )
    system = "\n\n".join(m.text() for m in request.messages if m.role == "system")
    messages = [
        {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
    ]
    if not messages:
        raise ValidationError(
            "Anthropic needs at least one user message besides the system prompt",
            details={"provider": "anthropic", "field": "messages"},
        )
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    optional = {
        "system": system or None,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop_sequences": request.stop_list(),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.stream:
        body["stream"] = True
    return body


def usage_from(raw: dict[str, Any]) -> Usage:
    cached = int(raw.get("cache_read_input_tokens") or 0)
    prompt = int(raw.get("input_tokens") or 0) + int(raw.get("cache_creation_input_tokens") or 0)
    prompt += cached
    completion = int(raw.get("output_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details={"cached_tokens": cached} if cached else None,
    )


class AnthropicAdapter(ProviderAdapter):
    def headers(self, request: ChatRequest, trace: str) -> dict[str, str]:
        return {
            "x-api-key": self.api_key,
            "anthropic-version": request.anthropic_version or DEFAULT_VERSION,
            "content-type": "application/json",
            "x-request-id": trace,
        }

    async def complete(self, request: ChatRequest, trace: str) -> DoneEvent:
        body = await self.post_json(
            "/v1/messages", build_body(request), self.headers(request, trace)
        )
        blocks = body.get("content") or []
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        thinking = "".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking")
        return DoneEvent(
            id=str(body.get("id", "")),
            model=str(body.get("model", request.model)),
            finish_reason=FINISH_REASONS.get(str(body.get("stop_reason")), "stop"),
            usage=usage_from(body.get("usage") or {}),
            content=text,
            reasoning_content=thinking or None,
        )

    async def stream(
        self, request: ChatRequest, trace: str
    ) -> AsyncGenerator[DeltaEvent | DoneEvent, None]:
        message_id, model, stop_reason = "", request.model, "end_turn"
        usage: dict[str, Any] = {}
        headers = self.headers(request, trace)
        async with self.open_stream("/v1/messages", build_body(request), headers) as lines:
            async for sse in parse_sse(lines):
                data = self.parse_json(sse.data)
                kind = data.get("type")
                if kind == "content_block_delta":
                    delta = data.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        yield DeltaEvent(content=delta["text"])
                    elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
                        yield DeltaEvent(reasoning_content=delta["thinking"])
                elif kind == "message_start":
                    message = data.get("message") or {}
                    message_id = str(message.get("id", ""))
                    model = str(message.get("model", model))
                    usage.update(message.get("usage") or {})
                elif kind == "message_delta":
                    stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                    usage.update(data.get("usage") or {})
                elif kind == "message_stop":
                    yield DoneEvent(
                        id=message_id,
                        model=model,
                        finish_reason=FINISH_REASONS.get(stop_reason, "stop"),
                        usage=usage_from(usage),
                    )
                    return
                elif kind == "error":
                    error = data.get("error") or {}
                    raise self.stream_error(str(error.get("message")), str(error.get("type", "")))
        raise self.stream_error("the stream ended before message_stop")
