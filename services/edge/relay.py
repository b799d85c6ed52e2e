"""Chat answers for the client: the JSON body, and the SSE frames relayed from the worker."""

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson

from services.edge.jobs import JobQueue, PendingJob
from shared.errors import GatewayError, rebuild
from shared.messages import DeltaEvent, DoneEvent, ErrorEvent, Event
from shared.schemas import AssistantMessage, ChatRequest, ChatResponse, Choice

ChatEvent = DeltaEvent | DoneEvent | ErrorEvent

DONE_FRAME = b"data: [DONE]\n\n"


def chat_response(request: ChatRequest, done: DoneEvent) -> ChatResponse:
    message = AssistantMessage(
        content=done.content,
        reasoning_content=done.reasoning_content,
        tool_calls=done.tool_calls,
    )
    return ChatResponse(
        id=done.id,
        provider=done.provider or request.provider,
        model=done.model,
        choices=[Choice(message=message, finish_reason=done.finish_reason)],
        usage=done.usage,
        provider_metadata=done.provider_metadata,
    )


def _frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


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
    if event.content:
        delta["content"] = event.content
    if event.tool_calls:
        delta["tool_calls"] = openai_tool_call_deltas(event)
    return delta


def delta_frame(event: DeltaEvent) -> bytes:
    return _frame({"delta": openai_delta(event)})


def usage_with_cost(done: DoneEvent, cost: Decimal | None) -> dict[str, Any]:
    """A stream's final usage with what the request cost (`null`: its model has no price)."""
    return done.usage.model_dump(exclude_none=True) | {
        "cost_usd": None if cost is None else float(cost)
    }


def done_frame(request: ChatRequest, done: DoneEvent, cost: Decimal | None) -> bytes:
    final: dict[str, Any] = {
        "delta": {},
        "finish_reason": done.finish_reason,
        "id": done.id,
        "provider": done.provider or request.provider,
        "model": done.model,
        "usage": usage_with_cost(done, cost),
    }
    if done.provider_metadata:
        final["provider_metadata"] = done.provider_metadata
    return _frame(final)


def error_frame(error: GatewayError, trace: str) -> bytes:
    return _frame(error.envelope(trace))


async def sse_frames(
    queue: JobQueue, pending: PendingJob, first: ChatEvent
) -> AsyncIterator[bytes]:
    """SSE bytes for a stream whose first event was not an error; always ends with [DONE].

    Events that are already waiting are written together, so a burst costs one write.
    """
    request, trace = pending.chat_request(), pending.job.trace
    try:
        events: list[Event] = [first]
        while True:
            chunk = bytearray()
            for event in events:
                if isinstance(event, DeltaEvent):
                    chunk += delta_frame(event)
                elif isinstance(event, DoneEvent):
                    yield bytes(chunk + done_frame(request, event, pending.cost) + DONE_FRAME)
                    return
                elif isinstance(event, ErrorEvent):
                    error = rebuild(event.type, event.message, event.status, details=event.details)
                    yield bytes(chunk + error_frame(error, trace) + DONE_FRAME)
                    return
            yield bytes(chunk)
            try:
                events = [await pending.next_event(), *pending.ready_events()]
            except GatewayError as exc:
                yield error_frame(exc, trace) + DONE_FRAME
                return
    finally:
        await queue.release(pending)
