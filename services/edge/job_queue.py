"""The queue hop: put a job on its provider's stream and receive the worker's events.

Enqueueing is one Lua script (breaker, queue length, the caller's own key and the XADD), run
in the same call as the caller's admission for requests that pass the gate
(`admission_scripts.admit_then`): a job costs the edge one Redis round trip before its answer,
which comes on the edge's one reply channel (`replies.ReplyHub`). In a cluster the admission's
names, the breaker, the own keys and the stream are in different slots: the admission runs
alone, then the breaker and the own key are read together, then the script only queues.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.edge.admission import Admission, Reservation, Then
from services.edge.admission_scripts import admit_then
from services.edge.pending_job import PendingJob, error_of
from services.edge.replies import ReplyHub
from services.edge.spend import Spending
from shared.cost import to_units
from shared.delivered import delivered_usage
from shared.errors import ProviderError, ServiceUnavailable
from shared.ids import new_id
from shared.messages import (
    ChatJob,
    ErrorEvent,
    Event,
    Job,
)
from shared.redis_client import is_cluster
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest

log = logging.getLogger(__name__)


class Admit(Protocol):
    """The caller's admission (`limits.Gate.admit_then` bound to its request), running the
    enqueue script it is handed (if any) when it lets the request in: what it reserves, the
    script's answer."""

    def __call__(self, *, then: Then | None) -> Awaitable[tuple[list[Reservation], Any]]: ...


# Jobs that spend the caller's provider quota; model lists use the operator's key.
_USES_OWN_KEY = frozenset({"chat", "embeddings", "rerank", "count_tokens"})

# KEYS: the job's shard of the provider's queue, its breaker hash, the user's own keys (read
#       when ARGV[6] is '1')
# ARGV: job JSON, MAXLEN, the shard's queue limit, '1' when an open breaker does not refuse
#       (fallbacks follow, or the edge read the breaker before), provider, '1' to look up the
#       user's own key
# In a cluster the breaker and the own keys are in other slots: the edge reads them first
# (`_read_apart`) and the script only queues.
# -> {1, 0} queued; {-1, ms of cooldown left} breaker open; {-2, jobs waiting} queue full.
# The breaker reads as `Breaker.status` does (shared/breaker.py): open until its `until`.
# An own key is added to the job's JSON object as `key_id` (the edge never sets it for the
# jobs that look one up, so the field is not repeated).
_ENQUEUE = """
if ARGV[4] == '0' and redis.call('HGET', KEYS[2], 'st') == 'open' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local untl = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
  if now < untl then return {-1, untl - now} end
end
local waiting = redis.call('XLEN', KEYS[1])
if waiting >= tonumber(ARGV[3]) then return {-2, waiting} end
local job = ARGV[1]
if ARGV[6] == '1' then
  local key_id = redis.call('HGET', KEYS[3], ARGV[5])
  if key_id then job = string.sub(job, 1, -2) .. ',"key_id":' .. cjson.encode(key_id) .. '}' end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'job', job)
return {1, 0}
"""


