"""Providers speaking the OpenAI chat-completions dialect (providers.md §0; DeepSeek §2)."""

from collections.abc import AsyncGenerator
from typing import Any

from services.workers.providers.base import ProviderAdapter
from services.workers.sse import parse_sse
from shared.messages import DeltaEvent, DoneEvent
from shared.schemas import ChatRequest, Usage

FINISH_REASONS = {"insufficient_system_resource": "error"}


def build_body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [m.model_dump(exclude_none=True) for m in request.messages],
    }
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "frequency_penalty": request.frequency_penalty,
        "presence_penalty": request.presence_penalty,
        "stop": request.stop_list(),
        "reasoning_effort": request.reasoning_effort,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def usage_from(raw: dict[str, Any]) -> Usage:
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    cached = raw.get("prompt_cache_hit_tokens")
    if cached is None:
        cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens")
    reasoning = (raw.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details={"cached_tokens": int(cached)} if cached else None,
        completion_tokens_details={"reasoning_tokens": int(reasoning)} if reasoning else None,
    )


def finish_reason(raw: Any) -> str:
    value = str(raw or "stop")
    return FINISH_REASONS.get(value, value)


class OpenAIDialectAdapter(ProviderAdapter):
    def headers(self, trace: str, *, stream: bool) -> dict[str, str]:
        return {
            "authorization": f"Bearer {self.api_key}",
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "x-request-id": trace,
        }

    async def complete(self, request: ChatRequest, trace: str) -> DoneEvent:
        headers = self.headers(trace, stream=False)
        body = await self.post_json("/chat/completions", build_body(request), headers)
        choices = body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        return DoneEvent(
            id=str(body.get("id", "")),
            model=str(body.get("model", request.model)),
            finish_reason=finish_reason(choices[0].get("finish_reason")),
            usage=usage_from(body.get("usage") or {}),
            content=message.get("content") or "",
            reasoning_content=message.get("reasoning_content") or None,
        )

    async def stream(
        self, request: ChatRequest, trace: str
    ) -> AsyncGenerator[DeltaEvent | DoneEvent, None]:
        completion_id, model, finish = "", request.model, None
        usage: dict[str, Any] = {}
        headers = self.headers(trace, stream=True)
        async with self.open_stream("/chat/completions", build_body(request), headers) as lines:
            async for sse in parse_sse(lines):
                if sse.data == "[DONE]":
                    break
                chunk = self.parse_json(sse.data)
                if isinstance(error := chunk.get("error"), dict):
                    raise self.stream_error(str(error.get("message")), str(error.get("code", "")))
                completion_id = str(chunk.get("id") or completion_id)
                model = str(chunk.get("model") or model)
                usage.update(chunk.get("usage") or {})
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    content, reasoning = delta.get("content"), delta.get("reasoning_content")
                    if content or reasoning:
                        yield DeltaEvent(content=content or "", reasoning_content=reasoning or "")
                    finish = choice.get("finish_reason") or finish
        if finish is None:
            raise self.stream_error("the stream ended before a finish reason")
        yield DoneEvent(
            id=completion_id,
            model=model,
            finish_reason=finish_reason(finish),
            usage=usage_from(usage),
        )
