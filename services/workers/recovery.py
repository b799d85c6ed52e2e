"""Crash recovery: jobs a dead worker left pending are taken over by a live one.

Every half `RECLAIM_IDLE` (at most every 5 s) the worker claims (`XAUTOCLAIM`) entries of its
stream idle longer than `RECLAIM_IDLE` (live workers renew their jobs' leases, see
`heartbeat.py`), as many as it has free slots. For each, by its delivery count (`XPENDING`,
which counts this claim):

- more than `MAX_DELIVERIES`: the job goes to `dead_letters(provider)` with its last error and
  delivery count, its client gets a 502 error event, the entry is acknowledged;
- the job had streamed (`streamed(job id)` exists): running it again would send the client a
  second answer after part of the first, so the client gets a 502 error event instead;
- else the job runs again, like a new one.

A worker that replaces one known to have exited (`make run` restarts a crashed worker with
`--predecessor PID`) does not wait for `RECLAIM_IDLE`: at start it claims what its predecessor
had taken (`adopt`) and treats each entry the same way.
"""

import asyncio
import contextlib
import logging
import time
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.workers.consumer import Entry, JobConsumer
from shared import health
from shared.messages import ErrorEvent, Job, decode_job, encode, frame
from shared.redis_keys import WORKER_GROUP, RedisKeys

log = logging.getLogger(__name__)

WORKER_STOPPED = "The worker handling this request stopped"
DEAD_LETTER = "The request failed repeatedly and was set aside"
_DLQ_MAXLEN = 100_000


class Recovery:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        consumer: JobConsumer,
        *,
        idle: float,
        max_deliveries: int,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.consumer = consumer
        self.idle_ms = max(1, int(idle * 1000))
        self.max_deliveries = max_deliveries
        self.every = min(max(idle / 2, 0.1), 5.0)
        self.cursor = "0-0"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except RedisError:
                log.warning("reclaiming failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)

    async def sweep(self) -> None:
        if self.consumer.free <= 0:
            return
        answer = await self.redis.xautoclaim(
            self.consumer.stream,
            WORKER_GROUP,
            self.consumer.consumer_name,
            min_idle_time=self.idle_ms,
            start_id=self.cursor,
            count=self.consumer.free,
        )
        next_id, entries = answer[0], answer[1]
        self.cursor = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
        for entry_id, fields in entries:
            await self.take_over((entry_id, fields))

    async def adopt(self, predecessor: str) -> None:
        """Takes over the pending entries of `predecessor`, a consumer whose process exited.

        `XCLAIM` with the smallest idle time seen makes a claim by another worker in between
        (which resets the idle time) win: an entry is never taken from a live worker.
        """
        stream, group = self.consumer.stream, WORKER_GROUP
        pending = await self.redis.xpending_range(
            stream, group, min="-", max="+", count=self.consumer.free, consumername=predecessor
        )
        if pending:
            idle = min(int(entry["time_since_delivered"]) for entry in pending)
            ids: list[int | bytes | str | memoryview[int]] = [e["message_id"] for e in pending]
            claimed = await self.redis.xclaim(
                stream, group, self.consumer.consumer_name, min_idle_time=idle, message_ids=ids
            )
            entries = cast(list[Entry], claimed)
            log.info("taking over %d jobs of %s, which exited", len(entries), predecessor)
            for entry in entries:
                await self.take_over(entry)
        await health.leave(self.redis, self.keys, self.consumer.provider, predecessor)

    async def deliveries(self, entry_id: bytes) -> int:
        pending = await self.redis.xpending_range(
            self.consumer.stream, WORKER_GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def take_over(self, entry: Entry) -> None:
        entry_id, fields = entry
        if entry_id in self.consumer.running:  # ours, and still running: not abandoned
            return
        if not fields or b"job" not in fields:  # deleted or malformed
            await self.consumer.acknowledge(entry_id)
            return
        try:
            job = decode_job(fields[b"job"])
        except ValueError:
            await self.consumer.acknowledge(entry_id)
            return
        deliveries = await self.deliveries(entry_id)
        if deliveries > self.max_deliveries:
            log.error("job %s dead-lettered after %d deliveries", job.id, deliveries - 1)
            await self.end(job, entry_id, DEAD_LETTER, dead_letter=deliveries - 1)
        elif await self.redis.exists(self.keys.streamed(job.id)):
            log.warning("job %s had streamed when its worker stopped; ending it", job.id)
            await self.end(job, entry_id, WORKER_STOPPED)
        else:
            log.info("re-running job %s (delivery %d)", job.id, deliveries)
            self.consumer.start(entry_id, fields)

    async def end(self, job: Job, entry_id: bytes, message: str, dead_letter: int = 0) -> None:
        """Publishes the job's terminal error, dead-letters it if asked, acknowledges it."""
        event = ErrorEvent(
            type="provider_error",
            message=message,
            status=502,
            details={"provider": self.consumer.provider},
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            if dead_letter:
                record = {
                    "job": encode(job),
                    "error": WORKER_STOPPED,
                    "deliveries": str(dead_letter),
                    "ts": str(time.time()),
                }
                pipe.xadd(
                    self.keys.dead_letters(self.consumer.provider),
                    record,  # type: ignore[arg-type]
                    maxlen=_DLQ_MAXLEN,
                    approximate=True,
                )
            pipe.publish(job.reply_to, frame(job.id, event))
            pipe.xack(self.consumer.stream, WORKER_GROUP, entry_id)
            pipe.xdel(self.consumer.stream, entry_id)
            await pipe.execute()