class JobQueue:
    def __init__(
        self,
        redis: Redis,
        hub: ReplyHub,
        keys: RedisKeys,
        admission: Admission,
        *,
        timeout: float,
        maxlen: int,
        queue_limit: int,
        spending: Spending | None = None,
    ) -> None:
        self.redis = redis
        self.admission = admission
        self.spending = spending
        self.hub = hub
        self.keys = keys
        self.timeout = timeout
        self.maxlen = maxlen
        self.queue_limit = queue_limit
        self._enqueue_script = redis.register_script(_ENQUEUE)
        self._admit_and_enqueue = redis.register_script(admit_then(_ENQUEUE))
        self.cluster = is_cluster(redis)
        self._shielding: set[asyncio.Task[None]] = set()  # releases a cancellation cannot stop

    def job_fields(
        self, *, user_id: str, trace: str, traceparent: str | None = None
    ) -> dict[str, Any]:
        """What every job carries: a fresh id, the trace (and its W3C context), its deadline,
        and the channel its answer comes back on."""
        now = time.time()
        return {
            "id": new_id("job"),
            "reply_to": self.hub.channel,
            "trace": trace,
            "traceparent": traceparent,
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
        traceparent: str | None = None,
        admit: Admit | None = None,
    ) -> PendingJob:
        fields = self.job_fields(user_id=user_id, trace=trace, traceparent=traceparent)
        job = ChatJob(**fields, request=request)
        return await self.submit(job, request.provider, admit=admit)

    async def call(
        self,
        job: Job,
        provider: str,
        reservations: list[Reservation] | None = None,
        track: Callable[[PendingJob], None] | None = None,
    ) -> Event:
        """The one answer of a job that is not a chat; an error answer is raised. `track`
        is handed the job once it is queued (the audit record reads it when the request ends)."""
        pending = await self.submit(job, provider, reservations)
        if track is not None:
            track(pending)
        try:
            event = await pending.next_event()
        finally:
            await self.release(pending)
        if isinstance(event, ErrorEvent):
            raise error_of(event)
        return event

    async def submit(
        self,
        job: Job,
        provider: str,
        reservations: list[Reservation] | None = None,
        *,
        admit: Admit | None = None,
    ) -> PendingJob:
        """Enqueues `job`; the tokens `reservations` hold are settled when it is released.

        `admit`, the caller's admission, runs the enqueue script in its own call (in a cluster,
        before it): the job is enqueued only if it lets the request in, and what it reserves is
        settled with the rest.
        """
        pending = PendingJob(job, provider, self.hub.register(job.id))
        pending.reservations = list(reservations or [])
        pending.spending = self.spending
        try:
            if admit is None:
                verdict = await self._push(job, provider)
            elif not self.cluster:  # Redis failing here fails the admission, as it always did
                then = Then(self._admit_and_enqueue, *self._enqueue_call(job, provider))
                held, verdict = await admit(then=then)
                pending.reservations += held
            else:  # the admission's names and the stream's are in other slots: one, then the other
                held, _ = await admit(then=None)
                pending.reservations += held
                verdict = await self._push(job, provider)
            _refuse_unless_queued(verdict, provider)
        except BaseException:
            self.hub.drop(job.id)
            await self._shielded(self._settle(pending))
            raise
        return pending

    def _enqueue_call(
        self, job: Job, provider: str, *, apart: bool = False
    ) -> tuple[list[str], list[Any]]:
        """The enqueue script's keys and arguments for `job`. `apart`: the breaker and the own
        key were read before (`_read_apart`), the script only queues: its other names are its
        stream's."""
        stream = self.keys.jobs_for(provider, job.id)
        if apart:
            names = [stream] * 3
        else:
            names = [stream, self.keys.breaker(provider), self.keys.own_keys(job.user_id)]
        args = [
            orjson.dumps(job.model_dump(exclude_none=True)),
            self.maxlen,
            -(-self.queue_limit // self.keys.shards),  # the shard's share of the limit
            1 if apart or _skips_breaker(job) else 0,
            provider,
            1 if not apart and _looks_up(job) else 0,
        ]
        return names, args

    async def _push(self, job: Job, provider: str) -> list[int]:
        """The enqueue script's answer for `job` queued without an admission (or, in a
        cluster, after it)."""
        try:
            if not self.cluster:
                answer = await self._enqueue_script(*self._enqueue_call(job, provider))
            else:
                job, verdict, value = await self._read_apart(job, provider)
                if verdict != 1:
                    return [verdict, value]
                answer = await self._enqueue_script(*self._enqueue_call(job, provider, apart=True))
        except RedisError as exc:
            raise ServiceUnavailable("The job queue is unavailable") from exc
        return [int(v) for v in answer]

    async def _read_apart(self, job: Job, provider: str) -> tuple[Job, int, int]:
        """In a cluster: the caller's own key and the breaker, read together before the
        job is queued (they live in other slots than its stream). The job with its own key,
        and the enqueue script's verdict on the breaker: {1, 0} or {-1, ms of cooldown left}."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.own_keys(job.user_id), provider)
            pipe.hmget(self.keys.breaker(provider), ["st", "until"])
            key_id, (state, until) = await pipe.execute()
        if _looks_up(job) and key_id is not None:
            job = job.model_copy(update={"key_id": key_id.decode()})
        left = int(until or 0) - int(time.time() * 1000)  # this host's clock for Redis TIME
        if not _skips_breaker(job) and state == b"open" and left > 0:
            return job, -1, left
        return job, 1, 0

    async def release(self, pending: PendingJob) -> None:
        """Stops listening for the job and settles what it reserved.

        A stream is released while its request is being cancelled (its client left), so the
        Redis work runs in a task of its own that the cancellation cannot cut short. Only the
        first call does anything.
        """
        if pending.released:
            return
        pending.released = True
        left = not pending.answered and pending.error_type is None
        if left and pending.delivered_chars and isinstance(pending.job, ChatJob):
            # The client left mid-stream: it is billed for what it was sent. A stream the
            # deadline cut (no answer in time) failed, as when the worker says so: no charge.
            usage = delivered_usage(pending.job.request, pending.delivered_chars)
            pending.usage, pending.used_tokens = usage, usage.total_tokens
            pending.price(pending.provider, None, None)
        await self._shielded(self._release(pending))

    async def _release(self, pending: PendingJob) -> None:
        job = pending.job
        self.hub.drop(job.id)
        if not pending.answered:  # the worker may still be at work: it stops when it sees this
            ttl_ms = max(1000, int((job.deadline - time.time()) * 1000))
            try:
                await self.redis.set(self.keys.cancelled(job.id), b"1", px=ttl_ms)
            except RedisError:
                log.warning("could not mark a job cancelled", exc_info=True)
        await self._settle(pending)

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        """Runs `work` to its end even when the caller is cancelled."""
        task = asyncio.ensure_future(work)
        self._shielding.add(task)
        task.add_done_callback(self._shielding.discard)
        await asyncio.shield(task)

    async def _settle(self, pending: PendingJob) -> None:
        now = int(time.time() * 1000)
        held, pending.reservations = pending.reservations, []
        cost = to_units(pending.cost) if pending.cost else 0
        for reservation in held:
            try:
                settled = await self.admission.settle(reservation, pending.used_tokens, now, cost)
            except RedisError:
                log.warning("could not settle a reservation", exc_info=True)
                continue
            if settled is not None:
                pending.budgets.append(settled.state())
                if settled.crossed and self.spending is not None:
                    await self.spending.alert(settled, pending.job)


def _looks_up(job: Job) -> bool:
    """Whether the enqueue adds the caller's own provider key to `job`."""
    return job.key_id is None and job.kind in _USES_OWN_KEY


def _skips_breaker(job: Job) -> bool:
    """Whether an open breaker lets `job` through: its fallbacks follow."""
    return isinstance(job, ChatJob) and bool(job.request.fallbacks)


def _refuse_unless_queued(answer: list[int], provider: str) -> None:
    """Raises why the enqueue script did not queue the job: its provider's breaker is open,
    or too many jobs wait."""
    verdict, value = answer
    if verdict == -1:
        raise ProviderError(
            f"{provider} is failing; its circuit is open",
            status=503,
            retry_after=max(1.0, int(value) / 1000),
            details={"provider": provider, "circuit": "open"},
        )
    if verdict == -2:
        raise ProviderError(
            f"Too many requests are waiting for {provider}; retry shortly",
            status=503,
            retry_after=1,
            details={"provider": provider, "waiting": int(value)},
        )
