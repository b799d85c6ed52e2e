"""Admission decisions in Redis are exact under concurrency, across replicas, and honest."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from services.edge.admission import Admission, Limits, Scope, StreamSlot
from shared.errors import AuthenticationError, RateLimitError
from shared.redis_keys import RedisKeys
from tests import redis_support


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[Admission, Admission, RedisKeys]]:
    """Two admission controllers on separate connection pools, as two edge replicas have."""
    keys = RedisKeys(f"gw-adm-{secrets.token_hex(4)}")
    first, second = await redis_support.client(redis_url), await redis_support.client(redis_url)
    try:
        yield Admission(first, keys), Admission(second, keys), keys
    finally:
        await first.aclose()
        await second.aclose()


def now_ms() -> int:
    return int(time.time() * 1000)


async def outcomes(calls: list) -> list[bool]:  # type: ignore[type-arg]
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, RateLimitError):
            raise result
    return [not isinstance(r, BaseException) for r in results]


async def test_exactly_the_limit_gets_in_across_two_replicas(replicas) -> None:
    one, two, _ = replicas
    limits, now = Limits(requests=25, window_seconds=900), now_ms()
    calls = [
        (one if i % 2 else two).admit(scope="user", owner_id="u1", limits=limits, now_ms=now)
        for i in range(50)
    ]
    assert sum(await outcomes(calls)) == 25


async def test_limited_answer_says_when_to_retry(replicas) -> None:
    one, _, _ = replicas
    limits, now = Limits(requests=2, window_seconds=60), now_ms()
    first, _ = await one.admit(scope="user", owner_id="u2", limits=limits, now_ms=now)
    assert (first.limit, first.remaining) == (2, 1)
    headers = first.headers(now)
    assert headers["RateLimit-Limit"] == headers["X-RateLimit-Limit"] == "2"
    assert headers["RateLimit-Remaining"] == "1"
    assert headers["RateLimit-Reset"] == "60"
    await one.admit(scope="user", owner_id="u2", limits=limits, now_ms=now)
    with pytest.raises(RateLimitError) as limited:
        await one.admit(scope="user", owner_id="u2", limits=limits, now_ms=now + 20_000)
    assert limited.value.retry_after == 40
    after_window, _ = await one.admit(
        scope="user", owner_id="u2", limits=limits, now_ms=now + 60_000
    )
    assert after_window.remaining == 1


async def test_custom_limits_in_redis_override_the_defaults(replicas) -> None:
    one, _, keys = replicas
    await one.redis.hset(
        keys.limits("key", "k1", "u1"), mapping={"requests": 1, "window_seconds": 5}
    )
    now = now_ms()
    decision, _ = await one.admit(
        scope="key", owner_id="k1", limits=Limits(100, 900), now_ms=now, user_id="u1"
    )
    assert decision.limit == 1
    with pytest.raises(RateLimitError):
        await one.admit(
            scope="key", owner_id="k1", limits=Limits(100, 900), now_ms=now, user_id="u1"
        )


async def test_revoked_token_is_refused(replicas) -> None:
    one, _, keys = replicas
    await one.redis.set(keys.revoked("u3", "jti-1"), 1, ex=60)
    with pytest.raises(AuthenticationError):
        await one.admit(
            scope="user", owner_id="u3", limits=Limits(10, 60), now_ms=now_ms(), jti="jti-1"
        )
    decision, _ = await one.admit(
        scope="user", owner_id="u3", limits=Limits(10, 60), now_ms=now_ms(), jti="jti-2"
    )
    assert decision.remaining == 9


async def test_token_reservations_never_overshoot_the_budget(replicas) -> None:
    one, two, _ = replicas
    limits, now = Limits(requests=1000, window_seconds=60, tokens_per_minute=1000), now_ms()
    calls = [
        (one if i % 2 else two).admit(
            scope="user", owner_id="u4", limits=limits, now_ms=now, estimate_tokens=150
        )
        for i in range(20)
    ]
    assert sum(await outcomes(calls)) == 6  # 6 * 150 <= 1000 < 7 * 150


async def test_settling_to_real_usage_and_refunds_free_the_budget(replicas) -> None:
    one, _, _ = replicas
    limits, now = Limits(requests=1000, window_seconds=60, tokens_per_minute=1000), now_ms()

    async def reserve(tokens: int):  # type: ignore[no-untyped-def]
        return (
            await one.admit(
                scope="user", owner_id="u5", limits=limits, now_ms=now, estimate_tokens=tokens
            )
        )[1]

    big = await reserve(900)
    assert big is not None and big.tokens == 900
    with pytest.raises(RateLimitError):
        await reserve(200)
    await one.settle(big, used_tokens=300, now_ms=now)  # used less than estimated
    failed = await reserve(600)
    assert failed is not None
    with pytest.raises(RateLimitError):
        await reserve(200)
    await one.settle(failed, used_tokens=0, now_ms=now)  # the request failed: refund
    assert await reserve(600) is not None


async def test_no_budget_means_no_reservation(replicas) -> None:
    one, _, _ = replicas
    _, reservation = await one.admit(
        scope="user", owner_id="u6", limits=Limits(10, 60), now_ms=now_ms(), estimate_tokens=500
    )
    assert reservation is None


async def test_a_key_limited_caller_does_not_use_up_its_owners_window(replicas) -> None:
    """The user's window admits, the key's own limit refuses: nothing of the user's is held."""
    one, two, keys = replicas
    await one.redis.hset(
        keys.limits("key", "k7", "u7"), mapping={"requests": 1, "window_seconds": 60}
    )
    owner = Limits(requests=3, window_seconds=60, tokens_per_minute=10_000)
    now, slot = now_ms(), StreamSlot(allowed=10, ttl_ms=60_000)

    def both():  # type: ignore[no-untyped-def]
        return [
            Scope("user", "u7", owner, estimate_tokens=100, stream=slot),
            Scope("key", "k7", Limits(2**62, 3600), estimate_tokens=100, stream=slot, user_id="u7"),
        ]

    calls = [(one if i % 2 else two).admit_all(both(), now_ms=now) for i in range(6)]
    assert sum(await outcomes(calls)) == 1  # the key's limit of one
    # Only the one admitted request counts against the user: window, budget and streams.
    window = await one.redis.hget(keys.rate_window("user", "u7"), "count")
    assert int(window) == 1
    assert int(await one.redis.hget(keys.token_budget("user", "u7"), "used")) == 100
    assert await one.redis.zcard(keys.open_streams("user", "u7")) == 1
    assert await one.redis.zcard(keys.open_streams("key", "k7", "u7")) == 1
    # The owner, without the key, still has the two requests its window has left.
    for remaining in (1, 0):
        decision, _ = await one.admit(scope="user", owner_id="u7", limits=owner, now_ms=now)
        assert decision.remaining == remaining
    with pytest.raises(RateLimitError):
        await one.admit(scope="user", owner_id="u7", limits=owner, now_ms=now)


async def test_a_refusal_by_the_owner_leaves_the_keys_counters_alone(replicas) -> None:
    one, _, keys = replicas
    owner, key = Limits(requests=1, window_seconds=60), Limits(requests=5, window_seconds=60)
    now = now_ms()
    scopes = [Scope("user", "u8", owner), Scope("key", "k8", key, user_id="u8")]
    (user_state, _), (key_state, _) = await one.admit_all(scopes, now_ms=now)
    assert (user_state.remaining, key_state.remaining) == (0, 4)
    with pytest.raises(RateLimitError):
        await one.admit_all(scopes, now_ms=now)
    assert int(await one.redis.hget(keys.rate_window("key", "k8", "u8"), "count")) == 1
