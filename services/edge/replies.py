"""One reply channel per edge process, shared by every request waiting for a worker.

The hub subscribes its channel once, at start; every job the edge enqueues names it
(`reply_to`), and workers publish each event framed with its job's id. The reader task hands
each message to the queue of the request that owns the job, so a request registers its job
before enqueueing it (no Redis command) and drops it when done. A request whose client left
before the answer marks the job cancelled (`JobQueue.release`): the worker running it watches
for that mark and stops the upstream call.
"""

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from shared.errors import ServiceUnavailable
from shared.ids import new_id
from shared.messages import unframe
from shared.redis_keys import RedisKeys

log = logging.getLogger(__name__)

_SUBSCRIBE_TIMEOUT = 5.0


class ReplyHub:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.pubsub: PubSub = redis.pubsub()
        self.channel = keys.replies(new_id("edge"))
        self.queues: dict[bytes, asyncio.Queue[bytes]] = {}  # job id -> its request's queue
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribes the channel and waits for Redis to confirm it: from then on no reply
        to a job this edge enqueues can be missed."""
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT
        try:
            await self.pubsub.subscribe(self.channel)
            while time.monotonic() < deadline:
                message = await self.pubsub.get_message(timeout=deadline - time.monotonic())
                if message is not None and message["type"] == "subscribe":
                    break
            else:
                raise TimeoutError
        except (RedisError, TimeoutError) as exc:
            raise ServiceUnavailable("The job queue is unavailable") from exc
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]

    def register(self, job_id: str) -> asyncio.Queue[bytes]:
        """The queue that receives `job_id`'s events, registered before the job is queued."""
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.queues[job_id.encode()] = queue
        return queue

    def drop(self, job_id: str) -> None:
        """Stops routing `job_id`'s events; any that still come are ignored."""
        self.queues.pop(job_id.encode(), None)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.pubsub.get_message(timeout=None)
            except RedisError:
                log.warning("reply connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is None or message["type"] != "message":
                continue
            job_id, raw = unframe(message["data"])
            queue = self.queues.get(job_id)
            if queue is not None:
                queue.put_nowait(raw)
