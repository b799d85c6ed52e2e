"""Liveness and readiness of the edge.

`/health/ready` is public (the ingress serves it), so it must be cheap to call: Redis and
PostgreSQL are checked at most once per `READY_CACHE_SECONDS`, whoever asks, and PostgreSQL on
the edge's own pool of one connection (opened on first use), so a flood of probes opens no
database sessions.
"""

import asyncio
import time
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from services.edge.auth import Principal
from services.edge.limits import principal
from shared.health import live_workers
from shared.providers import PROVIDERS

router = APIRouter()

_CHECK_TIMEOUT = 2.0
READY_CACHE_SECONDS = 1.0


async def redis_ok(redis: Redis) -> bool:
    try:
        return bool(await asyncio.wait_for(redis.ping(), _CHECK_TIMEOUT))
    except Exception:
        return False


async def database_ok(pool: asyncpg.Pool | None) -> bool:
    if pool is None:
        return False
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT), pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)
    except Exception:
        return False


class Readiness:
    """(Redis up, PostgreSQL up), checked at most once per `ttl` seconds; callers arriving
    while a check runs wait for that one."""

    def __init__(self, redis: Redis, pool: asyncpg.Pool | None, ttl: float = READY_CACHE_SECONDS):
        self.redis = redis
        self.pool = pool
        self.ttl = ttl
        self._result: tuple[bool, bool] = (False, False)
        self._until = 0.0
        self._running: asyncio.Future[tuple[bool, bool]] | None = None

    async def check(self) -> tuple[bool, bool]:
        if time.monotonic() < self._until:
            return self._result
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._check())
        # Shielded: a caller that goes away must not cancel the check others wait for.
        return await asyncio.shield(self._running)

    async def _check(self) -> tuple[bool, bool]:
        results = await asyncio.gather(redis_ok(self.redis), database_ok(self.pool))
        self._result, self._until = (results[0], results[1]), time.monotonic() + self.ttl
        return self._result


def readiness_of(request: Request) -> Readiness:
    readiness: Readiness = request.app.state.readiness
    return readiness


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready when Redis answers: every request needs it. PostgreSQL is reported, not required:
    the edge serves already-authenticated traffic while the database is down."""
    redis_up, database_up = await readiness_of(request).check()
    body = {
        "status": "ready" if redis_up else "not_ready",
        "redis": "connected" if redis_up else "disconnected",
        "database": "connected" if database_up else "disconnected",
    }
    return JSONResponse(body, status_code=200 if redis_up else 503)


@router.get("/api/v1/health", tags=["health"])
async def detailed(
    request: Request, _caller: Annotated[Principal, Depends(principal)]
) -> dict[str, object]:
    """Each provider's status (from its circuit breaker and its workers' heartbeats), the
    database and Redis, as the spec shows them."""
    state = request.app.state
    within = 3 * state.settings.seconds("heartbeat_interval")
    providers = list(PROVIDERS)
    breakers = [state.breaker.status(p) for p in providers]
    workers = [live_workers(state.redis, state.keys, p, within) for p in providers]
    results = await asyncio.gather(*breakers, *workers, return_exceptions=True)
    _, database_up = await readiness_of(request).check()
    statuses = {}
    for index, provider in enumerate(providers):
        circuit, alive = results[index], results[len(providers) + index]
        if isinstance(circuit, BaseException) or isinstance(alive, BaseException) or not alive:
            statuses[provider] = "offline"
        else:
            statuses[provider] = "online" if circuit[0] == "closed" else "degraded"
    everything_fine = database_up and all(s == "online" for s in statuses.values())
    return {
        "status": "healthy" if everything_fine else "degraded",
        "providers": statuses,
        "database": "connected" if database_up else "disconnected",
        "redis": "connected",
    }
