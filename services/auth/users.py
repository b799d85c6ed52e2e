"""The users table through asyncpg; a database that cannot be reached becomes ServiceUnavailable."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from shared.errors import ConflictError, ServiceUnavailable
from shared.ids import new_id

log = logging.getLogger(__name__)

ACQUIRE_TIMEOUT_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 2.0

# Errors meaning "the database is not there right now", as opposed to a bug in our SQL.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # shutdown, cannot connect now, statement timeout
    asyncpg.ObjectNotInPrerequisiteStateError,  # database not accepting connections
)

_COLUMNS = "id, email, name, password_hash, tier, role"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    tier: str
    role: str
    password_hash: str = field(repr=False)


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        tier=row["tier"],
        role=row["role"],
        password_hash=row["password_hash"],
    )


class UserRepository:
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

    async def create(self, email: str, name: str, password_hash: str) -> User:
        async with self._connection() as conn:
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)"
                    f" RETURNING {_COLUMNS}",
                    new_id("usr"),
                    email.lower(),
                    name,
                    password_hash,
                )
            except asyncpg.UniqueViolationError as exc:
                raise ConflictError("Email already registered") from exc
        return _user(row)

    async def by_email(self, email: str) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM users WHERE email = $1", email.lower()
            )
        return _user(row) if row else None

    async def by_id(self, user_id: str) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
