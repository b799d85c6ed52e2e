"""Liveness and readiness of the edge."""

import asyncio
import logging

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

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
