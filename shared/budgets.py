"""Spend budgets of users and gateway API keys: their shape, their periods and where their
spend lives in Redis.

A budget is an amount in USD and a calendar period in UTC (`day` from 00:00, `week` from
Monday, `month` from the 1st, or `none`). The auth service owns budgets (PostgreSQL) and
publishes each one into its owner's limits hash (`RedisKeys.limits`, fields `budget_units` and
`budget_period`), where the edge's admission script reads it. A budget's spend is counted in
one hash per period (`RedisKeys.spend`, stamped with the period's start: `spent` and
`reserved`, in units of 1e-8 USD); the hash expires a day after its period ends, so budgets
reset without any job running, and a new period simply starts from a new, empty hash.
"""

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from shared.cost import UNITS_PER_USD, from_units
from shared.redis_keys import RedisKeys

Period = Literal["day", "week", "month", "none"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "none")
# A spend hash outlives its period by this much, so a request admitted just before the end
# settles into the period it was admitted in.
SPEND_GRACE = timedelta(days=1)
BUDGET_FIELDS = ("budget_units", "budget_period")
MAX_BUDGET_USD = Decimal(1_000_000)


class BudgetBody(BaseModel):
    """`{"amount_usd": 5.0, "period": "month"}` as callers send it."""

    model_config = ConfigDict(extra="forbid")

    amount_usd: Annotated[Decimal, Field(gt=0, le=MAX_BUDGET_USD, decimal_places=8)]
    period: Period

    @property
    def units(self) -> int:
        return int(self.amount_usd * UNITS_PER_USD)


@dataclass(frozen=True)
class Window:
    """One period of a budget: its Redis stamp, and when it ends (None: never)."""

    stamp: str
    ends: datetime | None

    @property
    def expiry_ms(self) -> int:
        """When its spend hash may go (0: never)."""
        return 0 if self.ends is None else int((self.ends + SPEND_GRACE).timestamp() * 1000)

    def retry_after(self, now: datetime) -> float | None:
        return None if self.ends is None else max(1.0, (self.ends - now).total_seconds())


def window(period: str, now: datetime) -> Window:
    return _window(period, now.astimezone(UTC).date())


@functools.lru_cache(maxsize=64)  # every admission asks for each period's window of today
def _window(period: str, day: date) -> Window:
    if period == "day":
        return Window(f"d{day.isoformat()}", _midnight(day + timedelta(days=1)))
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return Window(f"w{monday.isoformat()}", _midnight(monday + timedelta(days=7)))
    if period == "month":
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return Window(f"m{day.year:04d}-{day.month:02d}", _midnight(following))
    return Window("all", None)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def spend_keys(
    keys: RedisKeys, scope: str, owner_id: str, now: datetime, user_id: str = ""
) -> list[str]:
    """The spend hash of every period, in `PERIODS` order (the admission script picks one)."""
    return [keys.spend(scope, owner_id, window(p, now).stamp, user_id) for p in PERIODS]


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class BudgetState:
    """A budget and its current period's spend, in units of 1e-8 USD."""

    budget: int
    period: str
    spent: int
    reserved: int
    ends: datetime | None

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.spent - self.reserved)

    def view(self) -> "BudgetView":
        return BudgetView(
            amount_usd=from_units(self.budget),
            period=self.period,
            spent_usd=from_units(self.spent),
            reserved_usd=from_units(self.reserved),
            resets_at=iso(self.ends),
        )


class BudgetView(BaseModel):
    """A budget as the API shows it: its definition and its current period's spend."""

    amount_usd: float
    period: str
    spent_usd: float
    reserved_usd: float
    resets_at: str | None  # ISO 8601 UTC; null for `none`


def _int(raw: Any) -> int:
    return int(raw) if raw is not None else 0


async def with_spend(
    redis: Redis,
    keys: RedisKeys,
    budgets: list[tuple[str, str, int, str, str] | None],
    now: datetime | None = None,
) -> list[BudgetState | None]:
    """Each budget (scope, owner id, units, period, the owner's user id) with its current
    period's spend, in one round trip; None stays None."""
    now = now or datetime.now(UTC)
    spans = [window(b[3], now) if b else None for b in budgets]
    async with redis.pipeline(transaction=False) as pipe:
        for budget, span in zip(budgets, spans, strict=True):
            if budget is not None and span is not None:
                spend = keys.spend(budget[0], budget[1], span.stamp, budget[4])
                pipe.hmget(spend, ["spent", "reserved"])
        spends = iter(await pipe.execute())
    states: list[BudgetState | None] = []
    for budget, span in zip(budgets, spans, strict=True):
        if budget is None or span is None:
            states.append(None)
            continue
        spent, reserved = next(spends)
        states.append(BudgetState(budget[2], budget[3], _int(spent), _int(reserved), span.ends))
    return states


async def read_states(
    redis: Redis,
    keys: RedisKeys,
    owners: list[tuple[str, str, str]],
    now: datetime | None = None,
) -> list[BudgetState | None]:
    """The budget each (scope, owner id, the owner's user id) has as published in its limits
    hash, with its current spend; None where it has none."""
    async with redis.pipeline(transaction=False) as pipe:
        for scope, owner, user in owners:
            pipe.hmget(keys.limits(scope, owner, user), list(BUDGET_FIELDS))
        published = await pipe.execute()
    budgets: list[tuple[str, str, int, str, str] | None] = [
        (scope, owner, _int(units), (period or b"none").decode(), user) if _int(units) else None
        for (scope, owner, user), (units, period) in zip(owners, published, strict=True)
    ]
    return await with_spend(redis, keys, budgets, now)
