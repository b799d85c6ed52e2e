"""One audit record per API request, sent to Redis after the response has ended.

`AuditMiddleware` puts an `AuditContext` in the request's state; the routes fill it (`note`,
`track`) with the caller, provider, model, job and usage. When the last byte has been sent (or
the client left), the record is handed to `AuditEmitter`, which XADDs it, batched with others,
from a background task: the request never waits for, or fails because of, the audit stream.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
from fastapi import Request
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import audit
from shared.audit import AuditRecord, CacheResult, Outcome
from shared.budgets import BudgetState
from shared.metrics import EdgeMetrics, provider_label
from shared.redis_client import is_cluster
from shared.redis_keys import RedisKeys
from shared.schemas import Usage

log = logging.getLogger(__name__)

_STATE = "audit"
_AUDITED_PREFIXES = ("/api/", "/v1/")
_NOT_AUDITED = ("/api/v1/health",)
_MAX_ERROR_BODY = 16_384
_MAX_PATH = 256
_ATTEMPTS = 3
KEY_SPEND_TTL_SECONDS = 2 * 86_400
_BATCH = 500  # records per pipelined round trip


class TrackedJob(Protocol):
    """What the audit needs of a job (`pending_job.PendingJob`)."""

    @property
    def usage(self) -> Usage | None: ...

    @property
    def error_type(self) -> str | None: ...

    @property
    def waited(self) -> float: ...

    @property
    def cost(self) -> Decimal | None: ...

    @property
    def budgets(self) -> list[BudgetState]: ...

    @property
    def priced_as(self) -> tuple[str, str | None, str | None] | None: ...

    @property
    def cost_model(self) -> str | None: ...


@dataclass
class AuditContext:
    user_id: str | None = None
    api_key_id: str | None = None
    provider: str | None = None
    model: str | None = None
    job_id: str | None = None
    usage: Usage | None = None
    error_type: str | None = None
    cache: CacheResult | None = None
    job: TrackedJob | None = None

    def settled_usage(self) -> Usage:
        if self.usage is not None:
            return self.usage
        if self.job is not None and self.job.usage is not None:
            return self.job.usage
        return Usage()

    def settled_cost(self) -> float | None:
        """What the request cost (nothing without a job); None: its model has no price."""
        cost = self.job.cost if self.job is not None else Decimal(0)
        return None if cost is None else float(cost)


def context_of(request: Request) -> AuditContext:
    """This request's audit context (a detached one where the middleware is not installed)."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    context = state.get(_STATE)
    if not isinstance(context, AuditContext):
        context = state[_STATE] = AuditContext()
    return context


def note(request: Request, **fields: Any) -> None:
    """Record what is known so far (`user_id`, `provider`, `model`, `usage`, `cache`...)."""
    context = context_of(request)
    for name, value in fields.items():
        setattr(context, name, value)


def track(request: Request, job_id: str, job: TrackedJob) -> None:
    """The job running this request: its usage and error are read when the request ends."""
    context = context_of(request)
    context.job, context.job_id = job, job_id


@dataclass
class AuditEmitter:
    """XADDs records from one background task, each batch one script (`CAPPED_XADD`, by its
    SHA1) in one round trip.

    A record is written as soon as no write is in flight; the records that arrive during a
    write go together in the next one. So an edge that dies loses at most the records it was
    writing at that moment, and under load records still share round trips. At most `backlog`
    records wait at once (while Redis is unreachable), and at most `maxlen` wait in the stream
    (while the audit service cannot store them); each record left out is counted in `lost`
    (`gateway_audit_records_dropped_total`) by reason.
    """

    redis: Redis
    keys: RedisKeys
    backlog: int = 10_000
    maxlen: int = 100_000
    lost: Counter | None = None
    emitted: int = 0
    failed: int = 0
    dropped: int = 0
    _waiting: list[AuditRecord] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None

    def _drop(self, reason: str, count: int = 1) -> None:
        if self.lost is not None:
            self.lost.labels(reason).inc(count)

    def submit(self, record: AuditRecord) -> None:
        if len(self._waiting) >= self.backlog:
            self.dropped += 1
            self._drop("backlog_full")
            log.error("audit backlog full: record of %s dropped", record.trace_id)
            return
        self._waiting.append(record)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def _tally_keys(self, pipe: Any, batch: list[AuditRecord]) -> int:
        """Adds each gateway API key's spend to today's tally (`RedisKeys.key_spend`, read by
        the `gateway_key_spend_today_usd` gauge); returns how many commands it queued."""
        spend: dict[str, float] = {}
        for record in batch:
            if record.api_key_id and record.cost_usd and record.event is None:
                spend[record.api_key_id] = spend.get(record.api_key_id, 0.0) + record.cost_usd
        if not spend:
            return 0
        name = self.keys.key_spend(datetime.now(UTC).date().isoformat())
        for key_id, cost in spend.items():
            pipe.zincrby(name, cost, key_id)
        pipe.expire(name, KEY_SPEND_TTL_SECONDS)
        return len(spend) + 1

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:_BATCH], self._waiting[_BATCH:]
                await self._write(batch)
        finally:
            self._flusher = None

    async def _write(self, batch: list[AuditRecord]) -> None:
        """Retries the batch if Redis did not take it; failed records are counted and logged."""
        stream = self.keys.audit()
        entries = [audit.encode(record) for record in batch]
        width = 2 * len(entries[0])
        args = [v for fields in entries for pair in fields.items() for v in pair]
        tally = batch
        for attempt in range(_ATTEMPTS):
            try:
                # EVALSHA queued by hand: a registered script in a pipeline checks the script
                # cache first, a round trip more per batch. A cluster's pipeline takes EVAL.
                async with self.redis.pipeline(transaction=False) as pipe:
                    if is_cluster(self.redis):
                        pipe.eval(audit.CAPPED_XADD, 1, stream, self.maxlen, width, *args)
                    else:
                        pipe.evalsha(audit.CAPPED_XADD_SHA, 1, stream, self.maxlen, width, *args)
                    self._tally_keys(pipe, tally)
                    tally = []  # counted with the first attempt only
                    added = (await pipe.execute(raise_on_error=False))[0]
            except RedisError as exc:
                added = exc
            if not isinstance(added, Exception):
                full = len(batch) - int(added)
                if full:
                    self.dropped += full
                    self._drop("stream_full", full)
                    log.error("audit stream full: %d records dropped", full)
                self.emitted += int(added)
                return
            if isinstance(added, NoScriptError):  # a Redis that never ran it, or restarted
                with contextlib.suppress(RedisError):
                    await self.redis.script_load(audit.CAPPED_XADD)
            elif attempt + 1 < _ATTEMPTS:
                await asyncio.sleep(0.1 * 2**attempt)
        self.failed += len(batch)
        self._drop("write_failed", len(batch))
        for record in batch:
            log.error("audit record of %s not written", record.trace_id)

    async def drain(self, grace: float = 5.0) -> None:
        """Writes the records still waiting (at shutdown)."""
        if self._flusher is not None:
            await asyncio.wait({self._flusher}, timeout=grace)


