"""Errors on the OpenAI-compatible routes, in OpenAI's shape.

`{"error": {"message", "type", "param", "code"}}` (docs/providers.md §0) with our `trace_id`
added, so OpenAI's SDKs raise their own exception types with `.code` and `.param` set: the
type follows the status (`invalid_request_error`, `authentication_error`, `insufficient_quota`,
`permission_error`, `rate_limit_error`, `server_error`), `param` names the field at fault,
and a model (or provider) that does not exist is a 404 `model_not_found`, as OpenAI answers it.
A caller that sends `anthropic-version` (the Anthropic SDK listing models) gets Anthropic's
shape instead. The native `/api/v1` routes keep the standard envelope.
"""

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services.edge.anthropic_errors import anthropic_error_response
from shared.errors import MODEL_NOT_FOUND, GatewayError, InvalidRequest
from shared.http import trace_id

_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",  # a spend budget of ours ran out
    403: "permission_error",
    429: "rate_limit_error",
}


def openai_status(error: GatewayError) -> int:
    return 404 if error.details.get("code") == MODEL_NOT_FOUND else error.status


def openai_error(error: GatewayError, trace: str) -> dict[str, Any]:
    status, details = openai_status(error), error.details
    kind = "server_error" if status >= 500 else _TYPES.get(status, "invalid_request_error")
    code = details.get("code")
    if code is None and status == 429:
        code = "rate_limit_exceeded"
    elif code is None and "allowed" in details:
        code = "unsupported_value"
    elif code is None and "parameter" in details:
        code = "unsupported_parameter"
    body: dict[str, Any] = {
        "message": error.message,
        "type": kind,
        "param": details.get("parameter") or details.get("field"),
        "code": code,
    }
    if details:
        body["details"] = details
    body["trace_id"] = trace
    return {"error": body}


def openai_error_response(error: GatewayError, trace: str) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return Response(
        orjson.dumps(openai_error(error, trace)),
        status_code=openai_status(error),
        media_type="application/json",
        headers=headers,
    )


def _invalid_body(exc: RequestValidationError) -> InvalidRequest:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return InvalidRequest("Request body is not valid JSON", details={"field": "body"})
    first = errors[0] if errors else {}
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return InvalidRequest(
        f"Invalid field '{field}': {first.get('msg', 'invalid')}", details={"field": field}
    )


class OpenAIRoute(APIRoute):
    """Answers this router's errors in OpenAI's shape (Anthropic's for Anthropic callers)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                error: GatewayError = _invalid_body(exc)
            except GatewayError as exc:
                error = exc
            if request.headers.get("anthropic-version"):
                return anthropic_error_response(error, trace_id(request))
            return openai_error_response(error, trace_id(request))

        return route
