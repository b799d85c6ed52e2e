"""Sends one job's events to its edge's reply channel (framed with the job's id), coalescing
deltas without delaying the first.

The first delta is published at once. Later deltas are merged into the stream's next message,
which the worker's `ReplyBatcher` sends within `coalesce` seconds: every `coalesce` seconds,
while any stream has deltas waiting, it sends one message per such stream, all of them in one
pipelined write. A burst read from the upstream socket becomes one message, tokens trickling
in share messages, and the worker wakes up for its streams once per `coalesce`, not once per
stream or token. The terminal event takes what is left at once.

The first delta is published in one MULTI with setting the job's `streamed` marker (TTL: the
job's remaining deadline), so a worker reclaiming the job after a crash knows the client has
seen part of an answer and must not run it again. The terminal event goes in one MULTI with
the job's last writes (its acknowledgement). In a cluster these writes span slots: they are
sent together without a MULTI (`redis_client.writes`), and the messages are SPUBLISHed.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from shared.delivered import delta_chars
from shared.messages import DeltaEvent, Event, ToolCallDelta, frame
from shared.redis_client import is_cluster, queue_publish, writes
from shared.redis_trips import SharedTrips
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


class ReplyBatcher:
    """The deltas waiting in a worker's streams, sent together: every `coalesce` seconds while
    any wait, one PUBLISH per stream, all in one pipeline (one timer and one write for all)."""

    def __init__(self, redis: Redis, coalesce: float) -> None:
        self.redis = redis
        self.coalesce = coalesce
        # The streams' and jobs' last writes: those of jobs ending together share one MULTI
        # (in a cluster, one pipeline without it, as `redis_client.writes`).
        self.last_writes = SharedTrips(redis, transaction=not is_cluster(redis))
        self._waiting: dict[ReplyPublisher, None] = {}  # in the order they asked
        self._ticking: asyncio.Task[None] | None = None

    def add(self, publisher: "ReplyPublisher") -> None:
        self._waiting[publisher] = None
        if self._ticking is None or self._ticking.done():
            self._ticking = asyncio.create_task(self._tick())

    def remove(self, publisher: "ReplyPublisher") -> None:
        self._waiting.pop(publisher, None)

    async def _tick(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.coalesce)
            ready = [p for p in self._waiting if p.sendable()]
            for publisher in ready:
                del self._waiting[publisher]
            if ready:
                await self._send(ready)

    async def _send(self, publishers: list["ReplyPublisher"]) -> None:
        events = [p.take() for p in publishers]
        sent = asyncio.get_running_loop().create_future()
        for publisher in publishers:
            publisher.sending = sent
        answers: list[Any]
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for publisher, event in zip(publishers, events, strict=True):
                    queue_publish(pipe, publisher.channel, frame(publisher.job_id, event))
                answers = await pipe.execute(raise_on_error=False)
        except RedisError as exc:
            answers = [exc] * len(publishers)
        finally:
            sent.set_result(None)
        for publisher, event, answer in zip(publishers, events, answers, strict=True):
            publisher.sent(event, answer)


class ReplyPublisher:
    def __init__(
        self,
        redis: Redis,
        channel: str,
        job_id: str,
        batcher: ReplyBatcher,
        streamed_key: str | None = None,
        streamed_ttl: float = 60.0,
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.job_id = job_id
        self.batcher = batcher
        self.streamed_key = streamed_key
        self.streamed_ttl_ms = max(1000, int(streamed_ttl * 1000))
        self.delivered = 0  # delta messages that reached a subscriber
        self.delivered_chars = 0  # text (content, reasoning, tool arguments) they carried
        self.started = False  # a delta was handed over: the job can no longer be run again
        self.client_gone = False  # a PUBLISH reached nobody: the edge itself is gone
        self.sending: asyncio.Future[None] | None = None  # the batch carrying its deltas
        self._waiting = False
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._details: list[dict[str, Any]] = []
        self._logprobs: list[dict[str, Any]] = []
        self._tool_calls: list[ToolCallDelta] = []
        self._usage: Usage | None = None  # reported early (the first delta carries it)
        self._first: asyncio.Task[None] | None = None  # the first delta's publish
        self._failed: RedisError | None = None  # a publish that failed, raised by `finish`

    def delta(self, event: DeltaEvent) -> None:
        self.started = True
        self._content.append(event.content)
        self._reasoning.append(event.reasoning_content)
        self._details.extend(event.reasoning_details)
        self._logprobs.extend(event.logprobs)
        merge_tool_calls(self._tool_calls, event.tool_calls)
        self._usage = self._usage or event.usage
        if self._waiting:
            return  # its message is due already
        self._waiting = True
        if self._first is None:
            self._first = asyncio.create_task(self._publish_first())
        else:
            self.batcher.add(self)

    def sendable(self) -> bool:
        """Whether its waiting deltas may go: its first message is out (they follow it)."""
        return self._first is not None and self._first.done()

    def take(self) -> DeltaEvent:
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

    def sent(self, event: DeltaEvent, answer: object) -> None:
        """Notes how a delta message fared: `answer` is its PUBLISH's reply or error."""
        if isinstance(answer, RedisError):
            self._failed = answer
        elif isinstance(answer, Exception):
            self._failed = RedisError(str(answer))
        elif answer == 0:
            self.client_gone = True
        else:
            self.delivered += 1
            self.delivered_chars += delta_chars(event)

    async def _publish_first(self) -> None:
        """The first message, with the job's `streamed` marker when it has one."""
        event = self.take()
        answer: object
        try:
            async with writes(self.redis) as pipe:
                if self.streamed_key is not None:
                    pipe.set(self.streamed_key, b"1", px=self.streamed_ttl_ms)
                queue_publish(pipe, self.channel, frame(self.job_id, event))
                answer = (await pipe.execute())[-1]
        except RedisError as exc:
            answer = exc
        self.sent(event, answer)
        if self._waiting:  # deltas that came meanwhile
            self.batcher.add(self)

    async def finish(self, event: Event, *also: Write) -> None:
        """Publishes the terminal event after the deltas (those still waiting with it), in one
        MULTI with the writes `also` queues (the job's acknowledgement), shared with the jobs
        that end in the same turn of the event loop."""
        self.batcher.remove(self)
        if self._first is not None:
            await self._first
            self.batcher.remove(self)  # added again for what came meanwhile: taken here
        if self.sending is not None:
            await self.sending
        if self._failed is not None:
            raise self._failed
        waiting = self.take() if self._waiting else None

        def last_writes(pipe: Pipeline) -> None:
            if waiting is not None:
                queue_publish(pipe, self.channel, frame(self.job_id, waiting))
            queue_publish(pipe, self.channel, frame(self.job_id, event))
            for write in also:
                write(pipe)

        answers = await self.batcher.last_writes.run(last_writes)
        if waiting is not None:
            self.sent(waiting, answers[0])
