"""One reply channel per edge process, shared by every request waiting for a worker.

The hub subscribes its channel once, at start; every job the edge enqueues names it
(`reply_to`), and workers publish each event framed with its job's id. The reader task hands
each message to the queue of the request that owns the job, so a request registers its job
before enqueueing it (no Redis command) and drops it when done. A request whose client left
before the answer marks the job cancelled (`JobQueue.release`): the worker running it watches
for that mark and stops the upstream call.

In a Redis Cluster the channel is a sharded one (SSUBSCRIBE; workers SPUBLISH), served by the
node of its slot alone. When that node fails the hub subscribes again, on the replica promoted
in its place; events published meanwhile are lost, and their requests end at their deadline.
"""

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.errors import ServiceUnavailable
from shared.ids import new_id
from shared.messages import unframe
from shared.redis_client import is_cluster
from shared.redis_keys import RedisKeys

log = logging.getLogger(__name__)

_SUBSCRIBE_TIMEOUT = 5.0
_FOREVER = 3600.0  # a cluster's sharded read takes no "no timeout"


class ReplyHub:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.cluster = is_cluster(redis)
        self.pubsub: PubSub = redis.pubsub()
        self.channel = keys.replies(new_id("edge"))
        self.queues: dict[bytes, asyncio.Queue[bytes]] = {}  # job id -> its request's queue
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribes the channel and waits for Redis to confirm it: from then on no reply
        to a job this edge enqueues can be missed."""
        try:
            await self._subscribe()
        except (RedisError, OSError, TimeoutError) as exc:
            raise ServiceUnavailable("The job queue is unavailable") from exc
        self.reader = asyncio.create_task(self._read())

    async def _subscribe(self) -> None:
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT
        if self.cluster:
            await cast(ClusterPubSub, self.pubsub).ssubscribe(self.channel)
        else:
            await self.pubsub.subscribe(self.channel)
        while time.monotonic() < deadline:
            message = await self._next(deadline - time.monotonic())
            if message is not None and message["type"] in ("subscribe", "ssubscribe"):
                return
        raise TimeoutError

    async def _next(self, wait: float | None) -> dict[str, Any] | None:
        """The next message, waiting `wait` seconds at most (None: until one comes)."""
        if self.cluster:
            pubsub = cast(ClusterPubSub, self.pubsub)
            if not pubsub.node_pubsub_mapping:
                # Nothing subscribed (a subscription that failed, or one closed): the read
                # would return at once without waiting, and the reader would spin, holding
                # the event loop and with it every request of this edge.
                raise RedisConnectionError("the reply channel is not subscribed")
            return await pubsub.get_sharded_message(timeout=_FOREVER if wait is None else wait)
        message: dict[str, Any] | None = await self.pubsub.get_message(timeout=wait)
        return message

    async def _resubscribe(self) -> None:
        """A new subscription in a cluster, at the node now serving the channel's slot.

        SSUBSCRIBE goes to the node the client's slot map names, and a failed one does not
        refresh that map: until another command of the edge failed on the dead node (none
        comes while every client waits for its answer) the hub would try that node again and
        again. A command on the channel's slot goes through the cluster client's failover
        handling, which learns the promoted replica (or raises if the failover takes longer
        than its retries; the reader then tries again)."""
        with contextlib.suppress(RedisError, OSError):
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.exists(self.channel)
        self.pubsub = self.redis.pubsub()
        await self._subscribe()

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
                message = await self._next(None)
            except Exception:  # the reader must outlive its connection, whatever broke it
                log.warning("reply connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
                if self.cluster:
                    try:
                        await self._resubscribe()
                    except Exception:
                        log.warning("reply channel not subscribed again yet", exc_info=True)
                continue
            if message is None or message["type"] not in ("message", "smessage"):
                continue
            job_id, raw = unframe(message["data"])
            queue = self.queues.get(job_id)
            if queue is not None:
                queue.put_nowait(raw)
