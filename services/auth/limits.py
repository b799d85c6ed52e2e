"""Custom and effective rate limits and budgets, and their publication to Redis for the edge.

`limits("user", id)` always holds the user's effective limits (custom values, else the tier's
defaults). `limits("key", id)` exists only for an API key with limits of its own, which apply on
top of its owner's. In both hashes every limit field is an integer and 0 means "no limit"; a
budget adds `budget_units` and `budget_period` (`shared.budgets`), absent when there is none.
"""

from dataclasses import dataclass

from redis.asyncio import Redis

from services.auth.redis_errors import redis_available
from shared.budgets import BUDGET_FIELDS, BudgetBody, BudgetState, with_spend
from shared.redis_keys import RedisKeys
from shared.settings import Settings, parse_duration


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits as an admin or a key's owner set them; None: not set."""

    requests: int | None = None
    window: str | None = None
    tokens_per_minute: int | None = None

    @property
    def empty(self) -> bool:
        return self.requests is None and self.window is None and self.tokens_per_minute is None


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    requests: int
    window_seconds: int
    tokens_per_minute: int

    def mapping(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "window_seconds": self.window_seconds,
            "tokens_per_minute": self.tokens_per_minute,
        }


def window_seconds(window: str) -> int:
    return max(1, int(parse_duration(window)))


def user_limits(settings: Settings, tier: str, custom: Limits) -> EffectiveLimits:
    if tier == "paid":
        requests, window = (
            settings.paid_rate_limit_max,
            settings.paid_rate_limit_window.whole_seconds,
        )
    else:
        requests, window = settings.rate_limit_max, settings.rate_limit_window.whole_seconds
    tpm = custom.tokens_per_minute
    return EffectiveLimits(
        requests=custom.requests if custom.requests is not None else requests,
        window_seconds=window_seconds(custom.window) if custom.window else window,
        tokens_per_minute=tpm if tpm is not None else settings.tokens_per_minute,
    )


def key_limits(settings: Settings, custom: Limits) -> EffectiveLimits | None:
    if custom.requests is None and not custom.tokens_per_minute:
        return None
    window = (
        window_seconds(custom.window) if custom.window else settings.rate_limit_window.whole_seconds
    )
    return EffectiveLimits(
        requests=custom.requests or 0,
        window_seconds=window if custom.requests else 0,
        tokens_per_minute=custom.tokens_per_minute or 0,
    )


def budget_fields(budget: BudgetBody | None) -> dict[str, int | str]:
    if budget is None:
        return {}
    return {"budget_units": budget.units, "budget_period": budget.period}


class LimitsPublisher:
    def __init__(self, redis: Redis, keys: RedisKeys, settings: Settings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings

    async def publish_user(
        self, user_id: str, tier: str, custom: Limits, budget: BudgetBody | None
    ) -> EffectiveLimits:
        effective = user_limits(self.settings, tier, custom)
        name = self.keys.limits("user", user_id)
        fields: dict[str, int | str] = {**effective.mapping(), **budget_fields(budget)}
        async with redis_available(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, mapping=fields)  # type: ignore[arg-type]
            if budget is None:
                pipe.hdel(name, *BUDGET_FIELDS)
            await pipe.execute()
        return effective

    async def publish_key(
        self, key_id: str, user_id: str, custom: Limits, budget: BudgetBody | None
    ) -> None:
        """Only the limits the key has: a field left out falls back to the edge's default
        (unlimited for keys). A 0 written for an unset request limit would read as "no
        request allowed" and lock out a key that has only a token budget."""
        name = self.keys.limits("key", key_id, user_id)
        effective = key_limits(self.settings, custom)
        fields: dict[str, int | str] = budget_fields(budget)
        if effective:
            fields |= {k: v for k, v in effective.mapping().items() if v}
        async with redis_available(), self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            if fields:
                pipe.hset(name, mapping=fields)  # type: ignore[arg-type]
            await pipe.execute()

    async def forget_key(self, key_id: str, user_id: str) -> None:
        async with redis_available():
            await self.redis.delete(self.keys.limits("key", key_id, user_id))

    async def budget_states(
        self, owners: list[tuple[str, str, BudgetBody | None, str]]
    ) -> list[BudgetState | None]:
        """Each (scope, owner id, budget, the owner's user id) with its current period's
        spend."""
        budgets: list[tuple[str, str, int, str, str] | None] = [
            (s, o, b.units, b.period, u) if b else None for s, o, b, u in owners
        ]
        async with redis_available():
            return await with_spend(self.redis, self.keys, budgets)
