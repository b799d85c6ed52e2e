"""Stopping upstream work nobody waits for any more.

When a job's client leaves before its answer, the edge marks the job cancelled
(`RedisKeys.cancelled`). While upstream calls (with their retries) run, the worker looks for
the marks of their jobs (one `MGET` for all of them every `POLL_SECONDS`; in a cluster one per
slot) and cancels the calls nobody waits for, streams included. A streaming job also stops
when a PUBLISH reaches nobody: its edge is gone. Either way the job ends with `ListenerGone`;
for a cut stream it carries the usage of what was delivered (`shared.delivered`).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import ProviderError
from shared.redis_client import get_many
from shared.redis_keys import RedisKeys
from shared.schemas import Usage

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.5


class ListenerGone(ProviderError):
    """Nobody waits for the job's answer any more: its client left the edge."""

    status = 499

    def __init__(self, usage: Usage | None = None) -> None:
        details = {"usage": usage.model_dump()} if usage is not None else {}
        super().__init__("The client went away", details=details)
        self.usage = usage


class ClientWatch:
    """Watches the running jobs of a worker for the edge's cancel marks, with one `MGET` for
    all of them every `every` seconds, however many there are."""

    def __init__(self, redis: Redis, keys: RedisKeys, every: float = POLL_SECONDS) -> None:
        self.redis = redis
        self.keys = keys
        self.every = every
        self._left: dict[str, asyncio.Future[None]] = {}  # cancel key -> set when marked
        self._polling: asyncio.Task[None] | None = None

    async def unless_client_leaves(self, job_id: str, work: Awaitable[T]) -> T:
        """The result of `work`, or `ListenerGone` (with `work` cancelled) once the job is
        marked cancelled."""
        task = asyncio.ensure_future(work)
        key = self.keys.cancelled(job_id)
        left = self._left[key] = asyncio.get_running_loop().create_future()
        if self._polling is None or self._polling.done():
            self._polling = asyncio.create_task(self._poll())
        try:
            await asyncio.wait((task, left), return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            log.info("the client left; cancelling the upstream call")
            raise ListenerGone()
        finally:
            del self._left[key]
            left.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _poll(self) -> None:
        while self._left:
            await asyncio.sleep(self.every)
            keys = list(self._left)
            if not keys:
                return
            try:
                marks = await get_many(self.redis, keys)
            except RedisError:
                log.warning("could not look for cancelled jobs", exc_info=True)
                continue
            for key, mark in zip(keys, marks, strict=True):
                left = self._left.get(key)
                if mark is not None and left is not None and not left.done():
                    left.set_result(None)
