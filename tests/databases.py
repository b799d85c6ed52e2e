"""PostgreSQL databases of a test's own."""

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.fleet.infra import create_database, drop_database
from shared.db import apply_migrations


@contextmanager
def migrated_database(
    postgres_server: str, prefix: str, service: str, migrations: Path
) -> Iterator[str]:
    """A new database named `prefix` and a random suffix, with `service`'s migrations
    applied; its DSN, and it is dropped on the way out."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    dsn = asyncio.run(create_database(postgres_server, name))
    try:
        asyncio.run(apply_migrations(dsn, service, migrations))
        yield dsn
    finally:
        asyncio.run(drop_database(postgres_server, name))
