"""`POST /api/v1/chat`: plain and streaming chat through the provider's worker pool."""

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from services.edge import cache, caps
from services.edge.audit import note, track
from services.edge.auth import Principal, authenticated
from services.edge.catalogue import Catalogue
from services.edge.jobs import JobQueue, PendingJob, raise_error
from services.edge.limits import check_access, estimate_chat_tokens, gate_of
from services.edge.relay import ChatEvent, chat_response, sse_frames
from shared.errors import GatewayError
from shared.http import trace_id
from shared.messages import DeltaEvent, DoneEvent, ErrorEvent, Event
from shared.schemas import ChatRequest, ChatResponse

router = APIRouter()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClientGone(GatewayError):
    """The client closed the connection before its answer was ready (nginx's 499)."""

    status = 499


async def client_gone(request: Request) -> None:
    """Returns when the client disconnects (its body was read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def answer_or_disconnect(request: Request, pending: PendingJob) -> Event:
    """The job's answer, unless the client leaves first: then the job is released, so the
    worker sees nobody listening and cancels the upstream call."""
    answer = asyncio.ensure_future(pending.next_event())
    gone = asyncio.ensure_future(client_gone(request))
    done, _ = await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
    for task in (answer, gone):
        task.cancel()
    if answer in done:
        return answer.result()
    raise ClientGone("The client closed the connection")


async def start_chat(
    request: Request, body: ChatRequest, caller: Principal
) -> tuple[PendingJob, ChatEvent]:
    """Validates, enqueues and waits for the first event; a first error is raised.

    Every chat surface (native, OpenAI- and Anthropic-compatible) starts here. The caller owns
    the returned job and must release it (`sse_frames` does so for streams).
    """
    note(request, provider=body.provider, model=body.model)
    gate = gate_of(request)
    caps.check_chat(gate.settings, body)
    catalogue: Catalogue = request.app.state.catalogue
    for provider, model in [(body.provider, body.model), *caps.fallback_targets(body)]:
        check_access(caller, provider, model)
        await catalogue.check(provider, model)
    admit = partial(gate.admit, request, caller, estimate_chat_tokens(body), stream=body.stream)
    queue: JobQueue = request.app.state.jobs
    pending = await queue.submit_chat(
        body, user_id=caller.user_id, trace=trace_id(request), admit=admit
    )
    track(request, pending.job.id, pending)
    try:
        first = await answer_or_disconnect(request, pending)
        if isinstance(first, ErrorEvent):
            raise_error(first)
        if not isinstance(first, DeltaEvent | DoneEvent):
            raise GatewayError(f"Unexpected reply to a chat job: {first.kind}")
    except BaseException:
        await queue.release(pending)
        raise
    return pending, first


def event_stream(request: Request, pending: PendingJob, frames: AsyncIterator[bytes]) -> Response:
    """The SSE response of a started chat job. `frames` releases the job when it ends; a client
    gone before the first frame was asked for never starts it, so the response releases it too
    (releasing is idempotent)."""
    queue: JobQueue = request.app.state.jobs
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
        background=BackgroundTask(queue.release, pending),
    )


async def finish_chat(request: Request, pending: PendingJob, first: ChatEvent) -> DoneEvent:
    """The answer of a non-streaming chat job, whose first event is its last."""
    queue: JobQueue = request.app.state.jobs
    await queue.release(pending)
    assert isinstance(first, DoneEvent)
    return first


async def complete_chat(
    request: Request, body: ChatRequest, caller: Principal
) -> tuple[str, DoneEvent]:
    """A non-streaming chat's job id and answer, from the response cache when it may be
    (`cache.py`). Every non-streaming chat surface comes here."""
    found = await cache.lookup(request, body, caller.user_id)
    if found.hit is not None:
        # Admitted like any request, but without a token reservation: nothing is spent.
        note(request, provider=body.provider, model=body.model)
        gate = gate_of(request)
        caps.check_chat(gate.settings, body)
        check_access(caller, body.provider, body.model)
        await gate.admit(request, caller)
        return found.hit.job_id, found.hit.done
    pending, first = await start_chat(request, body, caller)
    done = await finish_chat(request, pending, first)
    await found.store(pending.job.id, done)
    return pending.job.id, done


@router.post(
    "/api/v1/chat",
    response_model=ChatResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat(
    body: ChatRequest, request: Request, caller: Annotated[Principal, Depends(authenticated)]
) -> Response:
    if not body.stream:
        _, done = await complete_chat(request, body, caller)
        return Response(
            chat_response(body, done).model_dump_json(exclude_none=True),
            media_type="application/json",
        )
    pending, first = await start_chat(request, body, caller)
    return event_stream(request, pending, sse_frames(request.app.state.jobs, pending, first))
