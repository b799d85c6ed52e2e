"""Round trips to Redis shared by concurrent tasks.

What tasks hand over during one turn of the event loop goes to Redis together, in one pipeline:
one write and one read for all of them instead of a round trip each, and no wait added (the
pipeline leaves at the end of the turn in which the first task asked). Under load many
requests reach the same step in the same turn; alone, a task pays what it paid before.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

Queue = Callable[[Pipeline], object]  # queues one task's commands on the pipeline


class SharedTrips:
    """`transaction`: the pipeline is one MULTI, so each task's commands run together (and
    with the other tasks' of the same trip)."""

    def __init__(self, redis: Redis, *, transaction: bool = False) -> None:
        self.redis = redis
        self.transaction = transaction
        self._waiting: list[tuple[Queue, asyncio.Future[list[Any]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, queue: Queue) -> list[Any]:
        """The answers to the commands `queue` queues, in order; the first error among them is
        raised. The commands are sent even if the caller is cancelled meanwhile."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append((queue, answered))
        if len(self._waiting) == 1:
            loop.call_soon(self._start)
        answers = await answered
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return answers

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Queue, asyncio.Future[list[Any]]]]) -> None:
        counts = []
        try:
            async with self.redis.pipeline(transaction=self.transaction) as pipe:
                for queue, _ in batch:
                    before = len(pipe)
                    queue(pipe)
                    counts.append(len(pipe) - before)
                answers = await pipe.execute(raise_on_error=False)
            at = 0
            for (_, answered), count in zip(batch, counts, strict=True):
                if not answered.done():
                    answered.set_result(list(answers[at : at + count]))
                at += count
        except Exception as exc:
            for _, answered in batch:
                if not answered.done():
                    answered.set_exception(exc)
        finally:  # cancelled (the process stops): so are the callers
            for _, answered in batch:
                answered.cancel()
