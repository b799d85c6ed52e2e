"""Worker reliability by fault injection against real worker processes and a real Redis:
circuit breaker, retries, fallbacks and deadlines (crashes, shutdown and disconnects are in
`test_worker_recovery.py`). Each test runs its own workers on a private key prefix (see
`reliability.py`) and checks what the client receives and that no job vanished (every job
ends with one terminal event and the stream empties).
"""

import secrets
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from services.fleet.infra import free_port
from services.fleet.plan import FleetConfig
from shared.breaker import Breaker, BreakerConfig
from shared.messages import DeltaEvent, DoneEvent, ErrorEvent
from tests.e2e.helpers import auth, chat_body, eventually
from tests.e2e.reliability import (
    Pool,
    chat_job,
    pool_for,
    upstream_calls,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def pool(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    async for created in pool_for(fleet, redis_url):
        yield created


async def test_breaker_opens_fails_fast_then_a_probe_closes_it(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    await pool.worker(
        "deepseek",
        BREAKER_MIN_REQUESTS="3",
        BREAKER_FAILURE_RATE="0.5",
        BREAKER_WINDOW="60s",
        BREAKER_COOLDOWN="5s",
        BREAKER_PROBES="1",
        RETRY_MAX_ATTEMPTS="1",
    )
    for _ in range(3):
        reply = await pool.send(chat_job("deepseek", "hi [[sim fail=500]]"))
        event = await reply.terminal()
        assert isinstance(event, ErrorEvent) and event.status == 502, event
    breaker = Breaker(pool.redis, pool.keys, BreakerConfig(60, 3, 0.5, 5, 1))
    assert await breaker.state("deepseek") == "open"

    job = chat_job("deepseek", "hi")
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, ErrorEvent), event
    assert (event.status, event.type) == (503, "provider_error")
    assert "circuit open" in event.message
    assert event.retry_after is not None and 0 < event.retry_after <= 5
    assert await upstream_calls(simulator, job.trace) == []  # failed fast, nothing sent
    # Fast: answered while the breaker was still in its cooldown.
    assert await breaker.state("deepseek") == "open"

    async def half_open() -> bool:
        return await breaker.state("deepseek") == "half_open"

    await eventually(half_open, "the breaker's cooldown ending")
    job = chat_job("deepseek", "hi")
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, DoneEvent), event
    assert await breaker.state("deepseek") == "closed"
    assert len(await upstream_calls(simulator, job.trace)) == 1
    await pool.drained("deepseek")


async def test_retries_until_success_honouring_retry_after(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    await pool.worker("deepseek", RETRY_MAX_ATTEMPTS="3", RETRY_BASE_DELAY="50ms")

    job = chat_job("deepseek", "hi [[sim fail=429 fail_times=2]]")
    started = time.monotonic()
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, DoneEvent), event
    assert time.monotonic() - started >= 1.9  # the simulator's Retry-After: 1 s, twice
    calls = await upstream_calls(simulator, job.trace)
    assert [c["status"] for c in calls] == [429, 429, 200]

    job = chat_job("deepseek", "hi [[sim fail=503 fail_times=2]]", stream=True)
    reply = await pool.send(job)
    event = await reply.terminal()
    assert isinstance(event, DoneEvent), event
    assert [c["status"] for c in await upstream_calls(simulator, job.trace)] == [503, 503, 200]
    assert any(isinstance(e, DeltaEvent) and e.content for e in reply.events)

    job = chat_job("deepseek", "hi [[sim fail=500]]")
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, ErrorEvent) and event.status == 502, event
    assert len(await upstream_calls(simulator, job.trace)) == 3  # RETRY_MAX_ATTEMPTS

    job = chat_job("deepseek", "hi [[sim fail=401]]")
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, ErrorEvent), event
    assert len(await upstream_calls(simulator, job.trace)) == 1  # a rejected key: no retry
    await pool.drained("deepseek")


