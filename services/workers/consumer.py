"""A provider's worker pool: reads its job stream in the `workers` group and runs jobs
(`job_runner.JobRunner` dispatches them on their kind).

Jobs run concurrently (bounded by `WORKER_CONCURRENCY`). Each job ends with exactly one
terminal event on its edge's reply channel, published in one MULTI with acknowledging and
deleting its entry, or is moved to a fallback provider's stream, so `XLEN jobs(provider)`
counts the jobs waiting or in flight. On shutdown the pool stops reading, gives in-flight jobs
the grace period to finish, and cancels the rest without acknowledging them: they stay
pending for another worker to reclaim (`recovery.py`).
"""

import asyncio
import logging
import time
from functools import partial

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from services.workers.fallback import forward, should_fall_back
from services.workers.job_runner import JobRunner
from services.workers.publisher import ReplyBatcher, ReplyPublisher
from shared.breaker import Breaker
from shared.logs import trace_id_var, traceparent_var, user_id_var
from shared.messages import ChatJob, ErrorEvent, Job, decode_job
from shared.redis_keys import WORKER_GROUP, RedisKeys

log = logging.getLogger(__name__)

_BLOCK_MS = 1000

Entry = tuple[bytes, dict[bytes, bytes]]


class JobConsumer:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        runner: JobRunner,
        *,
        consumer_name: str,
        concurrency: int,
        maxlen: int,
        coalesce: float = 0.0,
        shard: int = 0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.runner = runner
        self.provider = runner.adapter.provider.id
        self.stream = keys.jobs(self.provider, shard)
        self.consumer_name = consumer_name
        self.concurrency = concurrency
        self.maxlen = maxlen
        self.replies = ReplyBatcher(redis, coalesce)  # sends the streams' deltas together
        self.running: dict[bytes, asyncio.Task[None]] = {}  # entry id -> its job
        self.last_read: float | None = None  # monotonic time of the last read Redis answered

    @property
    def free(self) -> int:
        return self.concurrency - len(self.running)

    def consuming(self, within: float) -> bool:
        """Whether the pool takes jobs: Redis answered a read of its stream in the last
        `within` seconds, or every slot is busy with a job (it reads again when one ends).
        Safe to call from another thread (the probe server's)."""
        if self.free <= 0:
            return True
        return self.last_read is not None and time.monotonic() - self.last_read <= within

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, WORKER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def start(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        task = asyncio.create_task(self.handle(entry_id, fields))
        self.running[entry_id] = task
        task.add_done_callback(lambda _: self.running.pop(entry_id, None))

    async def read(self) -> list[Entry]:
        """New entries, and a look at the breaker right after they were taken (see
        `UpstreamGuard`)."""
        guard = self.runner.guard
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xreadgroup(
                WORKER_GROUP,
                self.consumer_name,
                {self.stream: ">"},
                count=self.free,
                block=_BLOCK_MS,
            )
            guard.breaker.closed_in(pipe, self.provider)
            batches, state = await pipe.execute()
        guard.saw_breaker(closed=Breaker.is_closed(state))
        return [entry for _stream, entries in batches or [] for entry in entries]

    async def run(self, stop: asyncio.Event, grace: float) -> None:
        await self.ensure_group()
        while not stop.is_set():
            if self.free <= 0:  # until a slot frees up, or shutdown starts
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {*self.running.values(), stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                stopping.cancel()
                continue
            try:
                entries = await self.read()
            except ResponseError as exc:
                # The stream (or its group) is gone: deleted between reads (NOGROUP), or while
                # this read was blocked on it (UNBLOCKED).
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                await self.ensure_group()
                continue
            except RedisError:
                log.warning("redis unavailable; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            self.last_read = time.monotonic()
            for entry_id, fields in entries:
                self.start(entry_id, fields)
        await self.drain(grace)

    async def drain(self, grace: float) -> None:
        """Lets in-flight jobs finish within `grace`; the others stay pending, un-acked."""
        tasks = list(self.running.values())
        if not tasks:
            return
        log.info("waiting up to %.1fs for %d in-flight jobs", grace, len(tasks))
        _, unfinished = await asyncio.wait(tasks, timeout=grace)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("left %d unfinished jobs pending for another worker", len(unfinished))
            await asyncio.wait(unfinished)

    def queue_ack(self, entry_id: bytes, pipe: Pipeline) -> None:
        pipe.xack(self.stream, WORKER_GROUP, entry_id)
        pipe.xdel(self.stream, entry_id)

    async def acknowledge(self, entry_id: bytes) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self.queue_ack(entry_id, pipe)
            await pipe.execute()

    def publisher(self, job: Job) -> ReplyPublisher:
        ttl = max(job.deadline - time.time(), 1.0)
        return ReplyPublisher(
            self.redis,
            job.reply_to,
            job.id,
            self.replies,
            self.keys.streamed(job.id),
            streamed_ttl=ttl,
        )

    async def handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            job = decode_job(fields[b"job"])
        except (KeyError, ValueError):
            log.error("dropping malformed job entry %s", entry_id)
            await self.acknowledge(entry_id)
            return
        trace_id_var.set(job.trace)
        traceparent_var.set(job.traceparent)
        user_id_var.set(job.user_id)
        publisher = self.publisher(job)
        try:
            event = await self.runner.run(job, publisher)
            if (
                isinstance(job, ChatJob)
                and isinstance(event, ErrorEvent)
                and should_fall_back(job, event, publisher.started)
                and await forward(self.redis, self.keys, job, self.stream, entry_id, self.maxlen)
            ):
                return
            await publisher.finish(event, partial(self.queue_ack, entry_id))
        except RedisError:
            log.warning("could not publish the reply; the job stays pending", exc_info=True)
