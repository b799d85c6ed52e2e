"""Stopping upstream work nobody waits for any more.

The edge subscribes to a job's reply channel before enqueueing it and unsubscribes when its
client leaves. A streaming job notices on its next PUBLISH (zero receivers); besides, while
upstream calls (with their retries) run, the worker counts the listeners of their jobs'
channels (one `PUBSUB NUMSUB` for all of them every `POLL_SECONDS`) and cancels the calls
nobody waits for, which also covers a stream's wait for its first token. Either way the job
ends with `ListenerGone`; for a cut stream it carries the usage of what was delivered
(`shared.delivered`).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import ProviderError
from shared.schemas import Usage

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.5


class ListenerGone(ProviderError):
    """Nobody listens on the job's reply channel any more: its client left the edge."""

    status = 499

    def __init__(self, usage: Usage | None = None) -> None:
        details = {"usage": usage.model_dump()} if usage is not None else {}
        super().__init__("The client went away", details=details)
        self.usage = usage


class ClientWatch:
    """Watches the reply channels of a worker's running jobs with one `PUBSUB NUMSUB` for all
    of them every `every` seconds, however many there are."""

    def __init__(self, redis: Redis, every: float = POLL_SECONDS) -> None:
        self.redis = redis
        self.every = every
        self._left: dict[str, asyncio.Future[None]] = {}  # channel -> set when nobody listens
        self._polling: asyncio.Task[None] | None = None

    async def unless_client_leaves(self, channel: str, work: Awaitable[T]) -> T:
        """The result of `work`, or `ListenerGone` (with `work` cancelled) once nobody listens
        on `channel`."""
        task = asyncio.ensure_future(work)
        left = self._left[channel] = asyncio.get_running_loop().create_future()
        if self._polling is None or self._polling.done():
            self._polling = asyncio.create_task(self._poll())
        try:
            await asyncio.wait((task, left), return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            log.info("the client left; cancelling the upstream call")
            raise ListenerGone()
        finally:
            del self._left[channel]
            left.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _poll(self) -> None:
        while self._left:
            await asyncio.sleep(self.every)
            channels = list(self._left)
            if not channels:
                return
            try:
                counts = await self.redis.pubsub_numsub(*channels)
            except RedisError:
                log.warning("could not count the clients still listening", exc_info=True)
                continue
            for name, count in counts:
                left = self._left.get(name.decode() if isinstance(name, bytes) else name)
                if int(count) == 0 and left is not None and not left.done():
                    left.set_result(None)
