"""PostgreSQL access through asyncpg: a pool per service and plain-SQL migrations."""

from pathlib import Path

import asyncpg

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    service    text        NOT NULL,
    version    text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)
"""


async def create_pool(dsn: str, *, max_size: int = 20, min_size: int = 1) -> asyncpg.Pool:
    """`min_size=0` connects on first use (a pool that must not fail its service's start)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, command_timeout=10
    )
    return pool


def _read_migrations(folder: Path) -> list[tuple[str, str]]:
    return [(path.stem, path.read_text()) for path in sorted(folder.glob("*.sql"))]


async def apply_migrations(dsn: str, service: str, folder: Path) -> list[str]:
    """Apply `folder/*.sql` not yet recorded for `service`, in name order, each in a transaction.

    An advisory lock makes concurrent start-ups of the same service apply each file once.
    Returns the versions applied now.
    """
    applied_now: list[str] = []
    migrations = _read_migrations(folder)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", service)
        await conn.execute(_MIGRATIONS_TABLE)
        done = {
            row["version"]
            for row in await conn.fetch(
                "SELECT version FROM schema_migrations WHERE service = $1", service
            )
        }
        for version, sql in migrations:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (service, version) VALUES ($1, $2)",
                    service,
                    version,
                )
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", service)
        await conn.close()
    return applied_now
