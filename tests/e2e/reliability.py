"""Private worker pools for the reliability tests: real worker processes on their own Redis key
prefix (so their breakers, streams and dead letters never touch the shared fleet), calling the
shared fleet's simulator, fed by the test as the edge would feed them."""

import asyncio
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from services.fleet.plan import FleetConfig, fleet_env
from services.fleet.processes import Service
from shared.messages import ChatJob, DeltaEvent, Event, decode_event, encode, unframe
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest
from tests import redis_support

MODELS = {"deepseek": "deepseek-chat", "anthropic": "claude-3-5-sonnet-20241022", "xai": "grok-3"}


def trace_id() -> str:
    return f"req_test_{secrets.token_hex(6)}"


def chat_job(provider: str, text: str, *, deadline: float = 60, **extra: Any) -> ChatJob:
    now = time.time()
    request = ChatRequest(
        provider=provider,
        model=MODELS[provider],
        messages=[{"role": "user", "content": text}],
        **extra,
    )
    job_id = f"job_test_{secrets.token_hex(6)}"
    return ChatJob(
        id=job_id,
        reply_to=RedisKeys("gw-test").replies(job_id),
        trace=trace_id(),
        ts=now,
        deadline=now + deadline,
        user_id="usr_test",
        request=request,
    )


@dataclass
class Reply:
    """A job's reply channel, subscribed before the job was enqueued (as the edge does)."""

    pubsub: PubSub
    redis: Redis
    cancel_key: str  # what the edge sets when the client leaves
    events: list[Event] = field(default_factory=list)

    async def next(self, within: float = 30) -> Event:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            message = await redis_support.message(self.pubsub, 0.5)
            if message is not None:
                event = decode_event(unframe(message["data"])[1])
                self.events.append(event)
                return event
        raise AssertionError(f"no event within {within} s; got {self.events}")

    async def terminal(self, within: float = 30) -> Event:
        while True:
            event = await self.next(within)
            if not isinstance(event, DeltaEvent):
                return event

    async def leave(self) -> None:
        """The client leaves: the edge marks the job cancelled and stops listening."""
        await self.redis.set(self.cancel_key, b"1", ex=60)
        await self.pubsub.unsubscribe()
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]


@dataclass
class Pool:
    fleet: FleetConfig
    redis: Redis
    keys: RedisKeys
    services: list[Service] = field(default_factory=list)

    def start(self, provider: str, **env: str) -> Service:
        overrides = {
            "REDIS_PREFIX": self.keys.prefix,
            "HEARTBEAT_INTERVAL": "200ms",
            # The shared fleet's overrides (tests/conftest.py) put back to the defaults.
            "RETRY_BASE_DELAY": "50ms",
            "RETRY_MAX_DELAY": "8s",
            "BREAKER_MIN_REQUESTS": "10",
            **env,
        }
        name = f"worker-{provider}-{secrets.token_hex(3)}"
        log = self.fleet.log_dir / f"{name}.log" if self.fleet.log_dir else None
        service = Service(
            name,
            ["-m", "services.workers", "--provider", provider],
            {**fleet_env(self.fleet), **overrides},
            log_path=log,
        )
        service.start()
        self.services.append(service)
        return service

    async def ready(self, provider: str, service: Service, within: float = 30) -> None:
        """Waits for the worker's first heartbeat: it is then consuming."""
        assert service.process is not None
        name = f"{socket.gethostname()}-{service.process.pid}"
        deadline = time.monotonic() + within
        while await self.redis.zscore(self.keys.heartbeat(provider), name) is None:
            assert service.process.poll() is None, f"{service.name} exited"
            assert time.monotonic() < deadline, f"{service.name} never beat"
            await asyncio.sleep(0.1)

    async def worker(self, provider: str, **env: str) -> Service:
        service = self.start(provider, **env)
        await self.ready(provider, service)
        return service

    async def send(self, job: ChatJob, provider: str | None = None) -> Reply:
        pubsub = await redis_support.subscribe(self.redis, job.reply_to)
        stream = self.keys.jobs(provider or job.request.provider)
        await self.redis.xadd(stream, {"job": encode(job)})
        return Reply(pubsub, self.redis, self.keys.cancelled(job.id))

    async def queued(self, provider: str) -> int:
        count: int = await self.redis.xlen(self.keys.jobs(provider))
        return count

    async def drained(self, *providers: str) -> None:
        """Waits for the providers' streams to empty: every job ended and was acknowledged
        (a worker acknowledges just after publishing the terminal event)."""
        deadline = time.monotonic() + 10
        for provider in providers:
            while await self.queued(provider):
                assert time.monotonic() < deadline, f"jobs left on {provider}'s stream"
                await asyncio.sleep(0.05)

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()


def kill(service: Service) -> None:
    assert service.process is not None
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait()


async def upstream_calls(simulator: httpx.AsyncClient, trace: str) -> list[dict[str, Any]]:
    response = await simulator.get("/_sim/requests", params={"trace_id": trace})
    return [r for r in response.json()["requests"] if r["method"] == "POST"]


async def wait_for_upstream(simulator: httpx.AsyncClient, trace: str, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while len(await upstream_calls(simulator, trace)) < count:
        assert time.monotonic() < deadline, f"the simulator never saw {trace}"
        await asyncio.sleep(0.05)


async def pool_for(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    redis = await redis_support.client(redis_url)
    pool = Pool(fleet, redis, RedisKeys(f"gw-rel-{secrets.token_hex(4)}"))
    try:
        yield pool
    finally:
        pool.stop_all()
        await redis.aclose()
