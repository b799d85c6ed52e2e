"""Liveness and readiness of the edge."""

import asyncio
import logging
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from services.edge.auth import Principal
from services.edge.limits import principal
from shared.health import live_workers
from shared.providers import PROVIDERS

log = logging.getLogger(__name__)

router = APIRouter()

_CHECK_TIMEOUT = 2.0


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def redis_ok(redis: Redis) -> bool:
    try:
        return bool(await asyncio.wait_for(redis.ping(), _CHECK_TIMEOUT))
    except Exception:
        return False


async def database_ok(dsn: str | None) -> bool:
    if not dsn:
        return False
    try:
        conn = await asyncpg.connect(dsn, timeout=_CHECK_TIMEOUT)
    except Exception:
        return False
    try:
        return bool(await conn.fetchval("SELECT 1", timeout=_CHECK_TIMEOUT) == 1)
    finally:
        await conn.close()


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready when Redis answers: every request needs it. PostgreSQL is reported, not required:
    the edge serves already-authenticated traffic while the database is down."""
    redis_up, database_up = await asyncio.gather(
        redis_ok(request.app.state.redis), database_ok(request.app.state.settings.database_url)
    )
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
    within = 3 * state.settings.heartbeat_interval.seconds
    providers = list(PROVIDERS)
    breakers = [state.breaker.status(p) for p in providers]
    workers = [live_workers(state.redis, state.keys, p, within) for p in providers]
    results = await asyncio.gather(*breakers, *workers, return_exceptions=True)
    database_up = await database_ok(state.settings.database_url)
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
