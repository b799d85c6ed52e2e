"""Crash recovery: a job a dead worker left pending is taken over by a live one, which runs it
again if it never streamed, ends it with an error if it had, and sets it aside after too many
deliveries; a running job's lease is renewed so it is never taken from its live worker; a
worker replacing one that exited takes over that one's jobs at once."""

from typing import Any

from services.workers.heartbeat import Heartbeat
from services.workers.recovery import DEAD_LETTER, WORKER_STOPPED, Recovery
from shared import health
from shared.messages import ChatJob, DoneEvent, ErrorEvent, decode_job
from shared.redis_keys import WORKER_GROUP
from tests.workers.conftest import Pool, PoolFactory, eventually

IDLE = 0.05  # seconds an entry must be idle to be taken over


def recovery(pool: Pool, max_deliveries: int = 3) -> Recovery:
    return Recovery(pool.redis, pool.keys, pool.consumer, idle=IDLE, max_deliveries=max_deliveries)


async def pending_entry(pool: Pool) -> dict[str, Any]:
    [entry] = await pool.redis.xpending_range(pool.stream, WORKER_GROUP, "-", "+", 1)
    return dict(entry)


async def idle_past(pool: Pool, seconds: float) -> None:
    async def idle() -> bool:
        return bool((await pending_entry(pool))["time_since_delivered"] > seconds * 1000)

    await eventually(idle, f"the pending entry is idle for more than {seconds} s")


async def left_by_a_dead_worker(pool: Pool, job: ChatJob, deliveries: int = 1) -> None:
    """Queues `job` and has a worker that then dies read it `deliveries` times."""
    await pool.enqueue(job)
    for cursor in (">", *["0"] * (deliveries - 1)):
        await pool.redis.xreadgroup(WORKER_GROUP, "dead-worker", {pool.stream: cursor})
    await idle_past(pool, IDLE)


async def gone(pool: Pool) -> bool:
    return await pool.pending() == 0 and await pool.redis.xlen(pool.stream) == 0


async def test_a_job_that_had_not_streamed_runs_again(pool: Pool) -> None:
    job = pool.job("left behind [[sim tokens=4]]")
    await left_by_a_dead_worker(pool, job)
    async with pool.replies(job) as replies:
        await recovery(pool).sweep()
        answer = await replies.next()
    assert isinstance(answer, DoneEvent)
    assert answer.usage.completion_tokens == 4
    await eventually(lambda: gone(pool), "the re-run job is acknowledged")
    assert await pool.upstream_calls(job) == 1


async def test_a_job_that_had_streamed_ends_with_an_error_instead_of_a_second_answer(
    pool: Pool,
) -> None:
    job = pool.job("half answered", stream=True)
    await left_by_a_dead_worker(pool, job)
    await pool.redis.set(pool.keys.streamed(job.id), "1", ex=60)  # its first delta went out
    async with pool.replies(job) as replies:
        await recovery(pool).sweep()
        error = await replies.next()
    assert isinstance(error, ErrorEvent)
    assert (error.status, error.message) == (502, WORKER_STOPPED)
    assert await gone(pool)
    assert await pool.upstream_calls(job) == 0


async def test_a_job_delivered_too_often_is_dead_lettered(pool: Pool) -> None:
    job = pool.job("poison")
    await left_by_a_dead_worker(pool, job, deliveries=2)
    async with pool.replies(job) as replies:
        await recovery(pool, max_deliveries=2).sweep()  # its third delivery
        error = await replies.next()
    assert isinstance(error, ErrorEvent)
    assert (error.status, error.message) == (502, DEAD_LETTER)
    assert await gone(pool)
    [(_, fields)] = await pool.redis.xrange(pool.keys.dead_letters("deepseek"))
    assert decode_job(fields[b"job"]) == job
    assert fields[b"deliveries"] == b"2"
    assert await pool.upstream_calls(job) == 0


async def test_an_unreadable_pending_entry_is_acknowledged(pool: Pool) -> None:
    await pool.redis.xadd(pool.stream, {"job": b"garbage"})
    await pool.redis.xreadgroup(WORKER_GROUP, "dead-worker", {pool.stream: ">"})
    await idle_past(pool, IDLE)
    await recovery(pool).sweep()
    assert await pool.pending() == 0


async def test_a_running_job_keeps_its_lease_and_is_not_taken_over(
    make_pool: PoolFactory,
) -> None:
    pool = await make_pool()
    job = pool.job("slow [[sim latency_ms=20000]]")
    async with pool.replies(job), pool.running(grace=0.1):
        await pool.enqueue(job)

        async def running() -> bool:
            return await pool.upstream_calls(job) == 1

        await eventually(running, "the job reached the provider")
        await idle_past(pool, 0.5)
        await Heartbeat(pool.redis, pool.keys, pool.consumer, interval=1.0).renew_leases()
        renewed = await pending_entry(pool)
        assert renewed["time_since_delivered"] < 500  # the lease is renewed...
        assert renewed["times_delivered"] == 1  # ...without counting a delivery
        # Even when its lease looks old, a job this worker is running stays with it.
        await idle_past(pool, IDLE)
        await recovery(pool).sweep()
        assert list(pool.consumer.running) == [renewed["message_id"]]
        assert await pool.upstream_calls(job) == 1


async def test_a_replacement_takes_over_its_predecessors_jobs_at_once(pool: Pool) -> None:
    plain, streamed, others = pool.job("left [[sim tokens=3]]"), pool.job("half"), pool.job("x")
    for job, worker in ((plain, "dead-worker"), (streamed, "dead-worker"), (others, "alive")):
        await pool.enqueue(job)
        await pool.redis.xreadgroup(WORKER_GROUP, worker, {pool.stream: ">"}, count=1)
    await pool.redis.set(pool.keys.streamed(streamed.id), "1", ex=60)
    await health.beat(pool.redis, pool.keys, "deepseek", "dead-worker", 5.0)
    # Idle for far less than RECLAIM_IDLE: only knowing its worker exited lets them go.
    slow = Recovery(pool.redis, pool.keys, pool.consumer, idle=600, max_deliveries=3)
    async with pool.replies(plain) as plain_replies, pool.replies(streamed) as streamed_replies:
        await slow.adopt("dead-worker")
        answer, error = await plain_replies.next(), await streamed_replies.next()
    assert isinstance(answer, DoneEvent)
    assert isinstance(error, ErrorEvent) and error.message == WORKER_STOPPED
    await eventually(lambda: pending_of(pool, "dead-worker", 0), "the two jobs are taken")
    assert await pending_of(pool, "alive", 1)  # another worker's job is left alone
    assert await health.live_workers(pool.redis, pool.keys, "deepseek", 60) == 0
    assert await pool.upstream_calls(plain) == 1


async def pending_of(pool: Pool, consumer: str, count: int) -> bool:
    entries = await pool.redis.xpending_range(
        pool.stream, WORKER_GROUP, "-", "+", 10, consumername=consumer
    )
    return len(entries) == count