def audited(path: str) -> bool:
    return path.startswith(_AUDITED_PREFIXES) and not path.startswith(_NOT_AUDITED)


def _error_type(body: bytes) -> str | None:
    try:
        found = orjson.loads(body)["error"]["type"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return found if isinstance(found, str) else None


@dataclass
class _Exchange:
    """What the middleware saw of one request/response."""

    started: float = field(default_factory=time.time)
    clock: float = field(default_factory=time.perf_counter)
    status: int = 500
    ended: float | None = None
    first_chunk: float | None = None  # a streamed answer's first body bytes (its first delta)
    disconnected: bool = False
    failed: bool = False  # the app raised
    error_body: bytearray = field(default_factory=bytearray)

    def outcome(self, context: AuditContext) -> Outcome:
        if self.disconnected and self.ended is None:
            return "cancelled"
        if self.failed or self.status >= 400 or context.error_type or self._job_error(context):
            return "error"
        return "success"

    @staticmethod
    def _job_error(context: AuditContext) -> str | None:
        return context.job.error_type if context.job is not None else None

    def record(self, scope: Scope, context: AuditContext) -> AuditRecord:
        usage = context.settled_usage()
        ended = self.ended if self.ended is not None else time.perf_counter()
        outcome = self.outcome(context)
        error_type = None
        if outcome == "error":
            error_type = context.error_type or self._job_error(context)
            error_type = error_type or _error_type(bytes(self.error_body)) or "internal_error"
        return AuditRecord(
            trace_id=scope.get("state", {}).get("trace_id") or "unknown",
            ts=self.started,
            method=scope["method"],
            path=scope["path"][:_MAX_PATH],
            status=self.status,
            outcome=outcome,
            duration_ms=round((ended - self.clock) * 1000, 3),
            user_id=context.user_id,
            api_key_id=context.api_key_id,
            provider=context.provider,
            model=context.model,
            job_id=context.job_id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            error_type=error_type,
            cache=context.cache,
            cached_tokens=(usage.prompt_tokens_details or {}).get("cached_tokens") or None,
            cost_usd=context.settled_cost(),
        )


class AuditMiddleware:
    """Sits inside the trace middleware (it needs the trace id) and outside everything else."""

    def __init__(
        self,
        app: ASGIApp,
        emitter: AuditEmitter,
        metrics: EdgeMetrics,
        on_job: Callable[[TrackedJob], None] | None = None,
    ) -> None:
        self.app = app
        self.emitter = emitter
        self.metrics = metrics
        self.on_job = on_job  # handed every job a request ran, as it ends (its cost's metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited(scope["path"]):
            await self.app(scope, receive, send)
            return
        context = AuditContext()
        scope.setdefault("state", {})[_STATE] = context
        seen = _Exchange()
        responded = False

        async def watch_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen.disconnected = True
            return message

        async def watch_send(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                seen.status, responded = message["status"], True
            elif message["type"] == "http.response.body":
                if seen.status >= 400 and len(seen.error_body) < _MAX_ERROR_BODY:
                    seen.error_body += message.get("body", b"")[:_MAX_ERROR_BODY]
                elif seen.first_chunk is None and message.get("more_body", False):
                    seen.first_chunk = time.perf_counter()
                    self._first_token(context, seen.first_chunk - seen.clock)
                if not message.get("more_body", False) and not seen.disconnected:
                    seen.ended = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, watch_receive, watch_send)
        except BaseException:
            seen.failed = not seen.disconnected
            if not responded:
                seen.status = 500
            raise
        finally:
            self._submit(scope, seen, context)

    def _submit(self, scope: Scope, seen: _Exchange, context: AuditContext) -> None:
        try:
            record = seen.record(scope, context)
        except Exception:
            log.exception("audit record not built")
            return
        self.emitter.submit(record)
        self.metrics.observe(
            provider=record.provider,
            status=record.status,
            seconds=record.duration_ms / 1000,
            error_type=record.error_type,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            waited=None if context.job is None else context.job.waited,
        )
        if self.on_job is not None and context.job is not None:
            self.on_job(context.job)

    def _first_token(self, context: AuditContext, seconds: float) -> None:
        """Observed as a streamed answer's first bytes (its first delta) are written: only
        chat streams are sent in parts, and their provider is known (and checked) by then."""
        if context.provider is not None:
            self.metrics.first_token.labels(provider_label(context.provider)).observe(seconds)
