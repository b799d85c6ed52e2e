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

import pydantic
from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.edge.anthropic_encoder import AnthropicEncoder
from services.edge.anthropic_errors import anthropic_error_response
from services.edge.anthropic_schemas import DEFAULT_PROVIDER, CountTokensRequest, MessagesRequest
from services.edge.anthropic_translate import chat_request
from services.edge.audit import note
from services.edge.chat import answer_chat
from services.edge.deps import AnthropicCallerDep, components
from services.edge.limits import estimate_prompt_tokens
from services.edge.precheck import precheck
from shared.errors import MODEL_NOT_FOUND, GatewayError, InvalidRequest
from shared.http import trace_id, traceparent
from shared.identifiers import names_unknown_provider, quoted
from shared.messages import CountTokensJob, TokenCount
from shared.schemas import ChatRequest


def _first_problem(errors: list[Any]) -> str:
    if not errors:
        return "Invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "Request body is not valid JSON"
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{field}: {first.get('msg', 'invalid')}"


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


class TokenCountResponse(pydantic.BaseModel):
    input_tokens: int


router = APIRouter(route_class=AnthropicRoute, tags=["anthropic-compatible"])


def _translated(body: MessagesRequest, anthropic_version: str | None) -> ChatRequest:
    try:
        return chat_request(body, anthropic_version)
    except pydantic.ValidationError as exc:
        details = {"code": MODEL_NOT_FOUND} if names_unknown_provider(exc) else None
        raise InvalidRequest(_first_problem(list(exc.errors())), details=details) from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


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
    chat = _translated(body, anthropic_version)
    return await answer_chat(
        request,
        chat,
        caller,
        lambda job_id: AnthropicEncoder(
            job_id, body.model, partial(estimate_prompt_tokens, chat), trace_id(request)
        ),
    )


@router.post("/v1/messages/count_tokens", response_model=TokenCountResponse)
async def count_tokens(
    body: CountTokensRequest,
    request: Request,
    caller: AnthropicCallerDep,
    anthropic_version: Annotated[str | None, Header()] = None,
) -> TokenCountResponse:
    """The input tokens of a message request, as Anthropic counts them (its own endpoint);
    other providers offer no count."""
    chat = _translated(body.as_message_request(), anthropic_version)
    if chat.provider != DEFAULT_PROVIDER:
        raise InvalidRequest(
            f"Token counting is offered for Anthropic models only, not for '{quoted(body.model)}'",
            details={"field": "model", "provider": chat.provider},
        )
    edge = components(request)
    chat = await precheck(edge, request, caller, chat)
    held = await edge.gate.admit(request, caller)
    fields = edge.jobs.job_fields(
        user_id=caller.user_id, trace=trace_id(request), traceparent=traceparent(request)
    )
    note(request, job_id=fields["id"])
    event = await edge.jobs.call(CountTokensJob(**fields, request=chat), chat.provider, held)
    if not isinstance(event, TokenCount):
        raise GatewayError(f"Unexpected reply to a token count job: {event.kind}")
    return TokenCountResponse(input_tokens=event.input_tokens)
