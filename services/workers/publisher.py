"""Sends one job's events to its reply channel, coalescing deltas without delaying the first.

A delta is published at once when no publish is in flight; deltas that arrive while one is in
flight are merged and sent as one message when it returns. So a burst costs a few PUBLISHes
and a slow stream still gets every token out immediately.
"""

import asyncio

from redis.asyncio import Redis

from shared.messages import DeltaEvent, Event, ToolCallDelta, encode


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
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.delivered = 0  # delta messages that reached a subscriber
        self.client_gone = False
        self._waiting = False
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: list[ToolCallDelta] = []
        self._flushing: asyncio.Task[None] | None = None

    def delta(self, event: DeltaEvent) -> None:
        self._content.append(event.content)
        self._reasoning.append(event.reasoning_content)
        merge_tool_calls(self._tool_calls, event.tool_calls)
        self._waiting = True
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    def _take(self) -> DeltaEvent:
        event = DeltaEvent(
            content="".join(self._content),
            reasoning_content="".join(self._reasoning),
            tool_calls=tuple(self._tool_calls),
        )
        self._content.clear()
        self._reasoning.clear()
        self._tool_calls.clear()
        self._waiting = False
        return event

    async def _flush(self) -> None:
        while self._waiting:
            receivers = await self.redis.publish(self.channel, encode(self._take()))
            if receivers == 0:
                self.client_gone = True
            else:
                self.delivered += 1

    async def finish(self, event: Event) -> None:
        if self._flushing is not None:
            await self._flushing
        await self._flush()
        await self.redis.publish(self.channel, encode(event))
