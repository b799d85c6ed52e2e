"""A worker's pulse, every `HEARTBEAT_INTERVAL`:

- its name in `heartbeat(provider)` (see `shared.health`), until shutdown starts, so the pool
  shows one live worker fewer as soon as this one stops taking jobs;
- a renewed lease on every job it is running (`XCLAIM … JUSTID` to itself resets the entry's
  idle time without counting a delivery), until its last job ends, so a long job is never
  mistaken for one left by a dead worker. `HEARTBEAT_INTERVAL` must be well below
  `RECLAIM_IDLE`.
"""

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.workers.consumer import JobConsumer
from shared import health
from shared.redis_keys import WORKER_GROUP, RedisKeys

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, redis: Redis, keys: RedisKeys, consumer: JobConsumer, interval: float
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.consumer = consumer
        self.interval = interval

    async def renew_leases(self) -> None:
        ids: list[int | bytes | str | memoryview[int]] = list(self.consumer.running)
        if ids:
            await self.redis.xclaim(
                self.consumer.stream,
                WORKER_GROUP,
                self.consumer.consumer_name,
                min_idle_time=0,
                message_ids=ids,
                justid=True,
            )

    async def run(self, stop: asyncio.Event, finished: asyncio.Event) -> None:
        """Beats until `stop`, renews leases until `finished`."""
        provider, name = self.consumer.provider, self.consumer.consumer_name
        beating = True
        while not finished.is_set():
            try:
                if beating and stop.is_set():
                    beating = False
                    await health.leave(self.redis, self.keys, provider, name)
                elif beating:
                    await health.beat(self.redis, self.keys, provider, name, self.interval)
                await self.renew_leases()
            except RedisError:
                log.warning("heartbeat failed", exc_info=True)
            waiting = stop if beating else finished
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.wait(), self.interval)
        if beating:
            with contextlib.suppress(RedisError):
                await health.leave(self.redis, self.keys, provider, name)
