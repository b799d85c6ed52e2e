"""A provider's worker pool: reads its job stream in the `workers` group and runs jobs
(`jobs.run_job` dispatches them on their kind).

Jobs run concurrently (bounded by `WORKER_CONCURRENCY`). Each job ends with exactly one
terminal event on its reply channel, and the stream entry is acknowledged only after that
event was published.
"""

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.workers.credentials import KeyClient
from services.workers.jobs import run_job
from services.workers.providers.base import ProviderAdapter
from services.workers.publisher import ReplyPublisher
from shared.logs import trace_id_var, user_id_var
from shared.messages import decode_job
from shared.redis_keys import WORKER_GROUP, RedisKeys

log = logging.getLogger(__name__)

_BLOCK_MS = 1000


class JobConsumer:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        adapter: ProviderAdapter,
        key_client: KeyClient,
        *,
        consumer_name: str,
        concurrency: int,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.adapter = adapter
        self.key_client = key_client
        self.stream = keys.jobs(adapter.provider.id)
        self.consumer_name = consumer_name
        self.concurrency = concurrency
        self.running: set[asyncio.Task[None]] = set()

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, WORKER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        while not stop.is_set():
            free = self.concurrency - len(self.running)
            if free <= 0:
                await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                batches: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]
                batches = await self.redis.xreadgroup(  # type: ignore[assignment]
                    WORKER_GROUP,
                    self.consumer_name,
                    {self.stream: ">"},
                    count=free,
                    block=_BLOCK_MS,
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self.ensure_group()
                continue
            except RedisError:
                log.warning("redis unavailable; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for _stream, entries in batches or []:
                for entry_id, fields in entries:
                    task = asyncio.create_task(self.handle(entry_id, fields))
                    self.running.add(task)
                    task.add_done_callback(self.running.discard)
        if self.running:
            await asyncio.wait(self.running)

    async def handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            job = decode_job(fields[b"job"])
        except (KeyError, ValueError):
            log.error("dropping malformed job entry %s", entry_id)
            await self.redis.xack(self.stream, WORKER_GROUP, entry_id)
            return
        trace_id_var.set(job.trace)
        user_id_var.set(job.user_id)
        publisher = ReplyPublisher(self.redis, self.keys.reply(job.id))
        try:
            await publisher.finish(await run_job(self.adapter, job, publisher, self.key_client))
        except RedisError:
            log.warning("could not publish the reply; the job stays pending", exc_info=True)
            return
        await self.redis.xack(self.stream, WORKER_GROUP, entry_id)
