"""Sends one job's events to its reply channel, coalescing deltas without delaying the first.

A delta is published at once when no publish is in flight; deltas that arrive while one is in
flight are merged and sent as one message when it returns. So a burst costs a few PUBLISHes
and a slow stream still gets every token out immediately.
"""

import asyncio

from redis.asyncio import Redis

from shared.messages import DeltaEvent, DoneEvent, ErrorEvent, encode


class ReplyPublisher:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.delivered = 0  # delta messages that reached a subscriber
        self.client_gone = False
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._flushing: asyncio.Task[None] | None = None

    def delta(self, event: DeltaEvent) -> None:
        self._content.append(event.content)
        self._reasoning.append(event.reasoning_content)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._content:
            event = DeltaEvent(
                content="".join(self._content), reasoning_content="".join(self._reasoning)
            )
            self._content.clear()
            self._reasoning.clear()
            receivers = await self.redis.publish(self.channel, encode(event))
            if receivers == 0:
                self.client_gone = True
            else:
                self.delivered += 1

    async def finish(self, event: DoneEvent | ErrorEvent) -> None:
        if self._flushing is not None:
            await self._flushing
        await self._flush()
        await self.redis.publish(self.channel, encode(event))
