"""The edge's view of Redis and PostgreSQL, for `/health/ready` and `/api/v1/health`.

`/health/ready` is public (the ingress serves it), so it must be cheap to call: both are
checked at most once per `READY_CACHE_SECONDS`, whoever asks, and PostgreSQL on the edge's own
pool of one connection (opened on first use), so a flood of probes opens no database sessions.
"""

import asyncio
import time

import asyncpg
from redis.asyncio import Redis

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

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
