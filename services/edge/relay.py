"""The queue hop: enqueue a chat job and relay the worker's events to the client."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.edge.replies import ReplyHub
from shared.errors import GatewayError, ProviderError, ServiceUnavailable, rebuild
from shared.ids import new_id
from shared.messages import ChatJob, DeltaEvent, DoneEvent, ErrorEvent, Event, decode_event
from shared.redis_keys import RedisKeys
from shared.schemas import AssistantMessage, ChatRequest, ChatResponse, Choice

ChatEvent = DeltaEvent | DoneEvent | ErrorEvent

DONE_FRAME = b"data: [DONE]\n\n"


@dataclass
class PendingJob:
    job: ChatJob
    channel: str
    events: asyncio.Queue[bytes]

    async def next_event(self) -> Event:
        remaining = self.job.deadline - time.time()
        try:
            raw = await asyncio.wait_for(self.events.get(), max(remaining, 0.001))
        except TimeoutError:
            raise ProviderError(
                "The provider did not answer in time",
                status=504,
                details={"provider": self.job.request.provider},
            ) from None
        return decode_event(raw)

    def ready_events(self) -> list[Event]:
        ready = []
        while not self.events.empty():
            ready.append(decode_event(self.events.get_nowait()))
        return ready


class JobQueue:
    def __init__(
        self, redis: Redis, hub: ReplyHub, keys: RedisKeys, *, timeout: float, maxlen: int
    ) -> None:
        self.redis = redis
        self.hub = hub
        self.keys = keys
        self.timeout = timeout
        self.maxlen = maxlen

    async def submit(self, request: ChatRequest, *, user_id: str, trace: str) -> PendingJob:
        now = time.time()
        job = ChatJob(
            id=new_id("job"),
            trace=trace,
            ts=now,
            deadline=now + self.timeout,
            user_id=user_id,
            request=request,
        )
        channel = self.keys.reply(job.id)
        events = await self.hub.subscribe(channel)
        try:
            await self.redis.xadd(
                self.keys.jobs(request.provider),
                {"job": orjson.dumps(job.model_dump(exclude_none=True))},
                maxlen=self.maxlen,
                approximate=True,
            )
        except RedisError as exc:
            await self.hub.unsubscribe(channel)
            raise ServiceUnavailable("The job queue is unavailable") from exc
        return PendingJob(job, channel, events)

    async def release(self, pending: PendingJob) -> None:
        await self.hub.unsubscribe(pending.channel)


def raise_error(event: ErrorEvent) -> None:
    raise rebuild(
        event.type,
        event.message,
        event.status,
        details=event.details,
        retry_after=event.retry_after,
    )


def chat_response(request: ChatRequest, done: DoneEvent) -> ChatResponse:
    message = AssistantMessage(content=done.content, reasoning_content=done.reasoning_content)
    return ChatResponse(
        id=done.id,
        provider=request.provider,
        model=done.model,
        choices=[Choice(message=message, finish_reason=done.finish_reason)],
        usage=done.usage,
    )


def _frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def delta_frame(event: DeltaEvent) -> bytes:
    delta: dict[str, str] = {}
    if event.reasoning_content:
        delta["reasoning_content"] = event.reasoning_content
    if event.content:
        delta["content"] = event.content
    return _frame({"delta": delta})


def done_frame(request: ChatRequest, done: DoneEvent) -> bytes:
    return _frame(
        {
            "delta": {},
            "finish_reason": done.finish_reason,
            "id": done.id,
            "provider": request.provider,
            "model": done.model,
            "usage": done.usage.model_dump(exclude_none=True),
        }
    )


def error_frame(error: GatewayError, trace: str) -> bytes:
    return _frame(error.envelope(trace))


async def sse_frames(
    queue: JobQueue, pending: PendingJob, first: ChatEvent
) -> AsyncIterator[bytes]:
    """SSE bytes for a stream whose first event was not an error; always ends with [DONE].

    Events that are already waiting are written together, so a burst costs one write.
    """
    request, trace = pending.job.request, pending.job.trace
    try:
        events: list[Event] = [first]
        while True:
            chunk = bytearray()
            for event in events:
                if isinstance(event, DeltaEvent):
                    chunk += delta_frame(event)
                elif isinstance(event, DoneEvent):
                    yield bytes(chunk + done_frame(request, event) + DONE_FRAME)
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
