"""One pub/sub connection per edge process, shared by every request waiting for a worker.

A request subscribes to its job's reply channel (and waits for Redis to confirm, so no reply
can be missed) before it enqueues the job; the reader task routes each message to the queue of
the request that owns the channel. A request that goes away unsubscribes, so the worker's next
PUBLISH reaches nobody and it stops the upstream call. A request whose job has answered has
nothing more to wait for: its channel is only forgotten, and unsubscribed a moment later
together with the others forgotten meanwhile (one command for many).
"""

import asyncio
import contextlib
import logging
import os

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from shared.errors import ServiceUnavailable
from shared.redis_keys import RedisKeys

log = logging.getLogger(__name__)

_SUBSCRIBE_TIMEOUT = 5.0
_SWEEP_SECONDS = 0.05


class ReplyHub:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.pubsub: PubSub = redis.pubsub()
        self.home = keys.reply(f"edge-{os.getpid()}")  # keeps the connection subscribed
        self.queues: dict[bytes, asyncio.Queue[bytes]] = {}
        self.confirmations: dict[bytes, asyncio.Future[None]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.forgotten: list[str] = []
        self.sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe(self.home)
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        for task in (self.reader, self.sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]

    async def subscribe(self, channel: str) -> asyncio.Queue[bytes]:
        key = channel.encode()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        confirmed = asyncio.get_running_loop().create_future()
        self.queues[key] = queue
        self.confirmations[key] = confirmed
        try:
            await self.pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed, _SUBSCRIBE_TIMEOUT)
        except (RedisError, TimeoutError) as exc:
            self.queues.pop(key, None)
            raise ServiceUnavailable("The job queue is unavailable") from exc
        finally:
            self.confirmations.pop(key, None)
        return queue

    async def unsubscribe(self, channel: str) -> None:
        self.queues.pop(channel.encode(), None)
        try:
            await self.pubsub.unsubscribe(channel)
        except RedisError:
            log.warning("could not unsubscribe from a reply channel", exc_info=True)

    def forget(self, channel: str) -> None:
        """Stops routing `channel`, whose job has answered; it is unsubscribed shortly."""
        self.queues.pop(channel.encode(), None)
        self.forgotten.append(channel)
        if self.sweeper is None:
            self.sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        try:
            while self.forgotten:
                await asyncio.sleep(_SWEEP_SECONDS)
                channels, self.forgotten = self.forgotten, []
                try:
                    await self.pubsub.unsubscribe(*channels)
                except RedisError:
                    log.warning("could not unsubscribe from reply channels", exc_info=True)
        finally:
            self.sweeper = None

    async def _read(self) -> None:
        while True:
            try:
                message = await self.pubsub.get_message(timeout=None)
            except RedisError:
                log.warning("reply connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel: bytes = message["channel"]
            if message["type"] == "message":
                queue = self.queues.get(channel)
                if queue is not None:
                    queue.put_nowait(message["data"])
            elif message["type"] == "subscribe":
                confirmed = self.confirmations.get(channel)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)
