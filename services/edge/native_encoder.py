"""How `/api/v1/chat` writes an answer: one JSON body, or Server-Sent Events in OpenAI's `delta`
shape ending with `data: [DONE]`."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from shared.errors import GatewayError
from shared.messages import DeltaEvent, DoneEvent
from shared.schemas import AssistantMessage, ChatResponse, Choice

DONE_FRAME = b"data: [DONE]\n\n"


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_frames(error: GatewayError, trace: str) -> bytes:
    """A failure after the stream began: the standard error envelope, then [DONE]."""
    return frame(error.envelope(trace)) + DONE_FRAME


def usage_with_cost(done: DoneEvent, cost: Decimal | None) -> dict[str, Any]:
    """A stream's final usage with what the request cost (`null`: its model has no price)."""
    return done.usage.model_dump(exclude_none=True) | {
        "cost_usd": None if cost is None else float(cost)
    }


def openai_tool_call_deltas(event: DeltaEvent) -> list[dict[str, Any]]:
    """Tool-call pieces in OpenAI's delta shape (the first piece names the call)."""
    pieces = []
    for call in event.tool_calls:
        piece: dict[str, Any] = {"index": call.index}
        function: dict[str, str] = {"arguments": call.arguments}
        if call.id is not None:
            piece.update(id=call.id, type="function")
        if call.name is not None:
            function["name"] = call.name
        piece["function"] = function
        pieces.append(piece)
    return pieces


def openai_delta(event: DeltaEvent) -> dict[str, Any]:
    """A delta event in OpenAI's `delta` shape (the native and OpenAI-compatible streams)."""
    delta: dict[str, Any] = {}
    if event.reasoning_content:
        delta["reasoning_content"] = event.reasoning_content
    if event.reasoning_details:
        delta["reasoning_details"] = list(event.reasoning_details)
    if event.content:
        delta["content"] = event.content
    if event.tool_calls:
        delta["tool_calls"] = openai_tool_call_deltas(event)
    return delta


@dataclass(frozen=True, slots=True)
class NativeEncoder:
    provider: str  # the request's: named when the worker does not say who answered

    def body(self, done: DoneEvent) -> bytes:
        message = AssistantMessage(
            content=done.content,
            reasoning_content=done.reasoning_content,
            reasoning_details=done.reasoning_details,
            tool_calls=done.tool_calls,
        )
        others = [
            Choice(
                index=alternative.index,
                message=AssistantMessage(
                    content=alternative.content,
                    reasoning_content=alternative.reasoning_content,
                    tool_calls=alternative.tool_calls,
                ),
                finish_reason=alternative.finish_reason,
                logprobs=alternative.logprobs,
            )
            for alternative in done.alternatives or ()
        ]
        first = Choice(message=message, finish_reason=done.finish_reason, logprobs=done.logprobs)
        response = ChatResponse(
            id=done.id,
            provider=done.provider or self.provider,
            model=done.model,
            choices=[first, *others],
            usage=done.usage,
            provider_metadata=done.provider_metadata,
        )
        return response.model_dump_json(exclude_none=True).encode()

    def opening(self, first: DeltaEvent | DoneEvent) -> bytes:
        return b""

    def delta(self, event: DeltaEvent) -> bytes:
        if event.logprobs:
            return frame({"delta": openai_delta(event), "logprobs": list(event.logprobs)})
        return frame({"delta": openai_delta(event)})

    def done(self, event: DoneEvent, cost: Decimal | None) -> bytes:
        final: dict[str, Any] = {
            "delta": {},
            "finish_reason": event.finish_reason,
            "id": event.id,
            "provider": event.provider or self.provider,
            "model": event.model,
            "usage": usage_with_cost(event, cost),
        }
        if event.provider_metadata:
            final["provider_metadata"] = event.provider_metadata
        return frame(final) + DONE_FRAME

    def error(self, error: GatewayError, trace: str) -> bytes:
        return error_frames(error, trace)
