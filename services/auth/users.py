"""The users table through asyncpg: accounts, roles, tiers, custom limits and budgets."""

from dataclasses import dataclass, field

import asyncpg

from services.auth.limits import Limits
from services.auth.repository import Repository
from shared.budgets import BudgetBody
from shared.errors import ConflictError
from shared.ids import new_id

PING_TIMEOUT_SECONDS = 2.0

_COLUMNS = (
    "id, email, name, password_hash, tier, role,"
    " limit_requests, limit_window, limit_tokens_per_minute, budget_usd, budget_period"
)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    tier: str
    role: str
    password_hash: str = field(repr=False)
    limits: Limits = field(default_factory=Limits)
    budget: BudgetBody | None = None


def budget_of(row: asyncpg.Record) -> BudgetBody | None:
    if row["budget_usd"] is None:
        return None
    return BudgetBody(amount_usd=row["budget_usd"], period=row["budget_period"])


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        tier=row["tier"],
        role=row["role"],
        password_hash=row["password_hash"],
        limits=Limits(
            requests=row["limit_requests"],
            window=row["limit_window"],
            tokens_per_minute=row["limit_tokens_per_minute"],
        ),
        budget=budget_of(row),
    )


class UserRepository(Repository):
    async def create(self, email: str, name: str, password_hash: str, role: str = "user") -> User:
        async with self._connection() as conn:
            try:
                row = await conn.fetchrow(
                    "INSERT INTO users (id, email, name, password_hash, role)"
                    f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
                    new_id("usr"),
                    email.lower(),
                    name,
                    password_hash,
                    role,
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

    async def set_role_by_email(self, email: str, role: str) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"UPDATE users SET role = $2 WHERE email = $1 RETURNING {_COLUMNS}",
                email.lower(),
                role,
            )
        return _user(row) if row else None

    async def set_tier(self, user_id: str, tier: str) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"UPDATE users SET tier = $2 WHERE id = $1 RETURNING {_COLUMNS}", user_id, tier
            )
        return _user(row) if row else None

    async def set_limits(self, user_id: str, limits: Limits) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "UPDATE users SET limit_requests = $2, limit_window = $3,"
                f" limit_tokens_per_minute = $4 WHERE id = $1 RETURNING {_COLUMNS}",
                user_id,
                limits.requests,
                limits.window,
                limits.tokens_per_minute,
            )
        return _user(row) if row else None

    async def set_budget(self, user_id: str, budget: BudgetBody | None) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "UPDATE users SET budget_usd = $2, budget_period = $3"
                f" WHERE id = $1 RETURNING {_COLUMNS}",
                user_id,
                budget.amount_usd if budget else None,
                budget.period if budget else None,
            )
        return _user(row) if row else None

    async def find(self, text: str, limit: int) -> list[User]:
        """Users whose id is `text` or whose email or name contains it (any case), by email."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM users WHERE id = $1"
                " OR strpos(email, lower($1)) > 0 OR strpos(lower(name), lower($1)) > 0"
                " ORDER BY email LIMIT $2",
                text,
                limit,
            )
        return [_user(row) for row in rows]

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
