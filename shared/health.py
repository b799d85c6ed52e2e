"""Worker liveness: each worker process keeps its name in `heartbeat(provider)` (a sorted set,
consumer name -> last beat in ms since the epoch), so anyone can count a pool's live workers.

Scores are wall-clock times of the writing hosts: keep clocks in sync (NTP) and count with a
`within_seconds` of a few heartbeat intervals.
"""

import time

from redis.asyncio import Redis

from shared.redis_keys import RedisKeys


async def beat(
    redis: Redis, keys: RedisKeys, provider: str, consumer: str, interval: float
) -> None:
    """Marks `consumer` alive now; entries silent for 10 intervals are dropped."""
    key = keys.heartbeat(provider)
    now_ms = int(time.time() * 1000)
    stale_ms = int(10 * interval * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(key, {consumer: now_ms})
        pipe.zremrangebyscore(key, "-inf", now_ms - stale_ms)
        pipe.pexpire(key, stale_ms)
        await pipe.execute()


async def leave(redis: Redis, keys: RedisKeys, provider: str, consumer: str) -> None:
    await redis.zrem(keys.heartbeat(provider), consumer)


async def live_workers(redis: Redis, keys: RedisKeys, provider: str, within_seconds: float) -> int:
    """Workers of `provider` that beat within the last `within_seconds`."""
    since_ms = int((time.time() - within_seconds) * 1000)
    count: int = await redis.zcount(keys.heartbeat(provider), since_ms, "+inf")
    return count
