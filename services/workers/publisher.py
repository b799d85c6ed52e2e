"""Sends one job's events to its edge's reply channel (framed with the job's id), coalescing
deltas without delaying the first.

The first delta is published at once. Later deltas are merged until `coalesce` seconds have
passed since the previous publish (and while a publish is in flight), then sent as one message:
a burst costs a few PUBLISHes, tokens trickling in every few ms share messages, and tokens
further apart than the window go out as they come. The terminal event flushes at once.

The first delta is published in one MULTI with setting the job's `streamed` marker (TTL: the
job's remaining deadline), so a worker reclaiming the job after a crash knows the client has
seen part of an answer and must not run it again. The terminal event goes in one MULTI with
the job's last writes (its acknowledgement).
"""

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.delivered import delta_chars
from shared.messages import DeltaEvent, Event, ToolCallDelta, frame
from shared.redis_client import publish, queue_publish, writes
from shared.schemas import Usage

Write = Callable[[Pipeline], object]  # queues Redis commands on a pipeline


def merge_tool_calls(pieces: list[ToolCallDelta], new: tuple[ToolCallDelta, ...]) -> None:
    """Appends `new` to `pieces` in order; argument text continuing the last piece's call is
    joined onto it (a piece that starts a call, with an id or name, always stays separate)."""
    for piece in new:
        last = pieces[-1] if pieces else None
        continues = piece.id is None and piece.name is None
        if last is not None and continues and last.index == piece.index:
            pieces[-1] = last.model_copy(update={"arguments": last.arguments + piece.arguments})
        else:
            pieces.append(piece)


class ReplyPublisher:
    def __init__(
        self,
        redis: Redis,
        channel: str,
        job_id: str,
        streamed_key: str | None = None,
        streamed_ttl: float = 60.0,
        coalesce: float = 0.0,
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.job_id = job_id
        self.streamed_key = streamed_key
        self.streamed_ttl_ms = max(1000, int(streamed_ttl * 1000))
        self.coalesce = coalesce
        self.delivered = 0  # delta messages that reached a subscriber
        self.delivered_chars = 0  # text (content, reasoning, tool arguments) they carried
        self.started = False  # a delta was handed over: the job can no longer be run again
        self.client_gone = False  # a PUBLISH reached nobody: the edge itself is gone
        self._waiting = False
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._details: list[dict[str, Any]] = []
        self._logprobs: list[dict[str, Any]] = []
        self._tool_calls: list[ToolCallDelta] = []
        self._usage: Usage | None = None  # reported early (the first delta carries it)
        self._flushing: asyncio.Task[None] | None = None
        self._due: asyncio.TimerHandle | None = None  # the next flush, at the window's end
        self._published_at = 0.0  # loop time of the last delta publish
        self._finishing = False  # set by `finish`: publish what is left without waiting

    def delta(self, event: DeltaEvent) -> None:
        self.started = True
        self._content.append(event.content)
        self._reasoning.append(event.reasoning_content)
        self._details.extend(event.reasoning_details)
        self._logprobs.extend(event.logprobs)
        merge_tool_calls(self._tool_calls, event.tool_calls)
        self._usage = self._usage or event.usage
        self._waiting = True
        if self._due is not None or (self._flushing is not None and not self._flushing.done()):
            return  # a flush is due or running: it takes this delta too
        loop = asyncio.get_running_loop()
        due = self._published_at + self.coalesce
        if self.delivered and due > loop.time():
            self._due = loop.call_at(due, self._start_flush)
        else:
            self._start_flush()

    def _start_flush(self) -> None:
        self._due = None
        self._flushing = asyncio.create_task(self._flush())

    def _take(self) -> DeltaEvent:
        event = DeltaEvent(
            content="".join(self._content),
            reasoning_content="".join(self._reasoning),
            reasoning_details=tuple(self._details),
            tool_calls=tuple(self._tool_calls),
            logprobs=tuple(self._logprobs),
            usage=self._usage,
        )
        self._content.clear()
        self._reasoning.clear()
        self._details.clear()
        self._logprobs.clear()
        self._tool_calls.clear()
        self._usage = None
        self._waiting = False
        return event

    async def _publish_delta(self, event: DeltaEvent) -> int:
        if self.delivered or self.streamed_key is None:
            return await publish(self.redis, self.channel, frame(self.job_id, event))
        async with writes(self.redis) as pipe:
            pipe.set(self.streamed_key, b"1", px=self.streamed_ttl_ms)
            queue_publish(pipe, self.channel, frame(self.job_id, event))
            _, receivers = await pipe.execute()
        return int(receivers)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            event = self._take()
            self._published_at = loop.time()
            if await self._publish_delta(event) == 0:
                self.client_gone = True
            else:
                self.delivered += 1
                self.delivered_chars += delta_chars(event)
            due = self._published_at + self.coalesce
            if self._waiting and not self._finishing and due > loop.time():
                self._due = loop.call_at(due, self._start_flush)
                return

    async def finish(self, event: Event, *also: Write) -> None:
        """Publishes the terminal event after the deltas, in one MULTI with the writes `also`
        queues (the job's acknowledgement)."""
        self._finishing = True
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._flushing is not None:
            await self._flushing
        await self._flush()
        async with writes(self.redis) as pipe:
            queue_publish(pipe, self.channel, frame(self.job_id, event))
            for write in also:
                write(pipe)
            await pipe.execute()
