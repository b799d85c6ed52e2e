"""The shared circuit breaker against a real Redis: sliding window, opening, half-open probes,
closing and reopening, seen the same by two processes' connections; a worker's guard records
the successes of calls made while the breaker was closed together, losing none."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.workers.retry import RetryPolicy, UpstreamGuard
from shared.breaker import Breaker, BreakerConfig
from shared.errors import ProviderError
from shared.health import beat, leave, live_workers
from shared.redis_keys import RedisKeys

# Long enough that what a test checks within one window or cooldown never outlasts it on a
# loaded machine; the cooldown's end is polled for (`cooled_down`).
CONFIG = BreakerConfig(window=3.0, min_requests=4, failure_rate=0.5, cooldown=2.0, probes=2)
P = "deepseek"


@pytest.fixture
async def breakers(redis_url: str) -> AsyncIterator[tuple[Breaker, Breaker, RedisKeys]]:
    """Two breakers on separate connections, as a worker and an edge replica have."""
    keys = RedisKeys(f"gw-cb-{secrets.token_hex(4)}")
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        yield Breaker(first, keys, CONFIG), Breaker(second, keys, CONFIG), keys
    finally:
        await first.aclose()
        await second.aclose()


async def fail(breaker: Breaker, times: int) -> str:
    state = "closed"
    for _ in range(times):
        state = await breaker.record(P, False)
    return state


async def open_breaker(breaker: Breaker) -> None:
    assert await fail(breaker, 4) == "open"


async def cooled_down(breaker: Breaker) -> None:
    """Waits for the cooldown to end: the breaker reads half-open (reading uses no probe)."""
    deadline = time.monotonic() + 10 * CONFIG.cooldown
    while await breaker.state(P) != "half_open":
        assert time.monotonic() < deadline, "the cooldown never ended"
        await asyncio.sleep(0.05)


async def test_closed_until_enough_calls_fail(breakers) -> None:
    worker, edge, _ = breakers
    assert await edge.state(P) == "closed"
    assert await fail(worker, 3) == "closed"  # fewer calls than BREAKER_MIN_REQUESTS
    assert await worker.allow(P)
    assert await fail(worker, 1) == "open"

    assert await edge.state(P) == "open"
    verdict = await edge.check(P)
    assert not verdict.allowed
    assert 0 < verdict.retry_after <= CONFIG.cooldown
    assert 0 < await edge.retry_after(P) <= CONFIG.cooldown


async def test_the_failure_rate_must_reach_the_threshold(breakers) -> None:
    worker, _, _ = breakers
    for ok in (True, True, True, False, False):  # 2 of 5 failed: 40 %
        assert await worker.record(P, ok) == "closed"
    assert await worker.record(P, False) == "open"  # 3 of 6: 50 %


async def test_successes_never_open_it(breakers) -> None:
    worker, _, _ = breakers
    await fail(worker, 3)
    for _ in range(10):
        assert await worker.record(P, True) == "closed"


async def test_old_outcomes_slide_out_of_the_window(breakers) -> None:
    worker, _, _ = breakers
    await fail(worker, 3)
    await asyncio.sleep(CONFIG.window + 0.2)  # time itself is what the window measures
    assert await fail(worker, 1) == "closed"  # the 3 earlier failures no longer count
    assert await fail(worker, 2) == "closed"
    assert await fail(worker, 1) == "open"


async def test_half_open_lets_probes_through_and_a_success_closes(breakers) -> None:
    worker, edge, _ = breakers
    await open_breaker(worker)
    assert not await worker.allow(P)
    await cooled_down(edge)

    assert await edge.state(P) == "half_open"  # reading does not use up a probe
    assert await worker.allow(P)
    assert await edge.allow(P)
    assert not await worker.allow(P)  # only BREAKER_PROBES at a time
    assert await edge.state(P) == "half_open"

    assert await worker.record(P, True) == "closed"
    assert await edge.state(P) == "closed"
    assert await worker.allow(P)
    assert await fail(worker, 3) == "closed"  # a fresh window after closing


async def test_a_probe_failure_reopens_for_another_cooldown(breakers) -> None:
    worker, edge, _ = breakers
    await open_breaker(worker)
    await cooled_down(worker)
    assert await worker.allow(P)

    assert await worker.record(P, False) == "open"
    assert await edge.state(P) == "open"
    assert not await edge.allow(P)
    assert await edge.retry_after(P) > CONFIG.cooldown / 2


async def test_probes_that_never_report_are_forgotten_after_a_round(breakers) -> None:
    worker, _, _ = breakers
    await open_breaker(worker)
    await cooled_down(worker)
    assert await worker.allow(P)
    assert await worker.allow(P)
    assert not await worker.allow(P)
    # Those probes' workers died: the round ends and lets the next probe through.
    deadline = time.monotonic() + 10 * CONFIG.cooldown
    while not await worker.allow(P):
        assert time.monotonic() < deadline, "the probe round never ended"
        await asyncio.sleep(0.05)


async def test_outcomes_reported_while_open_change_nothing(breakers) -> None:
    worker, _, _ = breakers
    await open_breaker(worker)
    assert await worker.record(P, True) == "open"
    assert not await worker.allow(P)


async def test_providers_have_separate_breakers(breakers) -> None:
    worker, _, _ = breakers
    await open_breaker(worker)
    assert await worker.state("anthropic") == "closed"
    assert await worker.allow("anthropic")


async def test_a_worker_records_its_successes_together_and_none_is_lost(breakers) -> None:
    worker, edge, keys = breakers
    guard = UpstreamGuard(worker, RetryPolicy(1, 0.01, 0.01), P, "DeepSeek")

    async def ok() -> str:
        return "answer"

    async def broken() -> str:
        raise ProviderError("upstream failed", status=502, details={"upstream_status": 502})

    for _ in range(20):  # jobs read along with a look that saw the breaker closed
        guard.saw_breaker(closed=True)
        assert await guard.call(ok, deadline=time.time() + 5) == "answer"
    recorded = await worker.redis.hgetall(keys.breaker(P))
    assert sum(int(n) for f, n in recorded.items() if f.startswith(b"o:")) < 20  # tallied
    guard.saw_breaker(closed=True)
    with pytest.raises(ProviderError):
        await guard.call(broken, deadline=time.time() + 5)
    recorded = await worker.redis.hgetall(keys.breaker(P))
    counts = dict.fromkeys((b"o:", b"f:"), 0)
    for name, count in recorded.items():
        if name[:2] in counts:
            counts[name[:2]] += int(count)
    assert counts == {b"o:": 20, b"f:": 1}  # the tally went with the failure
    assert await edge.state(P) == "closed"


async def test_concurrent_failures_open_it_exactly_once(breakers) -> None:
    worker, edge, _ = breakers
    states = await asyncio.gather(*(b.record(P, False) for b in (worker, edge) * 10))
    # The 4th failure opened it; the 16 that came while it was open changed nothing.
    assert sorted(states) == ["closed"] * 3 + ["open"] * 17
    assert await worker.state(P) == "open"
    assert CONFIG.cooldown / 2 < await edge.retry_after(P) <= CONFIG.cooldown


async def test_live_workers_count_recent_heartbeats(redis_url: str) -> None:
    keys = RedisKeys(f"gw-hb-{secrets.token_hex(4)}")
    redis = Redis.from_url(redis_url)
    try:
        assert await live_workers(redis, keys, P, 5) == 0
        await beat(redis, keys, P, "w1", 1.0)
        await beat(redis, keys, P, "w2", 1.0)
        assert await live_workers(redis, keys, P, 5) == 2
        assert await live_workers(redis, keys, "anthropic", 5) == 0
        await leave(redis, keys, P, "w1")
        assert await live_workers(redis, keys, P, 5) == 1
        await asyncio.sleep(0.3)
        assert await live_workers(redis, keys, P, 0.2) == 0
    finally:
        await redis.aclose()
