"""Jobs outliving their worker or their client, against real worker processes and a real
Redis: a SIGKILLed worker's jobs are reclaimed (run again, or ended if they had streamed),
jobs delivered too often are dead-lettered, SIGTERM drains, and a client that leaves cancels
the upstream call. Workers run on a private key prefix (see `reliability.py`).
"""

import asyncio
import secrets
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.health import live_workers
from shared.messages import DeltaEvent, DoneEvent, ErrorEvent, decode_job
from shared.redis_keys import WORKER_GROUP, RedisKeys
from tests.e2e.helpers import auth, chat_body, held_at, release, upstream_stream_ended
from tests.e2e.reliability import (
    Pool,
    chat_job,
    kill,
    pool_for,
    upstream_calls,
    wait_for_upstream,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def pool(fleet: FleetConfig, redis_url: str) -> AsyncIterator[Pool]:
    async for created in pool_for(fleet, redis_url):
        yield created


async def test_a_killed_workers_jobs_are_recovered(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    env = {"RECLAIM_IDLE": "1s", "MAX_DELIVERIES": "3"}
    victim = await pool.worker("xai", **env)
    gate = f"quiet{secrets.token_hex(3)}"
    quiet = chat_job("xai", f"hi [[sim hold={gate}]]")  # no answer until the worker is dead
    streaming = chat_job("xai", "hi [[sim tokens=40 chunk_delay_ms=300]]", stream=True)
    quiet_reply, streaming_reply = await pool.send(quiet), await pool.send(streaming)
    assert isinstance(await streaming_reply.next(), DeltaEvent)
    await held_at(simulator, gate, 1)
    kill(victim)
    await release(simulator, gate)

    await pool.worker("xai", **env)
    event = await quiet_reply.terminal()
    assert isinstance(event, DoneEvent), event  # nothing had been streamed: run again
    assert len(await upstream_calls(simulator, quiet.trace)) == 2
    event = await streaming_reply.terminal()
    assert isinstance(event, ErrorEvent), event  # it had streamed: end it, never resend
    assert (event.status, event.type) == (502, "provider_error")
    assert "stopped" in event.message
    assert len(await upstream_calls(simulator, streaming.trace)) == 1
    await pool.drained("xai")


async def test_a_job_delivered_too_often_goes_to_the_dead_letters(pool: Pool) -> None:
    stream = pool.keys.jobs("xai")
    await pool.redis.xgroup_create(stream, WORKER_GROUP, id="0", mkstream=True)
    job = chat_job("xai", "hi")
    reply = await pool.send(job)
    # Three workers took it and died (deliveries 1-3), never acknowledging it.
    [[_, [(entry_id, _)]]] = await pool.redis.xreadgroup(WORKER_GROUP, "ghost", {stream: ">"})
    for _ in range(2):
        await pool.redis.xclaim(stream, WORKER_GROUP, "ghost", 0, [entry_id])

    await pool.worker("xai", RECLAIM_IDLE="500ms", MAX_DELIVERIES="3")
    event = await reply.terminal()
    assert isinstance(event, ErrorEvent), event
    assert (event.status, event.type) == (502, "provider_error")
    [(_, fields)] = await pool.redis.xrange(pool.keys.dead_letters("xai"))
    assert decode_job(fields[b"job"]) == job
    assert fields[b"deliveries"] == b"3"
    assert fields[b"error"]
    await pool.drained("xai")
    assert await pool.redis.xpending(stream, WORKER_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_sigterm_finishes_in_flight_jobs_and_hands_back_the_rest(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    worker = await pool.worker("xai", WORKER_SHUTDOWN_GRACE="3s")
    assert await live_workers(pool.redis, pool.keys, "xai", 5) == 1
    short_gate, long_gate = f"short{secrets.token_hex(3)}", f"long{secrets.token_hex(3)}"
    short = chat_job("xai", f"hi [[sim hold={short_gate}]]")
    long = chat_job("xai", f"hi [[sim hold={long_gate}]]")
    short_reply, long_reply = await pool.send(short), await pool.send(long)
    await held_at(simulator, short_gate, 1)
    await held_at(simulator, long_gate, 1)

    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)
    await release(simulator, short_gate)  # answered within the grace
    event = await short_reply.terminal()
    assert isinstance(event, DoneEvent), event
    # It exits after the grace (3 s); the other job's answer is still held upstream.
    code = await asyncio.to_thread(worker.process.wait, 15)
    assert code == 0
    assert await live_workers(pool.redis, pool.keys, "xai", 5) == 0

    # The job that could not finish is still pending, for another worker to reclaim.
    pending = await pool.redis.xpending(pool.keys.jobs("xai"), WORKER_GROUP)
    assert pending["pending"] == 1
    assert await pool.queued("xai") == 1
    await release(simulator, long_gate)
    await pool.worker("xai", RECLAIM_IDLE="500ms")
    event = await long_reply.terminal()
    assert isinstance(event, DoneEvent), event
    await pool.drained("xai")


async def test_a_client_leaving_a_stream_stops_the_upstream_stream(
    pool: Pool, simulator: httpx.AsyncClient
) -> None:
    await pool.worker("deepseek")
    job = chat_job("deepseek", "hi [[sim tokens=60 chunk_delay_ms=100]]", stream=True)
    reply = await pool.send(job)
    for _ in range(2):
        assert isinstance(await reply.next(), DeltaEvent)
    await reply.leave()

    deadline = time.monotonic() + 10
    while await pool.queued("deepseek"):  # the job ended (acknowledged and deleted)
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await assert_upstream_stream_stopped(simulator, job.trace)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "before-first-token"])
async def test_a_client_leaving_cancels_a_call_that_has_sent_nothing(
    pool: Pool, simulator: httpx.AsyncClient, stream: bool
) -> None:
    await pool.worker("deepseek")
    job = chat_job("deepseek", "hi [[sim latency_ms=60000]]", stream=stream)
    reply = await pool.send(job)
    await wait_for_upstream(simulator, job.trace)
    await reply.leave()
    started = time.monotonic()
    while await pool.queued("deepseek"):  # the job ends long before the provider's 60 s
        assert time.monotonic() - started < 30, "the upstream call was not cancelled"
        await asyncio.sleep(0.1)


async def test_a_client_leaving_an_edge_stream_stops_the_upstream_stream(
    fleet: FleetConfig, user_token: str, simulator: httpx.AsyncClient
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=60 chunk_delay_ms=100]]")
    async with (
        httpx.AsyncClient(base_url=fleet.edge_url, timeout=30) as client,
        client.stream(
            "POST", "/api/v1/chat", json={**body, "stream": True}, headers=auth(user_token, trace)
        ) as response,
    ):
        assert response.status_code == 200
        frames = 0
        async for line in response.aiter_lines():
            frames += line.startswith("data: ")
            if frames == 3:
                break

    await assert_upstream_stream_stopped(simulator, trace)


async def assert_upstream_stream_stopped(simulator: httpx.AsyncClient, trace: str) -> None:
    """The simulator's stream (60 words) was cut by its client, not sent to its end."""
    record = await upstream_stream_ended(simulator, trace)
    assert not record["finished"]
    assert record["chunks"] < 60


async def test_a_client_leaving_a_plain_edge_request_cancels_the_upstream_call(
    fleet: FleetConfig, user_token: str, simulator: httpx.AsyncClient, redis_url: str
) -> None:
    trace = f"req_test_{secrets.token_hex(6)}"
    body = chat_body("xai", "grok-3", "hi [[sim latency_ms=60000]]")
    async with httpx.AsyncClient(base_url=fleet.edge_url, timeout=1.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/api/v1/chat", json=body, headers=auth(user_token, trace))

    redis = Redis.from_url(redis_url)
    try:
        stream, started = RedisKeys(fleet.redis_prefix).jobs("xai"), time.monotonic()
        while await redis.xlen(stream):  # the job ends long before the provider's 60 s
            assert time.monotonic() - started < 30, "the upstream call was not cancelled"
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
