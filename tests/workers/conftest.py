"""A provider's worker pool in this process, against real Redis and the provider simulator.

Each test gets its own Redis key prefix and builds the pool the way `python -m services.workers`
does (`services.workers.__main__.job_consumer`), with the settings it needs. Replies are read
from the job's pub/sub channel as the edge reads them.
"""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from services.workers.__main__ import job_consumer
from services.workers.consumer import JobConsumer
from services.workers.upstream_http import upstream_client
from shared.messages import ChatJob, Event, decode_event, unframe
from shared.metrics import WorkerMetrics, new_registry
from shared.redis_keys import WORKER_GROUP, RedisKeys
from shared.schemas import ChatRequest
from shared.settings import Settings
from tests.simulator.conftest import sim_url  # noqa: F401 (the simulator process, per session)

PROVIDER = "deepseek"
WAIT_SECONDS = 15.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls `check` until it holds (bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {WAIT_SECONDS} s: {what}")
        await asyncio.sleep(0.01)


class Replies:
    """A job's reply channel, subscribed before the job is queued (as the edge does)."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub

    async def next(self) -> Event:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None and message["type"] == "message":
                return decode_event(unframe(message["data"])[1])
        raise AssertionError(f"no reply within {WAIT_SECONDS} s")

    async def until_last(self) -> list[Event]:
        """Every event up to and including the terminal one."""
        events = [await self.next()]
        while events[-1].kind == "delta":
            events.append(await self.next())
        return events


@dataclass
class Pool:
    redis: Redis
    keys: RedisKeys
    consumer: JobConsumer
    sim_url: str

    @property
    def stream(self) -> str:
        return self.keys.jobs(PROVIDER)

    def job(self, text: str, *, stream: bool = False, expires_in: float = 30.0) -> ChatJob:
        request = ChatRequest(
            provider=PROVIDER,
            model="deepseek-chat",
            messages=[{"role": "user", "content": text}],  # type: ignore[list-item]
            stream=stream,
        )
        now = time.time()
        job_id = f"job_{secrets.token_hex(8)}"
        return ChatJob(
            id=job_id,
            reply_to=self.keys.replies(job_id),
            trace=f"req_test_{secrets.token_hex(6)}",
            ts=now,
            deadline=now + expires_in,
            user_id="u1",
            request=request,
        )

    async def enqueue(self, job: ChatJob) -> bytes:
        entry_id: bytes = await self.redis.xadd(self.stream, {"job": job.model_dump_json()})
        return entry_id

    @asynccontextmanager
    async def replies(self, job: ChatJob) -> AsyncIterator[Replies]:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(job.reply_to)
        try:
            yield Replies(pubsub)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @asynccontextmanager
    async def running(self, grace: float = 5.0) -> AsyncIterator[asyncio.Event]:
        """The consumer reading its stream until the block ends (or the yielded event is set)."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.consumer.run(stop, grace))
        try:
            yield stop
        finally:
            stop.set()
            await asyncio.wait_for(task, grace + WAIT_SECONDS)

    async def pending(self) -> int:
        summary = await self.redis.xpending(self.stream, WORKER_GROUP)
        return int(summary["pending"])

    async def upstream_calls(self, job: ChatJob) -> int:
        async with httpx.AsyncClient(base_url=self.sim_url) as client:
            response = await client.get("/_sim/requests", params={"trace_id": job.trace})
        return sum(1 for r in response.json()["requests"] if r["method"] == "POST")


PoolFactory = Callable[..., Awaitable[Pool]]


@pytest.fixture
async def make_pool(redis_url: str, sim_url: str) -> AsyncIterator[PoolFactory]:  # noqa: F811
    """Builds a pool with `settings` (environment names) over the test's own."""
    prefix = f"gw-workers-{secrets.token_hex(4)}"
    redis = Redis.from_url(redis_url, client_name=prefix)  # its connections, by name
    client = upstream_client(connect=5.0, read=30.0, limit=16)

    async def make(**settings: str) -> Pool:
        values = {
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": prefix,
            "DEEPSEEK_API_KEY": "sk-test",
            "DEEPSEEK_BASE_URL": f"{sim_url}/deepseek",
            "KEYVAULT_SERVICE_TOKEN": "not-used-here",
            **settings,
        }
        config = Settings(_env_file=None, **values)  # type: ignore[arg-type]
        consumer = job_consumer(
            config,
            redis,
            client,
            PROVIDER,
            consumer_name=f"worker-{secrets.token_hex(3)}",
            metrics=WorkerMetrics(new_registry()),
        )
        await consumer.ensure_group()
        return Pool(redis, RedisKeys(prefix), consumer, sim_url)

    try:
        yield make
    finally:
        await client.aclose()
        await redis.aclose()


@pytest.fixture
async def pool(make_pool: PoolFactory) -> Pool:
    return await make_pool()
