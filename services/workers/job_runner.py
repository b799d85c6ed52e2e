"""Runs one job of any kind against the provider: the one place jobs are dispatched on `kind`.

A chat job streams its deltas through the publisher and ends with a `DoneEvent` naming the
provider that answered; every other kind answers with its one result. Upstream calls go
through the provider's circuit breaker and are retried (`retry.py`), a chat only until its
first delta was handed to the publisher. Upstream calls are cancelled when the client leaves
(`cancel.py`); a cut stream's `ListenerGone` error carries the usage of what was delivered, for
whoever reads the job's outcome (it is logged at DEBUG). Failures come back as the
`ErrorEvent` to send.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from services.workers.cancel import ClientWatch, ListenerGone
from services.workers.credentials import KeyClient
from services.workers.providers.base import ProviderAdapter
from services.workers.publisher import ReplyPublisher
from services.workers.retry import UpstreamGuard
from shared.delivered import delivered_usage
from shared.errors import GatewayError, InvalidRequest
from shared.messages import (
    ChatJob,
    CountTokensJob,
    DoneEvent,
    EmbeddingsJob,
    ErrorEvent,
    Event,
    Job,
    KeyCheckJob,
    ModelsJob,
    RerankJob,
)
from shared.metrics import WorkerMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class ProviderClock:
    """The seconds one job spent on its provider: every guarded call, with its retries and
    their back-off, and the key check. The rest of the job's time is the worker's overhead."""

    seconds: float = 0.0

    async def time(self, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.seconds += time.perf_counter() - started


@dataclass(frozen=True)
class JobRunner:
    adapter: ProviderAdapter
    key_client: KeyClient
    guard: UpstreamGuard
    clients: ClientWatch
    metrics: WorkerMetrics

    async def run(self, job: Job, publisher: ReplyPublisher) -> Event:
        """The terminal event of `job`: its result or an `ErrorEvent`."""
        provider, metrics = self.adapter.provider.id, self.metrics
        metrics.queue_wait.labels(provider).observe(max(0.0, time.time() - job.ts))
        started, clock = time.perf_counter(), ProviderClock()
        with metrics.in_flight.labels(provider).track_inprogress():
            event = await self._run(job, publisher, clock)
        took = time.perf_counter() - started
        if clock.seconds:
            metrics.upstream_latency.labels(provider, job.kind).observe(clock.seconds)
        metrics.overhead.labels(provider).observe(max(0.0, took - clock.seconds))
        outcome = "error" if isinstance(event, ErrorEvent) else "success"
        metrics.jobs.labels(provider, job.kind, outcome).inc()
        return event

    async def _run(self, job: Job, publisher: ReplyPublisher, clock: ProviderClock) -> Event:
        if job.deadline < time.time():
            return ErrorEvent(
                type="provider_error", message="The request expired in the queue", status=504
            )
        try:
            # REQUEST_TIMEOUT bounds a job to its last byte: a provider streaming (or stalling
            # with keep-alives) past it is cut here, whether or not the client still listens.
            async with asyncio.timeout(job.deadline - time.time()):
                return await self.dispatch(job, publisher, clock)
        except TimeoutError:
            provider = self.adapter.provider
            return ErrorEvent(
                type="provider_error",
                message=f"{provider.name} did not finish before the request's deadline",
                status=504,
                details={"provider": provider.id},
            )
        except GatewayError as exc:
            return ErrorEvent(
                type=exc.type,
                message=exc.message,
                status=exc.status,
                details=exc.details,
                retry_after=exc.retry_after,
            )
        except Exception:
            log.exception("job failed unexpectedly")
            return ErrorEvent(type="internal_error", message="Internal error", status=500)

    async def dispatch(self, job: Job, publisher: ReplyPublisher, clock: ProviderClock) -> Event:
        adapter = await self.with_credentials(job)
        if isinstance(job, KeyCheckJob):
            return await clock.time(adapter.check_key(job.trace))
        if isinstance(job, ChatJob):
            adapter.require("chat")
            return await self.chat(adapter, job, publisher, clock)
        if isinstance(job, EmbeddingsJob):
            adapter.require("embeddings")
            request = job.request
            return await self.answer(
                job, publisher, clock, lambda: adapter.embeddings(request, job.trace)
            )
        if isinstance(job, RerankJob):
            adapter.require("rerank")
            rerank = job.request
            return await self.answer(
                job, publisher, clock, lambda: adapter.rerank(rerank, job.trace)
            )
        if isinstance(job, CountTokensJob):
            counted = job.request
            return await self.answer(
                job, publisher, clock, lambda: adapter.count_tokens(counted, job.trace)
            )
        if isinstance(job, ModelsJob):
            return await self.answer(job, publisher, clock, lambda: adapter.models(job.trace))
        raise GatewayError(f"Unknown job kind {job.kind}")

    async def with_credentials(self, job: Job) -> ProviderAdapter:
        """The adapter calling with the key the job names (the caller's own), else the
        operator's."""
        adapter, provider = self.adapter, self.adapter.provider
        if job.key_id is not None:
            secret = await self.key_client.user_key(
                job.key_id, job.user_id, provider=provider.id, trace=job.trace
            )
            return adapter.with_key(secret)
        if isinstance(job, KeyCheckJob) or not adapter.api_key:
            raise InvalidRequest(
                f"No {provider.name} key is configured: add your own with POST /api/v1/keys",
                details={"provider": provider.id},
            )
        return adapter

    async def answer(
        self,
        job: Job,
        publisher: ReplyPublisher,
        clock: ProviderClock,
        call: Callable[[], Awaitable[T]],
    ) -> T:
        """One guarded upstream call whose answer is all the job publishes: cancelled, with
        its retries, when the client leaves."""
        guarded = self.guard.call(call, deadline=job.deadline)
        return await self.clients.unless_client_leaves(job.id, clock.time(guarded))

    async def chat(
        self,
        adapter: ProviderAdapter,
        job: ChatJob,
        publisher: ReplyPublisher,
        clock: ProviderClock,
    ) -> DoneEvent:
        request = job.request
        if not request.stream:
            done = await self.answer(
                job, publisher, clock, lambda: adapter.complete(request, job.trace)
            )
        else:

            async def attempt() -> DoneEvent:
                async with aclosing(adapter.stream(request, job.trace)) as events:
                    async for event in events:
                        if isinstance(event, DoneEvent):
                            return event
                        publisher.delta(event)
                        if publisher.client_gone:
                            break
                raise ListenerGone()

            can_retry = lambda: not publisher.started  # noqa: E731
            guarded = self.guard.call(attempt, deadline=job.deadline, can_retry=can_retry)
            try:
                # Also watched while no delta flows, e.g. before a slow first token.
                done = await self.clients.unless_client_leaves(job.id, clock.time(guarded))
            except ListenerGone:
                usage = delivered_usage(request, publisher.delivered_chars)
                log.debug("stream cut by the client; delivered usage %s", usage.model_dump())
                raise ListenerGone(usage) from None
        return done.model_copy(
            update={"provider": adapter.provider.id, "request_model": request.model}
        )
