"""Spend budgets in the admission script: exact across replicas, settled, alerted once."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from services.edge.admission import Admission, BudgetExceeded, Limits, Reservation, Scope
from shared.budgets import window
from shared.redis_keys import RedisKeys
from tests import redis_support

OPEN = Limits(requests=10_000, window_seconds=3600)
CENT = 1_000_000  # 1e-8 USD units in a cent


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[Admission, Admission, RedisKeys]]:
    """Two admission controllers on separate connection pools, as two edge replicas have."""
    keys = RedisKeys(f"gw-spend-{secrets.token_hex(4)}")
    first, second = await redis_support.client(redis_url), await redis_support.client(redis_url)
    try:
        yield Admission(first, keys, (0.5, 1.0)), Admission(second, keys, (0.5, 1.0)), keys
    finally:
        async for name in first.scan_iter(f"{keys.prefix}:*"):
            await first.delete(name)
        await first.aclose()
        await second.aclose()


def now_ms() -> int:
    return int(time.time() * 1000)


async def budget(
    redis: Redis, keys: RedisKeys, scope: str, owner: str, units: int, period: str, user: str = ""
):  # type: ignore[no-untyped-def]
    await redis.hset(
        keys.limits(scope, owner, user), mapping={"budget_units": units, "budget_period": period}
    )


async def spend_of(
    redis: Redis, keys: RedisKeys, scope: str, owner: str, period: str, user: str = ""
):  # type: ignore[no-untyped-def]
    stamp = window(period, datetime.now(UTC)).stamp
    name = keys.spend(scope, owner, stamp, user)
    spent, reserved = await redis.hmget(name, ["spent", "reserved"])
    return int(spent or 0), int(reserved or 0)


async def test_a_budget_admits_exactly_what_fits_across_two_replicas(replicas) -> None:
    one, two, keys = replicas
    await budget(one.redis, keys, "key", "k1", 5 * CENT, "day", "u1")

    async def attempt(admission: Admission) -> Reservation | None:
        try:
            ((_, held),) = await admission.admit_all(
                [Scope("key", "k1", OPEN, cost_units=CENT + 1, user_id="u1")], now_ms=now_ms()
            )
        except BudgetExceeded:
            return None
        return held

    held = await asyncio.gather(*(attempt(one if i % 2 else two) for i in range(12)))
    admitted = [h for h in held if h is not None]
    assert len(admitted) == 4  # 4 * (1 cent + 1e-8) fits in 5 cents, a fifth does not
    assert await spend_of(one.redis, keys, "key", "k1", "day", "u1") == (0, 4 * (CENT + 1))
    # Settled for less than reserved (and a refund of one), the room comes back.
    for reservation, cost in zip(admitted, (CENT // 2, CENT // 2, CENT // 2, 0), strict=True):
        await one.settle(reservation, 0, now_ms(), cost)
    assert await spend_of(one.redis, keys, "key", "k1", "day", "u1") == (3 * CENT // 2, 0)
    with pytest.raises(BudgetExceeded) as refused:
        await one.admit_all(
            [Scope("key", "k1", OPEN, cost_units=4 * CENT, user_id="u1")], now_ms=now_ms()
        )
    assert refused.value.status == 402
    details = refused.value.details
    assert details["code"] == "budget_exceeded"
    assert (details["scope"], details["budget_usd"], details["spent_usd"]) == ("key", 0.05, 0.015)
    assert details["reserved_usd"] == 0
    assert details["resets_at"] == window("day", datetime.now(UTC)).ends.isoformat().replace(
        "+00:00", "Z"
    )
    assert 0 < refused.value.retry_after <= 86_400


async def test_a_refusal_by_one_scope_holds_nothing_in_the_other(replicas) -> None:
    one, _, keys = replicas
    await budget(one.redis, keys, "user", "u2", 10 * CENT, "month")
    await budget(one.redis, keys, "key", "k2", CENT, "none", "u2")
    scopes = [
        Scope("user", "u2", OPEN, cost_units=2 * CENT),
        Scope("key", "k2", OPEN, cost_units=2 * CENT, user_id="u2"),
    ]
    with pytest.raises(BudgetExceeded) as refused:
        await one.admit_all(scopes, now_ms=now_ms())
    assert refused.value.details["scope"] == "key"
    assert refused.value.retry_after is None  # a budget without a period never resets
    assert await spend_of(one.redis, keys, "user", "u2", "month") == (0, 0)


async def test_an_unpriced_model_is_refused_only_under_a_budget(replicas) -> None:
    one, _, keys = replicas
    ((_, held),) = await one.admit_all(
        [Scope("user", "u3", OPEN, cost_units=None)], now_ms=now_ms()
    )
    assert held is None
    await budget(one.redis, keys, "user", "u3", CENT, "week")
    with pytest.raises(BudgetExceeded) as refused:
        await one.admit_all([Scope("user", "u3", OPEN, cost_units=None)], now_ms=now_ms())
    assert refused.value.details["code"] == "unpriced_model"
    # What costs nothing still gets in, and tells of the budget.
    ((decision, held),) = await one.admit_all([Scope("user", "u3", OPEN)], now_ms=now_ms())
    assert held is None and decision.budget is not None
    assert (decision.budget.budget, decision.budget.period) == (CENT, "week")


async def test_each_threshold_alerts_once_per_period(replicas) -> None:
    one, _, keys = replicas
    await budget(one.redis, keys, "user", "u4", 10 * CENT, "day")

    async def spend(units: int):  # type: ignore[no-untyped-def]
        ((_, held),) = await one.admit_all(
            [Scope("user", "u4", OPEN, cost_units=units)], now_ms=now_ms()
        )
        assert held is not None
        return await one.settle(held, 0, now_ms(), units)

    assert (await spend(4 * CENT)).crossed == ()
    settled = await spend(CENT)  # 50 % reached
    assert (settled.crossed, settled.spent, settled.reserved) == ((1,), 5 * CENT, 0)
    assert (await spend(CENT)).crossed == ()
    assert (await spend(4 * CENT)).crossed == (2,)  # 100 %
    key = keys.spend("user", "u4", window("day", datetime.now(UTC)).stamp)
    ttl_ms = await one.redis.pttl(key)
    ends = window("day", datetime.now(UTC)).ends
    assert ends is not None
    until_gone = (ends.timestamp() + 86_400) * 1000 - now_ms()
    assert 0 < ttl_ms <= until_gone + 1000  # the period's hash goes by itself, a day after it
