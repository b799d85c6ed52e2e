"""Round trips shared by concurrent tasks, against a real Redis: each task gets the answers to
its own commands, in order, and only its own error."""

import asyncio
import secrets

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from shared.redis_trips import SharedTrips


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "multi"])
async def test_tasks_in_the_same_turn_get_their_own_answers(
    redis_url: str, transaction: bool
) -> None:
    redis = Redis.from_url(redis_url)
    trips = SharedTrips(redis, transaction=transaction)
    key = f"gw-trips-{secrets.token_hex(4)}"
    try:

        async def count(times: int) -> list[object]:
            def queue(pipe: Pipeline) -> None:
                for _ in range(times):
                    pipe.incr(key)

            return await trips.run(queue)

        answers = await asyncio.gather(*(count(n) for n in (1, 2, 3)))
        # One after the other, in the order the tasks asked: 1, then 2-3, then 4-6.
        assert answers == [[1], [2, 3], [4, 5, 6]]

        def wrong(pipe: Pipeline) -> None:
            pipe.hset(key, "field", "value")

        refused, fine = await asyncio.gather(trips.run(wrong), count(1), return_exceptions=True)
        assert isinstance(refused, ResponseError)  # WRONGTYPE: the key holds a number
        assert fine == [7]
    finally:
        await redis.delete(key)
        await redis.aclose()
