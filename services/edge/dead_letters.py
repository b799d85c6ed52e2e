"""Dead letters, for admins only: the jobs that failed every delivery (their worker died each
time, see `services/workers/recovery.py`), listed with their last error, retried or dropped.

A listing shows what a job was (kind, provider, model, user, trace), never its prompt. A retry
takes the job off the dead-letter stream and runs it again as a new job with a fresh deadline,
waiting for its outcome as a request would (a worker stops a job nobody listens to); the
answer says whether it succeeded, never what the provider answered. Were the job to die again,
recovery sets it aside anew.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from redis.exceptions import RedisError

from services.edge.admin import AdminDep
from services.edge.audit import note
from services.edge.deps import components
from services.edge.job_queue import JobQueue
from shared.errors import GatewayError, InvalidRequest, NotFoundError, ServiceUnavailable
from shared.http import trace_id
from shared.messages import DeltaEvent, DoneEvent, EmbeddingsResult, ErrorEvent, Job, decode_job
from shared.providers import PROVIDERS
from shared.redis_keys import RedisKeys
from shared.schemas import Usage

router = APIRouter(tags=["admin"])

ENTRY_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"
EntryId = Annotated[str, Path(pattern=ENTRY_ID)]
_MAX_LIST = 500


def provider_of(name: str) -> str:
    if name not in PROVIDERS:
        raise InvalidRequest(
            f"Unknown provider '{name[:64]}'",
            details={"available_providers": list(PROVIDERS)},
        )
    return name


def _text(value: bytes | None) -> str | None:
    return value.decode(errors="replace") if value is not None else None


def letter_view(provider: str, entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """What an operator sees of one dead letter: never the request's messages or inputs."""
    view: dict[str, Any] = {
        "id": entry_id.decode(),
        "provider": provider,
        "error": _text(fields.get(b"error")),
        "deliveries": int(fields.get(b"deliveries", b"0") or 0),
        "failed_at": float(fields.get(b"ts", b"0") or 0),
    }
    try:
        job = decode_job(fields.get(b"job", b""))
    except ValueError:
        return {**view, "kind": None, "job_id": None, "user_id": None, "trace_id": None}
    body = getattr(job, "request", None)
    return {
        **view,
        "kind": job.kind,
        "job_id": job.id,
        "user_id": job.user_id,
        "trace_id": job.trace,
        "model": getattr(body, "model", None),
        "stream": bool(getattr(body, "stream", False)),
    }


@router.get("/api/v1/admin/dead-letters")
async def list_dead_letters(
    request: Request,
    caller: AdminDep,
    provider: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_LIST)] = 100,
) -> dict[str, Any]:
    """Admins only: the newest dead letters (of one provider, or of all), newest first."""
    keys: RedisKeys = components(request).keys
    providers = [provider_of(provider)] if provider else list(PROVIDERS)
    try:
        async with components(request).redis.pipeline(transaction=False) as pipe:
            for name in providers:
                pipe.xrevrange(keys.dead_letters(name), count=limit)
            answers = await pipe.execute()
    except RedisError as exc:
        raise ServiceUnavailable("The gateway's Redis is unavailable") from exc
    letters = [
        letter_view(name, entry_id, fields)
        for name, entries in zip(providers, answers, strict=True)
        for entry_id, fields in entries
    ]
    letters.sort(key=lambda letter: letter["failed_at"], reverse=True)
    return {"dead_letters": letters[:limit]}


async def take(request: Request, provider: str, entry_id: str) -> dict[Any, Any]:
    """Removes one dead letter and returns its fields; 404 if it is not (or no longer) there,
    so two admins retrying the same letter run it once."""
    redis = components(request).redis
    stream = components(request).keys.dead_letters(provider)
    try:
        entries = await redis.xrange(stream, min=entry_id, max=entry_id, count=1)
        if not entries or not await redis.xdel(stream, entry_id):
            raise NotFoundError("Dead letter not found", details={"id": entry_id})
    except RedisError as exc:
        raise ServiceUnavailable("The gateway's Redis is unavailable") from exc
    fields: dict[Any, Any] | None = entries[0][1]
    if fields is None:  # the entry was trimmed away while we read it
        raise NotFoundError("Dead letter not found", details={"id": entry_id})
    return fields


@router.delete("/api/v1/admin/dead-letters/{provider}/{entry_id}", status_code=204)
async def drop_dead_letter(
    provider: str, entry_id: EntryId, request: Request, caller: AdminDep
) -> Response:
    """Admins only: drop a dead letter for good."""
    await take(request, provider_of(provider), entry_id)
    return Response(status_code=204)


async def outcome(queue: JobQueue, job: Job, provider: str) -> tuple[dict[str, Any], Usage | None]:
    """Runs `job` and waits for its last event: success (with its usage), or the error it
    ended with."""
    pending = await queue.submit(job, provider)
    try:
        event = await pending.next_event()
        while isinstance(event, DeltaEvent):
            event = await pending.next_event()
    except GatewayError as exc:
        return {"outcome": "error", "error": {"type": exc.type, "message": exc.message}}, None
    finally:
        await queue.release(pending)
    if isinstance(event, ErrorEvent):
        error = {"type": event.type, "message": event.message}
        return {"outcome": "error", "error": error}, None
    usage = event.usage if isinstance(event, DoneEvent | EmbeddingsResult) else None
    return {"outcome": "success", "usage": usage.model_dump() if usage else None}, usage


@router.post("/api/v1/admin/dead-letters/{provider}/{entry_id}/retry")
async def retry_dead_letter(
    provider: str, entry_id: EntryId, request: Request, caller: AdminDep
) -> dict[str, Any]:
    """Admins only: run a dead letter again, as a new job; answers with its outcome."""
    provider = provider_of(provider)
    fields = await take(request, provider, entry_id)
    try:
        original = decode_job(fields.get(b"job", b""))
    except ValueError:
        raise InvalidRequest("This dead letter holds no readable job; drop it") from None
    queue: JobQueue = components(request).jobs
    fresh = queue.job_fields(user_id=original.user_id, trace=trace_id(request))
    job = original.model_copy(update={**fresh, "traceparent": original.traceparent})
    model = getattr(getattr(original, "request", None), "model", None)
    note(request, provider=provider, model=model, job_id=job.id)
    try:
        result, usage = await outcome(queue, job, provider)
    except GatewayError:  # not even queued (circuit open, queue full): the letter goes back
        await components(request).redis.xadd(
            components(request).keys.dead_letters(provider), fields
        )
        raise
    note(request, usage=usage)  # the retry's tokens are the admin's request's
    return {"job_id": job.id, "retried": entry_id, **result}
