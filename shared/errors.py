"""The gateway's error tree and the standard error envelope.

    GatewayError                 internal_error, 500
    ├── AuthenticationError      authentication_error, 401
    ├── AuthorizationError       authorization_error, 403
    ├── InvalidRequest           validation_error, 400
    │   └── PayloadTooLarge      validation_error, 413
    ├── NotFoundError            validation_error, 404
    ├── ConflictError            validation_error, 409
    ├── RateLimitError           rate_limit_error, 429 (retry_after)
    ├── ProviderError            provider_error, 502 (or the status the mapping chose)
    └── ServiceUnavailable       internal_error, 503 (a dependency of ours is down)

Services raise these; each service turns them into a response in exactly one place, and
workers send them to the edge inside an `ErrorEvent` (see `shared.messages`).
"""

from typing import Any

import orjson

# `details.code` of an error about a model (or provider) that does not exist: a 400 on the
# native API, the 404 OpenAI's and Anthropic's APIs answer on theirs.
MODEL_NOT_FOUND = "model_not_found"


class GatewayError(Exception):
    type = "internal_error"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if status is not None:
            self.status = status
        self.retry_after = retry_after

    def envelope(self, trace_id: str) -> dict[str, Any]:
        return error_envelope(self.type, self.message, trace_id, self.details)


class AuthenticationError(GatewayError):
    type = "authentication_error"
    status = 401


class AuthorizationError(GatewayError):
    type = "authorization_error"
    status = 403


class InvalidRequest(GatewayError):
    type = "validation_error"
    status = 400


class PayloadTooLarge(InvalidRequest):
    status = 413


class NotFoundError(GatewayError):
    type = "validation_error"
    status = 404


class ConflictError(GatewayError):
    type = "validation_error"
    status = 409


class RateLimitError(GatewayError):
    type = "rate_limit_error"
    status = 429


class ProviderError(GatewayError):
    type = "provider_error"
    status = 502


class ServiceUnavailable(GatewayError):
    type = "internal_error"
    status = 503


ERROR_TYPES: dict[str, type[GatewayError]] = {
    cls.type: cls
    for cls in (
        GatewayError,
        AuthenticationError,
        AuthorizationError,
        InvalidRequest,
        RateLimitError,
        ProviderError,
    )
}


def error_envelope(
    type_: str, message: str, trace_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "message": message}
    if details:
        body["details"] = details
    body["trace_id"] = trace_id
    return {"error": body}


def error_body(error: GatewayError, trace_id: str) -> bytes:
    return orjson.dumps(error.envelope(trace_id))


def rebuild(type_: str, message: str, status: int, **kwargs: Any) -> GatewayError:
    """The error a worker reported, rebuilt on the edge from its type name and status."""
    return ERROR_TYPES.get(type_, GatewayError)(message, status=status, **kwargs)
