"""The Redis client every service uses: pooled, quick to give up, quick to recover.

Short socket timeouts make a lost Redis a fast 503 rather than a hang; retrying a command
once on a connection error makes a restarted Redis usable on the next request (the pool's
old connections are dead, and the retry opens a fresh one).
"""

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(url: str, *, max_connections: int = 64) -> Redis:
    return Redis.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=5,
        socket_connect_timeout=2,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
