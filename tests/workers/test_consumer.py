"""The consumer: every job it reads ends with one terminal event, published together with its
acknowledgement; it takes no more jobs than it has slots; on shutdown what is unfinished stays
pending for another worker."""

from redis.exceptions import ResponseError

from shared.messages import DeltaEvent, DoneEvent, ErrorEvent
from tests.workers.conftest import Pool, PoolFactory, eventually


async def test_a_job_is_answered_and_acknowledged_in_one_step(pool: Pool) -> None:
    job = pool.job("hello [[sim tokens=3]]")
    async with pool.replies(job) as replies, pool.running():
        await pool.enqueue(job)
        [done] = await replies.until_last()
        # Published in one MULTI with XACK and XDEL: once the answer is out, the entry is gone.
        assert await pool.pending() == 0
        assert await pool.redis.xlen(pool.stream) == 0
    assert isinstance(done, DoneEvent)
    assert (done.provider, done.usage.completion_tokens) == ("deepseek", 3)
    assert await pool.upstream_calls(job) == 1


async def test_a_streamed_job_sends_its_deltas_then_done(pool: Pool) -> None:
    job = pool.job("hello [[sim tokens=5]]", stream=True)
    async with pool.replies(job) as replies, pool.running():
        await pool.enqueue(job)
        *deltas, done = await replies.until_last()
    assert deltas and all(isinstance(d, DeltaEvent) for d in deltas)
    assert isinstance(done, DoneEvent)
    text = "".join(d.content for d in deltas if isinstance(d, DeltaEvent))
    assert len(text.split()) == done.usage.completion_tokens == 5
    assert await pool.redis.exists(pool.keys.streamed(job.id)) == 1


async def test_a_job_past_its_deadline_is_refused_without_calling_the_provider(
    pool: Pool,
) -> None:
    job = pool.job("too late", expires_in=-1)
    async with pool.replies(job) as replies, pool.running():
        await pool.enqueue(job)
        error = await replies.next()
    assert isinstance(error, ErrorEvent)
    assert (error.type, error.status) == ("provider_error", 504)
    assert await pool.upstream_calls(job) == 0
    assert await pool.pending() == 0


async def test_an_unreadable_entry_is_acknowledged_and_dropped(pool: Pool) -> None:
    async with pool.running():
        await pool.redis.xadd(pool.stream, {"job": b"{not a job"})

        async def dropped() -> bool:
            return await pool.redis.xlen(pool.stream) == 0 and await pool.pending() == 0

        await eventually(dropped, "the unreadable entry is acknowledged and deleted")


async def test_no_more_jobs_are_taken_than_slots_and_shutdown_leaves_the_rest_pending(
    make_pool: PoolFactory,
) -> None:
    pool = await make_pool(WORKER_CONCURRENCY="1")
    slow = [pool.job(f"slow {n} [[sim latency_ms=20000]]") for n in range(2)]
    async with pool.replies(slow[0]) as first_replies:
        async with pool.running(grace=0.1):
            for job in slow:
                await pool.enqueue(job)

            async def first_upstream() -> bool:
                return await pool.upstream_calls(slow[0]) == 1

            await eventually(first_upstream, "the first job reached the provider")
            # One slot: the first job is taken (and waits for the provider), the second not.
            assert await pool.pending() == 1
        # Stopped within the grace period, though every slot was busy: the running job was
        # cancelled without an answer and stays pending, un-acknowledged, for another worker
        # to reclaim; the second was never read.
        assert await first_replies.pubsub.get_message(ignore_subscribe_messages=True) is None
    assert await pool.pending() == 1
    assert await pool.redis.xlen(pool.stream) == 2
    assert await pool.upstream_calls(slow[1]) == 0


async def test_reading_resumes_when_the_stream_is_deleted_under_a_blocked_read(
    pool: Pool,
) -> None:
    async with pool.running():

        async def blocked() -> bool:
            clients = await pool.redis.client_list()
            return any(c["name"] == pool.keys.prefix and c["cmd"] == "xreadgroup" for c in clients)

        await eventually(blocked, "the consumer blocks on its stream")
        await pool.redis.delete(pool.stream)  # e.g. an operator clearing a provider's queue
        job = pool.job("after the reset")
        async with pool.replies(job) as replies:

            async def group_back() -> bool:
                try:
                    return bool(await pool.redis.xinfo_groups(pool.stream))
                except ResponseError:  # no stream yet
                    return False

            await eventually(group_back, "the consumer recreates its group")
            await pool.enqueue(job)
            answer = await replies.next()
    assert isinstance(answer, DoneEvent)
