"""Errors on the Anthropic-compatible routes, in Anthropic's shape (docs/providers.md §1).

`{"type": "error", "error": {"type", "message"}}` extended with our trace id (and details), the
type following the status as Anthropic's errors page lists them; a model that does not exist is
a 404 `not_found_error`, as Anthropic answers it (on the native API it is a 400).
"""

from typing import Any

import orjson
from fastapi import Response

from shared.errors import MODEL_NOT_FOUND, GatewayError

# Anthropic's error type per HTTP status (its errors page); 503 and 529 mean overloaded.
ERROR_TYPES = {
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_status(error: GatewayError) -> int:
    return 404 if error.details.get("code") == MODEL_NOT_FOUND else error.status


def error_type(error: GatewayError) -> str:
    """Anthropic's error type for one of our errors (a provider's 402 is a billing error)."""
    if error.details.get("upstream_status") == 402:
        return "billing_error"
    status = anthropic_status(error)
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_object(error: GatewayError, trace: str, type_: str | None = None) -> dict[str, Any]:
    """Anthropic's error body, extended with our trace id (and details, when there are any)."""
    body: dict[str, Any] = {"type": type_ or error_type(error), "message": error.message}
    if error.details:
        body["details"] = error.details
    body["trace_id"] = trace
    return {"type": "error", "error": body}


def anthropic_error_response(error: GatewayError, trace: str) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return Response(
        orjson.dumps(error_object(error, trace)),
        status_code=anthropic_status(error),
        media_type="application/json",
        headers=headers,
    )
