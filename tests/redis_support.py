"""The Redis client tests use, in the mode the run's Redis is in (`--redis-cluster`)."""

from redis.asyncio import Redis

from shared.redis_client import connect, warm_up

CLUSTER = False  # set from `--redis-cluster` when the run starts (tests/conftest.py)


async def client(url: str) -> Redis:
    redis = connect(url, cluster=CLUSTER)
    await warm_up(redis)
    return redis
