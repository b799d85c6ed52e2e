"""The edge's Redis hop against a real Redis: a job is queued only once its request is admitted,
the events of every job come back on the edge's one channel to their own request, a job left
unanswered is marked cancelled for its worker, and audit records written in batches all
arrive, also the ones still waiting at shutdown."""

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from services.edge.admission import Admission, Limits, Reservation, Scope, Then
from services.edge.audit import AuditEmitter
from services.edge.job_queue import JobQueue
from services.edge.replies import ReplyHub
from shared import audit
from shared.audit import AuditRecord
from shared.errors import ProviderError, RateLimitError
from shared.messages import ChatJob, DoneEvent, decode_job, frame
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest, Usage

P = "deepseek"


@dataclass
class Hop:
    redis: Redis
    keys: RedisKeys
    hub: ReplyHub
    queue: JobQueue
    admission: Admission


@pytest.fixture
async def hop(redis_url: str) -> AsyncIterator[Hop]:
    keys = RedisKeys(f"gw-hop-{secrets.token_hex(4)}")
    redis = Redis.from_url(redis_url)
    hub = ReplyHub(redis, keys)
    await hub.start()
    admission = Admission(redis, keys)
    queue = JobQueue(redis, hub, keys, admission, timeout=30, maxlen=1000, queue_limit=2)
    try:
        yield Hop(redis, keys, hub, queue, admission)
    finally:
        await hub.close()
        await redis.aclose()


def chat_job(queue: JobQueue, user: str = "u1") -> ChatJob:
    request = ChatRequest.model_validate(
        {"provider": P, "model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]}
    )
    return ChatJob(**queue.job_fields(user_id=user, trace="req_test"), request=request)


async def admit_once(
    hop: Hop, user: str, tokens: int = 0, then: Then | None = None
) -> tuple[list[Reservation], Any]:
    """The user's one request of its window, and `then` in the same call when it gets in."""
    ((_, reservation),), followed = await hop.admission.admit_then(
        [
            Scope(
                "user", user, Limits(requests=1, window_seconds=60, tokens_per_minute=1000), tokens
            )
        ],
        now_ms=int(time.time() * 1000),
        then=then,
    )
    return [reservation] if reservation else [], followed


async def test_a_refused_admission_queues_nothing_and_listens_to_nothing(hop: Hop) -> None:
    await admit_once(hop, "u1")  # the one request of its window
    job = chat_job(hop.queue)
    with pytest.raises(RateLimitError):
        await hop.queue.submit(job, P, admit=lambda then: admit_once(hop, "u1", then=then))
    assert await hop.redis.xlen(hop.keys.jobs(P)) == 0
    assert job.id.encode() not in hop.hub.queues


async def test_an_admitted_job_is_queued_with_the_callers_own_key(hop: Hop) -> None:
    await hop.redis.hset(hop.keys.own_keys("u2"), P, "key_123")
    job = chat_job(hop.queue, "u2")
    pending = await hop.queue.submit(job, P, admit=lambda then: admit_once(hop, "u2", then=then))
    [(_, fields)] = await hop.redis.xrange(hop.keys.jobs(P))
    queued = decode_job(fields[b"job"])
    assert queued == job.model_copy(update={"key_id": "key_123"})
    await hop.queue.release(pending)


async def test_a_full_queue_gives_back_what_the_admission_reserved(hop: Hop) -> None:
    for user in ("a", "b"):
        await hop.queue.submit(chat_job(hop.queue, user), P)
    with pytest.raises(ProviderError) as refused:
        await hop.queue.submit(
            chat_job(hop.queue, "u3"), P, admit=lambda then: admit_once(hop, "u3", 400, then)
        )
    assert refused.value.status == 503
    used = await hop.redis.hget(hop.keys.token_budget("user", "u3"), "used")
    assert int(used or 0) == 0


async def test_each_event_on_the_edges_channel_reaches_its_own_job(hop: Hop) -> None:
    first = await hop.queue.submit(chat_job(hop.queue, "a"), P)
    second = await hop.queue.submit(chat_job(hop.queue, "b"), P)
    assert first.job.reply_to == second.job.reply_to == hop.hub.channel
    for pending, text in ((second, "to b"), (first, "to a")):
        done = DoneEvent(id=text, model="m", finish_reason="stop", usage=Usage())
        await hop.redis.publish(pending.job.reply_to, frame(pending.job.id, done))
    for pending, text in ((first, "to a"), (second, "to b")):
        event = await pending.next_event()
        assert isinstance(event, DoneEvent) and event.id == text
        await hop.queue.release(pending)
    assert not hop.hub.queues
    for pending in (first, second):  # answered: nothing for a worker to stop
        assert not await hop.redis.exists(hop.keys.cancelled(pending.job.id))


async def test_a_job_released_before_its_answer_is_marked_cancelled(hop: Hop) -> None:
    pending = await hop.queue.submit(chat_job(hop.queue), P)
    await hop.queue.release(pending)  # as when its client leaves
    assert not hop.hub.queues
    ttl = await hop.redis.pttl(hop.keys.cancelled(pending.job.id))
    assert 0 < ttl <= 30_000  # until the job's deadline


def record(index: int) -> AuditRecord:
    return AuditRecord(
        trace_id=f"req_batch_{index}",
        ts=time.time(),
        method="POST",
        path="/api/v1/chat",
        status=200,
        outcome="success",
        duration_ms=1.0,
    )


async def test_audit_records_arrive_in_order_and_drain_writes_the_waiting_ones(
    redis_url: str,
) -> None:
    keys = RedisKeys(f"gw-hop-{secrets.token_hex(4)}")
    redis = Redis.from_url(redis_url)
    emitter = AuditEmitter(redis, keys)
    try:
        for index in range(120):  # all waiting before the writer first runs
            emitter.submit(record(index))
        await emitter.drain()
        entries = await redis.xrange(keys.audit())
    finally:
        await redis.aclose()
    traces = [audit.decode(fields).trace_id for _, fields in entries]
    assert traces == [f"req_batch_{index}" for index in range(120)]
    assert (emitter.emitted, emitter.failed, emitter.dropped) == (120, 0, 0)
