"""Redis going away becomes ServiceUnavailable (503), as the database's outage does."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)


@asynccontextmanager
async def redis_available() -> AsyncIterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        log.warning("redis unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable("Redis unavailable, try again later") from exc
