"""One pub/sub connection per edge process, shared by every request waiting for a worker.

A request subscribes to its job's reply channel (and waits for Redis to confirm, so no reply
can be missed) before it enqueues the job; the reader task routes each message to the queue of
the request that owns the channel. A request that goes away unsubscribes, so the worker's next
PUBLISH reaches nobody and it stops the upstream call.
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


class ReplyHub:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.pubsub: PubSub = redis.pubsub()
        self.home = keys.reply(f"edge-{os.getpid()}")  # keeps the connection subscribed
        self.queues: dict[bytes, asyncio.Queue[bytes]] = {}
        self.confirmations: dict[bytes, asyncio.Future[None]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe(self.home)
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
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
