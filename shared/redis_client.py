"""The Redis client every service uses: pooled, quick to give up, quick to recover.

Short socket timeouts make a lost Redis a fast 503 rather than a hang; retrying a command
once on a connection error makes a restarted Redis usable on the next request (the pool's
old connections are dead, and the retry opens a fresh one). When every pooled connection is
busy a command waits for one (bounded) instead of failing: a burst must queue, not 503.
"""

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_POOL_WAIT = 5.0


def connect(url: str, *, max_connections: int = 64) -> Redis:
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
