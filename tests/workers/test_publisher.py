"""The reply publisher: the first delta goes out at once (marking the job as streamed), later
ones share messages within the coalescing window, and the terminal event flushes what is left
and goes out together with the job's last writes."""

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.workers.publisher import ReplyBatcher, ReplyPublisher, Write
from shared.messages import DeltaEvent, DoneEvent, ToolCallDelta
from shared.redis_keys import RedisKeys
from shared.schemas import Usage
from tests.workers.conftest import Replies, eventually

LONG_WINDOW = 60.0  # nothing after the first delta goes out before `finish`
DONE = DoneEvent(id="cmpl-1", model="m", finish_reason="stop", usage=Usage())


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> RedisKeys:
    return RedisKeys(f"gw-publisher-{secrets.token_hex(4)}")


@pytest.fixture
async def replies(redis: Redis, keys: RedisKeys) -> AsyncIterator[Replies]:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.replies("edge_1"))
    yield Replies(pubsub)
    await pubsub.aclose()  # type: ignore[no-untyped-call]


def publisher(redis: Redis, keys: RedisKeys, coalesce: float) -> ReplyPublisher:
    return ReplyPublisher(
        redis,
        keys.replies("edge_1"),
        "job_1",
        ReplyBatcher(redis, coalesce),
        keys.streamed("job_1"),
        streamed_ttl=30,
    )


async def test_the_first_delta_goes_out_at_once_and_marks_the_job_streamed(
    redis: Redis, keys: RedisKeys, replies: Replies
) -> None:
    sender = publisher(redis, keys, LONG_WINDOW)
    sender.delta(DeltaEvent(content="Hello"))
    assert sender.started  # from now on the job may not be run again
    assert await replies.next() == DeltaEvent(content="Hello")
    assert 0 < await redis.pttl(keys.streamed("job_1")) <= 30_000


async def test_later_deltas_share_a_message_and_finish_flushes_them_before_the_end(
    redis: Redis, keys: RedisKeys, replies: Replies
) -> None:
    sender = publisher(redis, keys, LONG_WINDOW)
    sender.delta(DeltaEvent(content="one"))
    await replies.next()
    for word in (" two", " three", " four"):
        sender.delta(DeltaEvent(content=word, reasoning_content="."))
    await sender.finish(DONE)
    assert await replies.until_last() == [
        DeltaEvent(content=" two three four", reasoning_content="..."),
        DONE,
    ]
    assert sender.delivered_chars == len("one two three four...")


async def test_a_burst_handed_over_before_the_first_publish_is_one_message(
    redis: Redis, keys: RedisKeys, replies: Replies
) -> None:
    sender = publisher(redis, keys, 0.0)
    for index in range(20):
        sender.delta(DeltaEvent(content=str(index % 10)))
    await sender.finish(DONE)
    assert await replies.until_last() == [DeltaEvent(content="01234567890123456789"), DONE]


async def test_pieces_of_a_tool_call_are_joined_into_one(
    redis: Redis, keys: RedisKeys, replies: Replies
) -> None:
    sender = publisher(redis, keys, LONG_WINDOW)
    sender.delta(DeltaEvent(tool_calls=(ToolCallDelta(index=0, id="call_1", name="weather"),)))
    await replies.next()
    for piece in ('{"city"', ': "Oslo"', "}"):
        sender.delta(DeltaEvent(tool_calls=(ToolCallDelta(index=0, arguments=piece),)))
    second = ToolCallDelta(index=1, id="call_2", name="time", arguments="{}")
    sender.delta(DeltaEvent(tool_calls=(second,)))
    await sender.finish(DONE)
    [merged, _] = await replies.until_last()
    assert isinstance(merged, DeltaEvent)
    assert merged.tool_calls == (ToolCallDelta(index=0, arguments='{"city": "Oslo"}'), second)


async def test_the_waiting_deltas_of_every_stream_go_out_together_within_the_window(
    redis: Redis, keys: RedisKeys, replies: Replies
) -> None:
    batcher = ReplyBatcher(redis, 0.05)
    first, second = (
        ReplyPublisher(redis, keys.replies("edge_1"), job, batcher, keys.streamed(job))
        for job in ("job_1", "job_2")
    )
    for sender, text in ((first, "a"), (second, "x")):
        sender.delta(DeltaEvent(content=text))
    # The first deltas go out at once, each with its job's marker.
    assert {await replies.next(), await replies.next()} == {
        DeltaEvent(content="a"),
        DeltaEvent(content="x"),
    }
    assert await redis.exists(keys.streamed("job_1"), keys.streamed("job_2")) == 2
    for words in (("b", "y"), ("c", "z")):
        for sender, text in zip((first, second), words, strict=True):
            sender.delta(DeltaEvent(content=text))
    # Within the window, each stream's waiting deltas as one message of its own.
    assert {await replies.next(), await replies.next()} == {
        DeltaEvent(content="bc"),
        DeltaEvent(content="yz"),
    }

    async def both_heard_twice() -> bool:
        return (first.delivered, second.delivered) == (2, 2)

    await eventually(both_heard_twice, "each stream's two messages were heard")


async def test_a_delta_nobody_hears_tells_the_client_is_gone(redis: Redis, keys: RedisKeys) -> None:
    sender = publisher(redis, keys, 0.0)  # nobody subscribed to its channel
    sender.delta(DeltaEvent(content="anyone?"))

    async def noticed() -> bool:
        return sender.client_gone

    await eventually(noticed, "the publisher notices nobody listens")
    assert sender.delivered == 0


async def test_the_terminal_event_goes_out_with_the_jobs_last_writes(
    redis: Redis, keys: RedisKeys, replies: Replies
) -> None:
    sender = publisher(redis, keys, LONG_WINDOW)
    acked_key, deleted_key = f"{keys.prefix}:test:acked", f"{keys.prefix}:test:deleted"

    def mark(name: str) -> Write:
        return lambda pipe: pipe.set(name, "1", ex=60)

    # As the consumer acknowledges and deletes the entry.
    await sender.finish(DONE, mark(acked_key), mark(deleted_key))
    assert await replies.next() == DONE
    # One MULTI: by the time the answer is heard, both writes have been made.
    assert await redis.exists(acked_key, deleted_key) == 2
