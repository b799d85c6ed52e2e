"""Stopping upstream work nobody waits for any more.

The edge subscribes to a job's reply channel before enqueueing it and unsubscribes when its
client leaves. A streaming job notices on its next PUBLISH (zero receivers); besides, every
job polls `PUBSUB NUMSUB` on its channel while its upstream call (with its retries) runs and
cancels the call when nobody listens, which also covers a stream's wait for its first token.
Either way the job ends with `ClientGone`; for a cut stream it carries the usage of what was
delivered, estimated at about 4 characters per token.
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis

from shared.errors import ProviderError
from shared.schemas import ChatRequest, Usage

log = logging.getLogger(__name__)

T = TypeVar("T")

CHARS_PER_TOKEN = 4
POLL_SECONDS = 0.5


class ClientGone(ProviderError):
    status = 499

    def __init__(self, usage: Usage | None = None) -> None:
        details = {"usage": usage.model_dump()} if usage is not None else {}
        super().__init__("The client went away", details=details)
        self.usage = usage


def delivered_usage(request: ChatRequest, delivered_chars: int) -> Usage:
    """What a cut stream is billed: the prompt, and the completion text that was delivered."""
    prompt_chars = sum(len(m.text()) for m in request.messages)
    prompt = math.ceil(prompt_chars / CHARS_PER_TOKEN)
    completion = math.ceil(delivered_chars / CHARS_PER_TOKEN)
    total = prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


async def listeners(redis: Redis, channel: str) -> int:
    counts = await redis.pubsub_numsub(channel)
    return int(counts[0][1]) if counts else 0


async def unless_client_leaves(
    redis: Redis, channel: str, work: Awaitable[T], every: float = POLL_SECONDS
) -> T:
    """The result of `work`, or `ClientGone` (with `work` cancelled) once nobody listens on
    `channel`."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            if await listeners(redis, channel) == 0:
                log.info("the client left; cancelling the upstream call")
                raise ClientGone()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
