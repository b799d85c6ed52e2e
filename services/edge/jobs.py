"""The queue hop: put a job on its provider's stream and receive the worker's events."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.edge.admission import Admission, Reservation
from services.edge.replies import ReplyHub
from shared.breaker import Breaker
from shared.errors import ProviderError, ServiceUnavailable, rebuild
from shared.ids import new_id
from shared.messages import (
    ChatJob,
    DoneEvent,
    EmbeddingsResult,
    ErrorEvent,
    Event,
    Job,
    decode_event,
)
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest, Usage

log = logging.getLogger(__name__)

# Jobs that spend the caller's provider quota; model lists use the operator's key.
_USES_OWN_KEY = frozenset({"chat", "embeddings", "rerank"})


@dataclass
class PendingJob:
    job: Job
    provider: str
    channel: str
    events: asyncio.Queue[bytes]
    reservations: list[Reservation] = field(default_factory=list)
    used_tokens: int = 0  # what the provider reported, settled against the reservations
    usage: Usage | None = None  # the audit record reads these two when the request ends
    error_type: str | None = None

    def _decode(self, raw: bytes) -> Event:
        event = decode_event(raw)
        if isinstance(event, DoneEvent | EmbeddingsResult):
            self.used_tokens, self.usage = event.usage.total_tokens, event.usage
        elif isinstance(event, ErrorEvent):
            self.error_type = event.type
        return event

    def chat_request(self) -> ChatRequest:
        assert isinstance(self.job, ChatJob)
        return self.job.request

    async def next_event(self) -> Event:
        remaining = self.job.deadline - time.time()
        try:
            raw = await asyncio.wait_for(self.events.get(), max(remaining, 0.001))
        except TimeoutError:
            self.error_type = ProviderError.type
            raise ProviderError(
                "The provider did not answer in time",
                status=504,
                details={"provider": self.provider},
            ) from None
        return self._decode(raw)

    def ready_events(self) -> list[Event]:
        ready = []
        while not self.events.empty():
            ready.append(self._decode(self.events.get_nowait()))
        return ready


class JobQueue:
    def __init__(
        self,
        redis: Redis,
        hub: ReplyHub,
        keys: RedisKeys,
        admission: Admission,
        breaker: Breaker,
        *,
        timeout: float,
        maxlen: int,
        queue_limit: int,
    ) -> None:
        self.redis = redis
        self.admission = admission
        self.breaker = breaker
        self.hub = hub
        self.keys = keys
        self.timeout = timeout
        self.maxlen = maxlen
        self.queue_limit = queue_limit

    def job_fields(self, *, user_id: str, trace: str) -> dict[str, Any]:
        """What every job carries: a fresh id, the trace, and its deadline."""
        now = time.time()
        return {
            "id": new_id("job"),
            "trace": trace,
            "ts": now,
            "deadline": now + self.timeout,
            "user_id": user_id,
        }

    async def submit_chat(
        self,
        request: ChatRequest,
        *,
        user_id: str,
        trace: str,
        reservations: list[Reservation] | None = None,
    ) -> PendingJob:
        job = ChatJob(**self.job_fields(user_id=user_id, trace=trace), request=request)
        return await self.submit(job, request.provider, reservations)

    async def call(
        self, job: Job, provider: str, reservations: list[Reservation] | None = None
    ) -> Event:
        """The one answer of a job that is not a chat; an error answer is raised."""
        pending = await self.submit(job, provider, reservations)
        try:
            event = await pending.next_event()
        finally:
            await self.release(pending)
        if isinstance(event, ErrorEvent):
            raise_error(event)
        return event

    async def own_key(self, job: Job, provider: str) -> str | None:
        """The id of the caller's own key for `provider`, if the job should use one."""
        if job.key_id is not None or job.kind not in _USES_OWN_KEY:
            return job.key_id
        key_id = await self.redis.hget(self.keys.own_keys(job.user_id), provider)
        return key_id.decode() if isinstance(key_id, bytes) else key_id

    async def submit(
        self, job: Job, provider: str, reservations: list[Reservation] | None = None
    ) -> PendingJob:
        """Enqueues `job`; the tokens `reservations` hold are settled when it is released."""
        pending = PendingJob(job, provider, self.keys.reply(job.id), asyncio.Queue())
        pending.reservations = list(reservations or [])  # the queue is replaced once subscribed
        try:
            return await self._enqueue(pending)
        except BaseException:
            await self._settle(pending)
            raise

    async def _enqueue(self, pending: PendingJob) -> PendingJob:
        job, provider, channel = pending.job, pending.provider, pending.channel
        # The key lookup, queue length and breaker state ride along with the subscription.
        try:
            events, key_id, waiting, (circuit, wait) = await asyncio.gather(
                self.hub.subscribe(channel),
                self.own_key(job, provider),
                self.redis.xlen(self.keys.jobs(provider)),
                self.breaker.status(provider),
            )
        except RedisError as exc:
            await self.hub.unsubscribe(channel)
            raise ServiceUnavailable("The job queue is unavailable") from exc
        if circuit == "open" and not (isinstance(job, ChatJob) and job.request.fallbacks):
            await self.hub.unsubscribe(channel)
            raise ProviderError(
                f"{provider} is failing; its circuit is open",
                status=503,
                retry_after=max(1.0, wait),
                details={"provider": provider, "circuit": "open"},
            )
        if waiting >= self.queue_limit:
            await self.hub.unsubscribe(channel)
            raise ProviderError(
                f"Too many requests are waiting for {provider}; retry shortly",
                status=503,
                retry_after=1,
                details={"provider": provider, "waiting": waiting},
            )
        if key_id != job.key_id:
            job = job.model_copy(update={"key_id": key_id})
        try:
            await self.redis.xadd(
                self.keys.jobs(provider),
                {"job": orjson.dumps(job.model_dump(exclude_none=True))},
                maxlen=self.maxlen,
                approximate=True,
            )
        except RedisError as exc:
            await self.hub.unsubscribe(channel)
            raise ServiceUnavailable("The job queue is unavailable") from exc
        pending.job, pending.events = job, events
        return pending

    async def release(self, pending: PendingJob) -> None:
        await self.hub.unsubscribe(pending.channel)
        await self._settle(pending)

    async def _settle(self, pending: PendingJob) -> None:
        now = int(time.time() * 1000)
        held, pending.reservations = pending.reservations, []
        for reservation in held:
            try:
                await self.admission.settle(reservation, pending.used_tokens, now)
            except RedisError:
                log.warning("could not settle a token reservation", exc_info=True)


def raise_error(event: ErrorEvent) -> None:
    raise rebuild(
        event.type,
        event.message,
        event.status,
        details=event.details,
        retry_after=event.retry_after,
    )
