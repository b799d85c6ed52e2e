"""The Redis client every service uses: pooled, quick to give up, quick to recover.

Short socket timeouts make a lost Redis a fast 503 rather than a hang; retrying a command
once on a connection error makes a restarted Redis usable on the next request (the pool's
old connections are dead, and the retry opens a fresh one). When every pooled connection is
busy a command waits for one (bounded) instead of failing: a burst must queue, not 503.

With `REDIS_CLUSTER=true` the URL names any node of a Redis Cluster and the client is redis-py's
cluster client, which learns the slots from that node, sends each command to its slot's master
and follows the cluster through a failover (it retries for a few seconds while a replica is
promoted). The fleet's names are hash-tagged (`shared/redis_keys.py`) so that every script and
transaction stays in one slot; what differs in cluster mode is asked of `is_cluster`.
"""

import time
from contextlib import suppress
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

_POOL_WAIT = 5.0
# A master's failover takes the cluster's node timeout and an election: about 3 s with a node
# timeout of 2 s. The cluster client retries that long, then the request gets its 503.
_FAILOVER_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=8)


def connect(url: str, *, cluster: bool = False, max_connections: int = 64) -> Redis:
    if cluster:
        return _connect_cluster(url, max_connections)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=_POOL_WAIT,
        socket_timeout=5,
        socket_connect_timeout=2,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


def _connect_cluster(url: str, max_connections: int) -> Redis:
    client = RedisCluster.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=5,
        socket_connect_timeout=2,
        retry=_FAILOVER_RETRY,
    )
    # The cluster client speaks every command the fleet sends with the same signatures; the
    # services are typed against the single-server client, and ask `is_cluster` where the
    # two differ (sharded pub/sub, transactions across slots).
    return cast(Redis, client)


def redis_ms(reply: object) -> int:
    """Redis `TIME` (seconds, microseconds) in milliseconds; 0 if the reply is an error."""
    if isinstance(reply, tuple | list) and len(reply) == 2:
        return int(reply[0]) * 1000 + int(reply[1]) // 1000
    return 0


def queue_clock(pipe: Pipeline) -> None:
    """Queues Redis `TIME` last on `pipe`, the clock the breaker times its cooldown with. A
    cluster's pipeline cannot carry it: there `clock_ms` reads this host's clock instead."""
    if not isinstance(pipe, ClusterPipeline):
        pipe.time()


def clock_ms(pipe: Pipeline, answers: list[Any]) -> int:
    """The time `queue_clock` asked for, taken off the end of `answers`."""
    if isinstance(pipe, ClusterPipeline):
        return int(time.time() * 1000)
    return redis_ms(answers.pop())


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


def writes(redis: Redis) -> Pipeline:
    """A pipeline for writes that go together: one MULTI on a single server; in a cluster,
    where they may span slots, sent together without one (each still runs)."""
    return redis.pipeline(transaction=not is_cluster(redis))


async def publish(redis: Redis, channel: str, message: bytes) -> int:
    """PUBLISH, or in a cluster SPUBLISH: a sharded channel is served by its slot's node
    alone instead of being broadcast to every node. The number of receivers."""
    if is_cluster(redis):
        return int(await redis.spublish(channel, message))
    return int(await redis.publish(channel, message))


def queue_publish(pipe: Pipeline, channel: str, message: bytes) -> None:
    """`publish` queued on a pipeline."""
    if isinstance(pipe, ClusterPipeline):
        pipe.spublish(channel, message)
    else:
        pipe.publish(channel, message)


async def get_many(redis: Redis, names: list[str]) -> list[Any]:
    """MGET; in a cluster, where the names may be in several slots, one MGET per slot."""
    if is_cluster(redis):
        return await cast(RedisCluster, redis).mget_nonatomic(names)
    return await redis.mget(names)


async def warm_up(redis: Redis) -> None:
    """In a cluster, learns the slots before the first commands: redis-py's cluster client
    fails commands that race into its first discovery of the cluster. A cluster not reachable
    yet is learnt on first use instead."""
    if is_cluster(redis):
        with suppress(RedisError, OSError):
            await cast(RedisCluster, redis).initialize()
