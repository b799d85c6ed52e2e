"""Chat answers in OpenAI's shapes: the `chat.completion` body and `chat.completion.chunk` SSE."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from services.edge.jobs import JobQueue, PendingJob
from services.edge.openai_schemas import ChatCompletion, CompletionChoice, CompletionMessage
from services.edge.relay import (
    DONE_FRAME,
    ChatEvent,
    error_frame,
    openai_delta,
    usage_with_cost,
)
from shared.errors import GatewayError, rebuild
from shared.messages import DeltaEvent, DoneEvent, ErrorEvent, Event


@dataclass(frozen=True)
class Completion:
    """What every chunk (or the body) of one answer repeats."""

    id: str
    created: int
    model: str  # as the client wrote it: `provider/model`

    def body(self, done: DoneEvent) -> ChatCompletion:
        message = CompletionMessage(
            content=done.content,
            tool_calls=done.tool_calls or None,
            reasoning_content=done.reasoning_content or None,
        )
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[CompletionChoice(message=message, finish_reason=done.finish_reason)],
            usage=done.usage,
        )

    def body_json(self, done: DoneEvent) -> bytes:
        """OpenAI's exact shape: `content` and `logprobs` present even when null."""
        body = self.body(done).model_dump()
        message = body["choices"][0]["message"]
        for optional in ("tool_calls", "reasoning_content"):
            if message[optional] is None:
                del message[optional]
        body["usage"] = done.usage.model_dump(exclude_none=True)
        return orjson.dumps(body)

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return self._frame([choice])

    def delta_chunk(self, event: DeltaEvent) -> bytes:
        delta = openai_delta(event)
        return self.chunk(delta) if delta else b""

    def final_chunks(self, done: DoneEvent, include_usage: bool, cost: Decimal | None) -> bytes:
        frames = self.chunk({}, done.finish_reason)
        if include_usage:
            frames += self._frame([], usage=usage_with_cost(done, cost))
        return frames + DONE_FRAME


async def completion_chunks(
    queue: JobQueue,
    pending: PendingJob,
    first: ChatEvent,
    completion: Completion,
    *,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The chunks of a stream whose first event was not an error; always ends with [DONE].

    A failure after the stream began is a chunk with a top-level `error` (which OpenAI's SDKs
    raise), then [DONE].
    """
    trace = pending.job.trace
    try:
        events: list[Event] = [first]
        chunk = completion.chunk({"role": "assistant", "content": ""})
        while True:
            for event in events:
                if isinstance(event, DeltaEvent):
                    chunk += completion.delta_chunk(event)
                elif isinstance(event, DoneEvent):
                    yield chunk + completion.final_chunks(event, include_usage, pending.cost)
                    return
                elif isinstance(event, ErrorEvent):
                    error = rebuild(event.type, event.message, event.status, details=event.details)
                    yield chunk + error_frame(error, trace) + DONE_FRAME
                    return
            if chunk:
                yield chunk
            chunk = b""
            try:
                events = [await pending.next_event(), *pending.ready_events()]
            except GatewayError as exc:
                yield error_frame(exc, trace) + DONE_FRAME
                return
    finally:
        await queue.release(pending)
