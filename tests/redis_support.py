"""The Redis client tests use, in the mode the run's Redis is in (`--redis-cluster`)."""

from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub

from shared.redis_client import connect, warm_up

CLUSTER = False  # set from `--redis-cluster` when the run starts (tests/conftest.py)


async def client(url: str) -> Redis:
    redis = connect(url, cluster=CLUSTER)
    await warm_up(redis)
    return redis


async def subscribe(redis: Redis, channel: str) -> PubSub:
    """A subscription to a reply channel as the edge makes it (sharded in a cluster)."""
    pubsub = redis.pubsub()
    if CLUSTER:
        await cast(ClusterPubSub, pubsub).ssubscribe(channel)
    else:
        await pubsub.subscribe(channel)
    return pubsub


async def message(pubsub: PubSub, wait: float) -> dict[str, Any] | None:
    """The next published message, subscription confirmations skipped."""
    if CLUSTER:
        sharded = cast(ClusterPubSub, pubsub)
        return await sharded.get_sharded_message(ignore_subscribe_messages=True, timeout=wait)
    return await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