async def test_a_failure_after_the_first_delta_is_not_retried(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    await pool.worker("deepseek", RETRY_MAX_ATTEMPTS="3", RETRY_BASE_DELAY="50ms")
    job = chat_job("deepseek", "hi [[sim fail=midstream tokens=20]]", stream=True)
    reply = await pool.send(job)
    event = await reply.terminal()

    assert isinstance(event, ErrorEvent) and event.type == "provider_error", event
    assert any(isinstance(e, DeltaEvent) for e in reply.events)
    assert len(await upstream_calls(simulator, job.trace)) == 1


async def test_a_retry_after_beyond_the_deadline_gives_up_at_once(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    await pool.worker("deepseek", RETRY_MAX_ATTEMPTS="3", RETRY_MAX_DELAY="120s")
    # The provider asks for 60 s; 30 s are left of the deadline.
    job = chat_job("deepseek", "hi [[sim fail=429 retry_after=60]]", deadline=30)
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, ErrorEvent) and event.status == 429, event
    assert time.time() < job.deadline  # it did not wait for the deadline either
    assert len(await upstream_calls(simulator, job.trace)) == 1
    await pool.drained("deepseek")


async def test_fallback_moves_the_job_to_the_next_provider(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    for provider in ("deepseek", "anthropic"):
        await pool.worker(provider, RETRY_MAX_ATTEMPTS="2", RETRY_BASE_DELAY="20ms")
    # (An unknown provider among the fallbacks is refused by the edge: tests/security.)
    fallbacks = ["anthropic/claude-3-5-sonnet-20241022"]
    for stream in (False, True):
        text = "hi [[sim fail=503 fail_times=2]]"
        job = chat_job("deepseek", text, fallbacks=fallbacks, stream=stream)
        reply = await pool.send(job)
        event = await reply.terminal()

        assert isinstance(event, DoneEvent), event
        assert (event.provider, event.model) == ("anthropic", "claude-3-5-sonnet-20241022")
        calls = await upstream_calls(simulator, job.trace)
        assert [(c["provider"], c["status"]) for c in calls] == [
            ("deepseek", 503),
            ("deepseek", 503),
            ("anthropic", 200),
        ]
    # Answered on its own provider, a job says so too.
    event = await (await pool.send(chat_job("deepseek", "hi", fallbacks=fallbacks))).terminal()
    assert isinstance(event, DoneEvent) and event.provider == "deepseek"
    # A client error is not a reason to fall back.
    job = chat_job("deepseek", "hi [[sim fail=401]]", fallbacks=fallbacks)
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, ErrorEvent), event
    assert {c["provider"] for c in await upstream_calls(simulator, job.trace)} == {"deepseek"}
    await pool.drained("deepseek", "anthropic")


async def test_fallback_through_the_edge_says_which_provider_answered(
    edge: httpx.AsyncClient, user_token: str, simulator: httpx.AsyncClient
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = chat_body(
        "deepseek",
        "deepseek-chat",
        "hi [[sim fail=503 fail_times=3]]",
        fallbacks=["anthropic/claude-3-5-sonnet-20241022"],
    )
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    assert response.status_code == 200, response.text
    assert response.json()["model"] == "claude-3-5-sonnet-20241022"
    calls = [c for c in await upstream_calls(simulator, trace) if c["path"].endswith("messages")]
    assert [c["status"] for c in calls] == [200]
    assert response.json()["provider"] == "anthropic"


async def test_a_job_past_its_deadline_is_dropped(pool: Pool, simulator: httpx.AsyncClient) -> None:
    await pool.worker("deepseek")
    job = chat_job("deepseek", "hi", deadline=-1)
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, ErrorEvent) and event.status == 504, event
    assert await upstream_calls(simulator, job.trace) == []


async def test_an_unreachable_provider_is_a_retryable_502(pool: Pool) -> None:
    closed = f"http://127.0.0.1:{free_port()}/deepseek"  # nothing listens there
    await pool.worker("deepseek", DEEPSEEK_BASE_URL=closed, RETRY_MAX_ATTEMPTS="1")
    event = await (await pool.send(chat_job("deepseek", "hi"))).terminal()
    assert isinstance(event, ErrorEvent), event
    assert (event.status, event.type) == (502, "provider_error")
    assert "could not be reached (ConnectError)" in event.message
    await pool.drained("deepseek")


async def test_a_provider_slower_than_the_timeout_is_a_504(pool: Pool) -> None:
    # xAI sends nothing while it thinks, so the read timeout is what cuts it.
    await pool.worker("xai", REQUEST_TIMEOUT="1s", RETRY_MAX_ATTEMPTS="1")
    event = await (await pool.send(chat_job("xai", "hi [[sim latency_ms=3000]]"))).terminal()
    assert isinstance(event, ErrorEvent), event
    assert (event.status, event.type) == (504, "provider_error")
    assert "timed out" in event.message
    await pool.drained("xai")


async def test_keep_alives_do_not_carry_a_job_past_its_deadline(pool: Pool) -> None:
    # DeepSeek sends keep-alive lines while it waits; each one resets a read timeout.
    await pool.worker("deepseek", RETRY_MAX_ATTEMPTS="1")
    job = chat_job("deepseek", "hi [[sim latency_ms=6000]]", deadline=2)
    event = await (await pool.send(job)).terminal()
    assert isinstance(event, ErrorEvent), event
    assert (event.status, event.type) == (504, "provider_error")
    assert "did not finish before the request's deadline" in event.message
    await pool.drained("deepseek")
