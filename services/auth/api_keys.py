"""Gateway API keys: minted here, shown once, stored only as the SHA-256 (hex) of the key."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from services.auth.limits import Limits
from services.auth.repository import Repository
from services.auth.users import budget_of
from shared.budgets import BudgetBody
from shared.ids import new_id

KEY_PREFIX = "gw_"
KEY_BYTES = 32
SHOWN_PREFIX_CHARS = 12  # "gw_" and 9 random characters: enough to tell keys apart in a list

_COLUMNS = (
    "k.id, k.user_id, k.name, k.key_hash, k.prefix, k.allowed_providers, k.allowed_models,"
    " k.limit_requests, k.limit_window, k.limit_tokens_per_minute, k.expires_at, k.created_at,"
    " k.budget_usd, k.budget_period"
)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str
    allowed_providers: list[str] | None
    allowed_models: list[str] | None
    limits: Limits
    expires_at: datetime | None
    created_at: datetime
    key_hash: str = field(repr=False)
    budget: BudgetBody | None = None


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    key: ApiKey
    tier: str
    role: str


def _key(row: asyncpg.Record) -> ApiKey:
    providers, models = row["allowed_providers"], row["allowed_models"]
    return ApiKey(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        prefix=row["prefix"],
        allowed_providers=list(providers) if providers is not None else None,
        allowed_models=list(models) if models is not None else None,
        limits=Limits(
            requests=row["limit_requests"],
            window=row["limit_window"],
            tokens_per_minute=row["limit_tokens_per_minute"],
        ),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        key_hash=row["key_hash"],
        budget=budget_of(row),
    )


@dataclass(frozen=True, slots=True)
class NewKey:
    user_id: str
    name: str
    allowed_providers: list[str] | None
    allowed_models: list[str] | None
    limits: Limits
    expires_at: datetime | None
    budget: BudgetBody | None = None


class ApiKeyRepository(Repository):
    async def create(self, new: NewKey, key_hash: str, prefix: str) -> ApiKey:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "INSERT INTO api_keys AS k (id, user_id, name, key_hash, prefix,"
                " allowed_providers, allowed_models, limit_requests, limit_window,"
                " limit_tokens_per_minute, expires_at, budget_usd, budget_period)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                f" RETURNING {_COLUMNS}",
                new_id("gwk"),
                new.user_id,
                new.name,
                key_hash,
                prefix,
                new.allowed_providers,
                new.allowed_models,
                new.limits.requests,
                new.limits.window,
                new.limits.tokens_per_minute,
                new.expires_at,
                new.budget.amount_usd if new.budget else None,
                new.budget.period if new.budget else None,
            )
        return _key(row)

    async def list_for(self, user_id: str) -> list[ApiKey]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM api_keys k"
                " WHERE k.user_id = $1 AND k.revoked_at IS NULL ORDER BY k.created_at, k.id",
                user_id,
            )
        return [_key(row) for row in rows]

    async def revoke(self, user_id: str, key_id: str) -> ApiKey | None:
        """The revoked key, or None when the caller has no such live key."""
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "UPDATE api_keys AS k SET revoked_at = now()"
                " WHERE k.id = $1 AND k.user_id = $2 AND k.revoked_at IS NULL"
                f" RETURNING {_COLUMNS}",
                key_id,
                user_id,
            )
        return _key(row) if row else None

    async def resolve(self, key_hash: str) -> ResolvedKey | None:
        """The live, unexpired key with this hash and its owner's tier and role."""
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS}, u.tier, u.role FROM api_keys k"
                " JOIN users u ON u.id = k.user_id"
                " WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
                " AND (k.expires_at IS NULL OR k.expires_at > now())",
                key_hash,
            )
        if row is None or not hmac.compare_digest(row["key_hash"], key_hash):
            return None
        return ResolvedKey(key=_key(row), tier=row["tier"], role=row["role"])

    async def live_hashes(self, user_id: str) -> list[str]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT key_hash FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL",
                user_id,
            )
        return [row["key_hash"] for row in rows]
