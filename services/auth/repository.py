"""Base of the auth service's repositories: a pool whose outage becomes ServiceUnavailable."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

ACQUIRE_TIMEOUT_SECONDS = 5.0

# Errors meaning "the database is not there right now", as opposed to a bug in our SQL.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # shutdown, cannot connect now, statement timeout
    asyncpg.ObjectNotInPrerequisiteStateError,  # database not accepting connections
)


class Repository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
                yield conn
        except _UNAVAILABLE as exc:
            log.warning("database unavailable: %s", type(exc).__name__)
            raise ServiceUnavailable("Database unavailable, try again later") from exc
