"""Provider-key rows in PostgreSQL (plain SQL through asyncpg). Only ciphertext is stored."""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.keyvault.crypto import Sealed

_COLUMNS = "id, user_id, provider, name, masked, key_version, nonce, ciphertext, created_at"


@dataclass(frozen=True)
class KeyRow:
    id: str
    user_id: str
    provider: str
    name: str
    masked: str
    sealed: Sealed
    created_at: datetime


def _row(record: asyncpg.Record) -> KeyRow:
    return KeyRow(
        id=record["id"],
        user_id=record["user_id"],
        provider=record["provider"],
        name=record["name"],
        masked=record["masked"],
        sealed=Sealed(record["key_version"], record["nonce"], record["ciphertext"]),
        created_at=record["created_at"],
    )


class KeyRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def insert(self, row: KeyRow, *, ttl_seconds: int | None = None) -> None:
        await self.pool.execute(
            "INSERT INTO provider_keys (id, user_id, provider, name, masked, key_version,"
            " nonce, ciphertext, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
            " CASE WHEN $9::int IS NULL THEN NULL ELSE now() + make_interval(secs => $9) END)",
            row.id,
            row.user_id,
            row.provider,
            row.name,
            row.masked,
            row.sealed.version,
            row.sealed.nonce,
            row.sealed.ciphertext,
            ttl_seconds,
        )

    async def list_for_user(self, user_id: str) -> list[KeyRow]:
        records = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM provider_keys WHERE user_id = $1 AND expires_at IS NULL"
            " ORDER BY created_at, id",
            user_id,
        )
        return [_row(r) for r in records]

    async def get(self, key_id: str, user_id: str) -> KeyRow | None:
        """The key, if it belongs to `user_id` (and is not an expired validation copy)."""
        record = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM provider_keys WHERE id = $1 AND user_id = $2"
            " AND (expires_at IS NULL OR expires_at > now())",
            key_id,
            user_id,
        )
        return _row(record) if record else None

    async def delete(self, key_id: str, user_id: str) -> KeyRow | None:
        record = await self.pool.fetchrow(
            f"DELETE FROM provider_keys WHERE id = $1 AND user_id = $2 AND expires_at IS NULL"
            f" RETURNING {_COLUMNS}",
            key_id,
            user_id,
        )
        return _row(record) if record else None

    async def newest_for(self, user_id: str, provider: str) -> KeyRow | None:
        record = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM provider_keys WHERE user_id = $1 AND provider = $2"
            " AND expires_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
            user_id,
            provider,
        )
        return _row(record) if record else None

    async def purge_expired(self) -> int:
        result: str = await self.pool.execute(
            "DELETE FROM provider_keys WHERE expires_at IS NOT NULL AND expires_at <= now()"
        )
        return int(result.split()[-1])

    async def sealed_with_older_versions(
        self, newest: int, after_id: str, limit: int
    ) -> list[KeyRow]:
        records = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM provider_keys WHERE key_version < $1 AND id > $2"
            " ORDER BY id LIMIT $3",
            newest,
            after_id,
            limit,
        )
        return [_row(r) for r in records]

    async def reseal(self, key_id: str, old: Sealed, new: Sealed) -> bool:
        """Replace the seal only if nobody changed the row meanwhile."""
        result: str = await self.pool.execute(
            "UPDATE provider_keys SET key_version = $1, nonce = $2, ciphertext = $3,"
            " rotated_at = now() WHERE id = $4 AND key_version = $5 AND nonce = $6",
            new.version,
            new.nonce,
            new.ciphertext,
            key_id,
            old.version,
            old.nonce,
        )
        return result.endswith(" 1")

    async def audit(
        self, key_id: str, user_id: str, *, actor: str, action: str, trace_id: str | None
    ) -> None:
        await self.pool.execute(
            "INSERT INTO provider_key_audit (key_id, user_id, actor, action, trace_id)"
            " VALUES ($1, $2, $3, $4, $5)",
            key_id,
            user_id,
            actor,
            action,
            trace_id,
        )
