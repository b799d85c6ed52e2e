"""`POST /api/v1/chat`: plain and streaming chat through the provider's worker pool."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from services.edge.auth import Principal, principal
from services.edge.relay import JobQueue, chat_response, raise_error, sse_frames
from shared.errors import ValidationError
from shared.http import trace_id
from shared.messages import DoneEvent, ErrorEvent
from shared.providers import PROVIDERS
from shared.schemas import ChatRequest, ChatResponse

router = APIRouter()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValidationError(
            f"Unknown provider '{provider}'",
            details={"provider": provider, "available_providers": sorted(PROVIDERS)},
        )


@router.post(
    "/api/v1/chat",
    response_model=ChatResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat(
    body: ChatRequest, request: Request, caller: Annotated[Principal, Depends(principal)]
) -> Response:
    check_provider(body.provider)
    queue: JobQueue = request.app.state.jobs
    pending = await queue.submit(body, user_id=caller.user_id, trace=trace_id(request))
    try:
        first = await pending.next_event()
        if isinstance(first, ErrorEvent):
            raise_error(first)
    except BaseException:
        await queue.release(pending)
        raise
    if not body.stream:
        await queue.release(pending)
        assert isinstance(first, DoneEvent)
        return Response(
            chat_response(body, first).model_dump_json(exclude_none=True),
            media_type="application/json",
        )
    return StreamingResponse(
        sse_frames(queue, pending, first), media_type="text/event-stream", headers=SSE_HEADERS
    )
