"""`POST /v1/messages`: the Anthropic Messages API in front of every provider.

`model` is written `provider/model` (a bare name means Anthropic). The request is translated
into a unified `ChatRequest` (`anthropic_schemas`) and goes the way of every chat
(`chat.answer_chat`); the answer comes back in Anthropic's shapes (`anthropic_encoder`).
Errors on these routes use Anthropic's error body, extended with our trace id, so the official
SDK raises its own exception types.
"""

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any

import orjson
import pydantic
from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.edge.anthropic_encoder import AnthropicEncoder, error_object
from services.edge.anthropic_schemas import MessagesRequest, chat_request
from services.edge.chat import answer_chat
from services.edge.deps import AnthropicCallerDep
from services.edge.limits import estimate_prompt_tokens
from shared.errors import GatewayError, InvalidRequest
from shared.http import trace_id


def _first_problem(errors: list[Any]) -> str:
    if not errors:
        return "Invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "Request body is not valid JSON"
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{field}: {first.get('msg', 'invalid')}"


def anthropic_error_response(error: GatewayError, trace: str) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return Response(
        orjson.dumps(error_object(error, trace)),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


class AnthropicRoute(APIRoute):
    """Answers this router's errors in Anthropic's shape; other routes keep the standard one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                error: GatewayError = InvalidRequest(_first_problem(list(exc.errors())))
            except GatewayError as exc:
                error = exc
            return anthropic_error_response(error, trace_id(request))

        return route


class MessageResponse(pydantic.BaseModel):
    """The non-streaming answer (documentation only; built as a plain dict)."""

    id: str
    type: str = "message"
    role: str = "assistant"
    model: str
    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None = None
    usage: dict[str, int]


router = APIRouter(route_class=AnthropicRoute, tags=["anthropic-compatible"])


@router.post(
    "/v1/messages",
    response_model=MessageResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def create_message(
    body: MessagesRequest,
    request: Request,
    caller: AnthropicCallerDep,
    anthropic_version: Annotated[str | None, Header()] = None,
) -> Response:
    try:
        chat = chat_request(body, anthropic_version)
    except pydantic.ValidationError as exc:
        raise InvalidRequest(_first_problem(list(exc.errors()))) from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return await answer_chat(
        request,
        chat,
        caller,
        lambda job_id: AnthropicEncoder(
            job_id, body.model, partial(estimate_prompt_tokens, chat), trace_id(request)
        ),
    )
