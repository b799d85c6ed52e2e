"""The one way a chat goes through the edge, whatever surface it came in on.

A surface (`/api/v1/chat` below, `/v1/chat/completions` in `openai_compat`, `/v1/messages` in
`anthropic_compat`) turns its request into a `ChatRequest` and calls `answer_chat` with its
encoder, which writes the answer in the surface's wire format. Every chat, plain or streamed,
then takes the same steps:

1. `precheck`: caps, then the provider, access and model of its target and of each fallback;
2. a plain chat at temperature 0 is looked up in the response cache (`cache.py`); a hit is
   admitted without reserving tokens, and answered;
3. admission and enqueueing in one go (`JobQueue.submit`: the job is registered with the
   edge's reply channel, then one Redis call admits the caller and puts the job on its
   provider's stream);
4. the wait for the worker's first event, given up when the client leaves;
5. the answer: a JSON body (stored in the cache when it may be), or a stream in which the events
   that are ready are written together;
6. the job's release (dropped from the reply channel, marked cancelled if it had not answered,
   the caller's reservations settled), however the request ends.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from functools import partial
from typing import Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from services.edge import cache
from services.edge.audit import track
from services.edge.auth import Principal
from services.edge.deps import CallerDep, Components, components
from services.edge.job_queue import JobQueue
from services.edge.limits import estimate_chat_tokens, estimate_prompt_tokens
from services.edge.native_encoder import NativeEncoder
from services.edge.pending_job import PendingJob, error_of
from services.edge.precheck import precheck
from services.edge.spend import cost_headers
from shared.errors import GatewayError
from shared.http import trace_id, traceparent
from shared.messages import DeltaEvent, DoneEvent, ErrorEvent, Event
from shared.schemas import ChatRequest, ChatResponse

router = APIRouter()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ChatEncoder(Protocol):
    """How a surface writes one answer: a plain answer's JSON `body`, or a stream's frames: its
    `opening` (written with the first event, which it may read), each `delta`, and its last
    frames, when the answer is `done` or when it fails after it began (`error`)."""

    def body(self, done: DoneEvent) -> bytes: ...
    def opening(self, first: DeltaEvent | DoneEvent) -> bytes: ...
    def delta(self, event: DeltaEvent) -> bytes: ...
    def done(self, event: DoneEvent, cost: Decimal | None) -> bytes: ...
    def error(self, error: GatewayError, trace: str) -> bytes: ...


# The encoder of the answer to a job, by the job's id (from which some surfaces derive theirs).
EncoderFor = Callable[[str], ChatEncoder]


class ClientDisconnected(GatewayError):
    """The client closed the connection before its answer was ready (nginx's 499)."""

    status = 499


async def answer_chat(
    request: Request, body: ChatRequest, caller: Principal, encoder_for: EncoderFor
) -> Response:
    edge = components(request)
    body = await precheck(edge, request, caller, body)
    if not body.stream:
        job_id, done = await _plain_answer(edge, request, body, caller)
        return Response(encoder_for(job_id).body(done), media_type="application/json")
    pending, first = await _start(edge, request, body, caller)
    # The frames release the job when they end; a client gone before the first frame was asked
    # for never starts them, so the response releases it too (releasing is idempotent).
    return StreamingResponse(
        _frames(edge.jobs, pending, first, encoder_for(pending.job.id)),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
        background=BackgroundTask(edge.jobs.release, pending),
    )


async def _plain_answer(
    edge: Components, request: Request, body: ChatRequest, caller: Principal
) -> tuple[str, DoneEvent]:
    """The answer's job id and its answer, from the response cache when it may be."""
    found = await cache.lookup(request, edge.cache, body, caller.user_id)
    if found.hit is not None:
        await edge.gate.admit(request, caller)  # counted like any request; no tokens spent
        cost_headers(request)
        return found.hit.job_id, found.hit.done
    pending, first = await _start(edge, request, body, caller)
    await edge.jobs.release(pending)
    cost_headers(request)
    if not isinstance(first, DoneEvent):  # a plain job publishes its answer alone
        raise GatewayError(f"Unexpected reply to a plain chat job: {first.kind}")
    await found.store(pending.job.id, first)
    return pending.job.id, first


async def _start(
    edge: Components, request: Request, body: ChatRequest, caller: Principal
) -> tuple[PendingJob, DeltaEvent | DoneEvent]:
    """Admits and enqueues the job and waits for its first event; a first error is raised.
    The caller owns the returned job and must release it."""
    cost = edge.spending.chat_worst_case(body, estimate_prompt_tokens(body))
    admit = partial(
        edge.gate.admit_then,
        request,
        caller,
        estimate_chat_tokens(body),
        stream=body.stream,
        cost_units=cost,
    )
    pending = await edge.jobs.submit_chat(
        body,
        user_id=caller.user_id,
        trace=trace_id(request),
        traceparent=traceparent(request),
        admit=admit,
    )
    track(request, pending.job.id, pending)
    try:
        first = await _first_event(request, pending)
        if isinstance(first, ErrorEvent):
            raise error_of(first)
        if not isinstance(first, DeltaEvent | DoneEvent):
            raise GatewayError(f"Unexpected reply to a chat job: {first.kind}")
    except BaseException:
        await edge.jobs.release(pending)
        raise
    return pending, first


async def _first_event(request: Request, pending: PendingJob) -> Event:
    """The job's first event, unless the client leaves first: then the job is released, so
    the worker sees nobody listening and cancels the upstream call."""
    answer = asyncio.ensure_future(pending.next_event())
    gone = asyncio.ensure_future(_disconnect(request))
    done, _ = await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
    for task in (answer, gone):
        task.cancel()
    if answer in done:
        return answer.result()
    raise ClientDisconnected("The client closed the connection")


async def _disconnect(request: Request) -> None:
    """Returns when the client disconnects (its body was read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _frames(
    queue: JobQueue, pending: PendingJob, first: DeltaEvent | DoneEvent, encoder: ChatEncoder
) -> AsyncIterator[bytes]:
    """A stream's bytes: the events that are ready go out in one write, and it always ends
    with the encoder's last frames, of the answer or of the failure. Releases the job."""
    trace = pending.job.trace
    try:
        chunk = bytearray(encoder.opening(first))
        events: list[Event] = [first]
        while True:
            for event in events:
                if isinstance(event, DeltaEvent):
                    chunk += encoder.delta(event)
                elif isinstance(event, DoneEvent):
                    yield bytes(chunk + encoder.done(event, pending.cost))
                    return
                elif isinstance(event, ErrorEvent):
                    yield bytes(chunk + encoder.error(error_of(event), trace))
                    return
            if chunk:
                yield bytes(chunk)
                chunk.clear()
            try:
                events = [await pending.next_event(), *pending.ready_events()]
            except GatewayError as exc:
                yield encoder.error(exc, trace)
                return
    finally:
        await queue.release(pending)


@router.post(
    "/api/v1/chat",
    response_model=ChatResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat(body: ChatRequest, request: Request, caller: CallerDep) -> Response:
    encoder = NativeEncoder(body.provider)
    return await answer_chat(request, body, caller, lambda _job_id: encoder)
