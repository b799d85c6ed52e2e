"""Liveness and readiness of the edge (Redis and PostgreSQL as `readiness.py` checks them)."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.edge.deps import AdmittedCallerDep, ComponentsDep
from shared.health import live_workers
from shared.providers import PROVIDERS

router = APIRouter()


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(edge: ComponentsDep) -> JSONResponse:
    """Ready when Redis answers: every request needs it. PostgreSQL is reported, not required:
    the edge serves already-authenticated traffic while the database is down."""
    redis_up, database_up = await edge.readiness.check()
    body = {
        "status": "ready" if redis_up else "not_ready",
        "redis": "connected" if redis_up else "disconnected",
        "database": "connected" if database_up else "disconnected",
    }
    return JSONResponse(body, status_code=200 if redis_up else 503)


@router.get("/api/v1/health", tags=["health"])
async def detailed(_caller: AdmittedCallerDep, edge: ComponentsDep) -> dict[str, object]:
    """Each provider's status (from its circuit breaker and its workers' heartbeats), the
    database and Redis."""
    within = 3 * edge.settings.heartbeat_interval.seconds
    providers = list(PROVIDERS)
    breakers, workers = await asyncio.gather(
        asyncio.gather(*(edge.breaker.status(p) for p in providers), return_exceptions=True),
        asyncio.gather(
            *(live_workers(edge.redis, edge.keys, p, within) for p in providers),
            return_exceptions=True,
        ),
    )
    _, database_up = await edge.readiness.check()
    statuses = {}
    for provider, circuit, alive in zip(providers, breakers, workers, strict=True):
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
