"""Runs one job of any kind against the provider: the one place jobs are dispatched on `kind`.

A chat job streams its deltas through the publisher and ends with a `DoneEvent`; every other
kind answers with its one result. Failures come back as the `ErrorEvent` to send.
"""

import logging
import time
from contextlib import aclosing

from services.workers.credentials import KeyClient
from services.workers.providers.base import ProviderAdapter
from services.workers.publisher import ReplyPublisher
from shared.errors import GatewayError, ProviderError, ValidationError
from shared.messages import (
    ChatJob,
    DoneEvent,
    EmbeddingsJob,
    ErrorEvent,
    Event,
    Job,
    KeyCheckJob,
    ModelsJob,
    RerankJob,
)

log = logging.getLogger(__name__)


async def run_chat(adapter: ProviderAdapter, job: ChatJob, publisher: ReplyPublisher) -> Event:
    if not job.request.stream:
        return await adapter.complete(job.request, job.trace)
    async with aclosing(adapter.stream(job.request, job.trace)) as events:
        async for event in events:
            if isinstance(event, DoneEvent):
                return event
            publisher.delta(event)
            if publisher.client_gone:
                break
    raise ProviderError("The client went away", status=499)


async def with_credentials(adapter: ProviderAdapter, job: Job, keys: KeyClient) -> ProviderAdapter:
    """The adapter calling with the key the job names (the caller's own), else the operator's."""
    provider = adapter.provider
    if job.key_id is not None:
        secret = await keys.user_key(job.key_id, job.user_id, provider=provider.id, trace=job.trace)
        return adapter.with_key(secret)
    if isinstance(job, KeyCheckJob) or not adapter.api_key:
        raise ValidationError(
            f"No {provider.name} key is configured: add your own with POST /api/v1/keys",
            details={"provider": provider.id},
        )
    return adapter


async def dispatch(
    adapter: ProviderAdapter, job: Job, publisher: ReplyPublisher, keys: KeyClient
) -> Event:
    adapter = await with_credentials(adapter, job, keys)
    if isinstance(job, KeyCheckJob):
        return await adapter.check_key(job.trace)
    if isinstance(job, ChatJob):
        adapter.require("chat")
        return await run_chat(adapter, job, publisher)
    if isinstance(job, EmbeddingsJob):
        adapter.require("embeddings")
        return await adapter.embeddings(job.request, job.trace)
    if isinstance(job, RerankJob):
        adapter.require("rerank")
        return await adapter.rerank(job.request, job.trace)
    if isinstance(job, ModelsJob):
        return await adapter.models(job.trace)
    raise GatewayError(f"Unknown job kind {job.kind}")


async def run_job(
    adapter: ProviderAdapter, job: Job, publisher: ReplyPublisher, keys: KeyClient
) -> Event:
    """The terminal event of `job`: its result or an `ErrorEvent`."""
    if job.deadline < time.time():
        return ErrorEvent(
            type="provider_error", message="The request expired in the queue", status=504
        )
    try:
        return await dispatch(adapter, job, publisher, keys)
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
