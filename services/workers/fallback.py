"""Gateway-level fallbacks: a chat job that failed on its provider with a retryable error (or
an open circuit) before anything was streamed moves to the next `request.fallbacks` entry.

The job keeps its id (so its reply channel, where the edge is listening), trace and deadline;
its request is rewritten to the fallback's provider and model with the remaining fallbacks;
it uses the caller's own key for that provider when they stored one (`own_keys`), else the
operator's. It is added to that provider's stream in the same MULTI that acknowledges and
deletes the original entry, so the job is never lost nor doubled.
"""

import logging
import time

from redis.asyncio import Redis

from services.workers.retry import is_retryable
from shared.messages import ChatJob, ErrorEvent, Job, encode
from shared.providers import PROVIDERS
from shared.redis_client import writes
from shared.redis_keys import WORKER_GROUP, RedisKeys

log = logging.getLogger(__name__)


def should_fall_back(job: Job, event: ErrorEvent, streamed: bool) -> bool:
    return (
        isinstance(job, ChatJob)
        and bool(job.request.fallbacks)
        and not streamed
        and job.deadline > time.time()
        and is_retryable(event.type, event.status, event.details)
    )


def next_job(job: ChatJob) -> ChatJob | None:
    """The job rewritten for the first usable fallback (unknown providers are skipped)."""
    remaining = list(job.request.fallbacks or [])
    while remaining:
        provider, _, model = remaining.pop(0).partition("/")
        if provider in PROVIDERS and model:
            request = job.request.model_copy(
                update={"provider": provider, "model": model, "fallbacks": remaining or None}
            )
            return job.model_copy(update={"request": request, "key_id": None})
        log.warning("skipping unusable fallback %s/%s", provider, model)
    return None


async def forward(
    redis: Redis, keys: RedisKeys, job: ChatJob, stream: str, entry_id: bytes, maxlen: int
) -> str | None:
    """Moves `job` (entry `entry_id` of `stream`) to its next fallback; the provider it went
    to, or None when no fallback is usable (the entry is then left as it was)."""
    moved = next_job(job)
    if moved is None:
        return None
    provider = moved.request.provider
    key_id = await redis.hget(keys.own_keys(job.user_id), provider)
    if key_id is not None:
        moved = moved.model_copy(
            update={"key_id": key_id.decode() if isinstance(key_id, bytes) else key_id}
        )
    async with writes(redis) as pipe:
        stream_to = keys.jobs_for(provider, moved.id)
        pipe.xadd(stream_to, {"job": encode(moved)}, maxlen=maxlen, approximate=True)
        pipe.xack(stream, WORKER_GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        await pipe.execute()
    log.info("job %s falls back to %s/%s", job.id, provider, moved.request.model)
    return provider
