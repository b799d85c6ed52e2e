"""What every HTTP service of the fleet does alike: trace ids, security headers and the
standard error envelope.

`install(app)` adds a trace-id middleware (the incoming `X-Request-ID` or a new `req_…`, echoed
on every response, together with the security headers of `security_headers`; the incoming W3C
`traceparent`, or a new trace's, kept for the logs and the request's jobs) and the one place
where exceptions become envelope responses.

The interactive docs (`/docs`, `/redoc`) and `/openapi.json` stay on in production: they are
the public API's inventory and reveal nothing the routes themselves do not. They are the only
pages served without the restrictive Content-Security-Policy (their HTML loads scripts). No
service has a debug route, and FastAPI's `debug` mode (tracebacks in 500 bodies) is never on.
"""

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import GatewayError, ServiceUnavailable, error_body, error_envelope
from shared.ids import accept_trace_id
from shared.logs import trace_id_var, traceparent_var
from shared.tracecontext import accept_traceparent

log = logging.getLogger(__name__)

_EXTRA = "response_headers"
_HTTP_ERROR_TYPES = {
    401: "authentication_error",
    403: "authorization_error",
    429: "rate_limit_error",
}


# Sent on every response of every service (also errors, 413s and streams).
_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    # Harmless on plain HTTP (browsers only honour it over TLS), right behind TLS termination.
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
)
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_NO_STORE = (b"cache-control", b"no-store")
# HTML pages that need scripts and styles: everything else is JSON, SSE or plain text.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def security_headers(path: str, present: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The security headers a response to `path` still lacks, given the headers it has."""
    names = {name.lower() for name, _ in present}
    wanted = [*_SECURITY_HEADERS, _NO_STORE]
    if path not in DOCS_PATHS:
        wanted.append(_CSP)
    return [(name, value) for name, value in wanted if name not in names]


class TraceMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming, parent = None, None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
            elif key == b"traceparent":
                parent = value.decode("latin-1")
        trace_id = accept_trace_id(incoming)
        state = scope.setdefault("state", {})
        state["trace_id"], state["traceparent"] = trace_id, accept_traceparent(parent)
        token = trace_id_var.set(trace_id)
        parent_token = traceparent_var.set(state["traceparent"])
        header = (b"x-request-id", trace_id.encode())
        path: str = scope.get("path", "")

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in state.get(_EXTRA, {}).items()]
                headers = [*message.get("headers", []), header, *extra]
                message["headers"] = [*headers, *security_headers(path, headers)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            trace_id_var.reset(token)
            traceparent_var.reset(parent_token)


def add_response_headers(request: Request, headers: dict[str, str]) -> None:
    """Headers for this request's response, whatever produces it (route, stream or error)."""
    extra: dict[str, str] = request.scope.setdefault("state", {}).setdefault(_EXTRA, {})
    extra.update(headers)


def trace_id(request: Request) -> str:
    value: str = request.state.trace_id
    return value


def traceparent(request: Request) -> str:
    value: str = request.state.traceparent
    return value


def error_response(error: GatewayError, trace: str) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return Response(
        error_body(error, trace),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"] if p != "body") or "body",
            "message": err["msg"],
        }
        for err in exc.errors()
    ]


async def _on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc, trace_id(request))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    message = (
        "Request body is not valid JSON"
        if any(e["type"] == "json_invalid" for e in exc.errors())
        else f"Invalid field '{first['field']}': {first['message']}"
    )
    details: dict[str, Any] = {"errors": errors}
    # A validator of ours (shared/identifiers.py) may give details of its own, as a route would.
    for err in exc.errors():
        extra = (err.get("ctx") or {}).get("details")
        if isinstance(extra, dict):
            details = {**extra, **details}
            break
    body = error_envelope("validation_error", message, trace_id(request), details)
    return _json(body, 400)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = _HTTP_ERROR_TYPES.get(exc.status_code, "validation_error")
    if exc.status_code >= 500:
        error_type = "internal_error"
    body = error_envelope(error_type, str(exc.detail), trace_id(request))
    return _json(body, exc.status_code)


async def _on_redis_down(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable: %s", type(exc).__name__)
    error = ServiceUnavailable("A dependency of the gateway is unavailable (Redis); retry shortly")
    error.retry_after = 1
    return error_response(error, trace_id(request))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """A generic body (never the exception or a traceback). Starlette sends this response
    outside every middleware, so it carries the trace id and security headers itself."""
    log.exception("unhandled error")
    trace = trace_id(request)
    body = error_envelope("internal_error", "Internal error", trace)
    response = _json(body, 500)
    response.raw_headers.append((b"x-request-id", trace.encode()))
    response.raw_headers.extend(security_headers(request.url.path, response.raw_headers))
    return response


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def install(app: FastAPI) -> None:
    app.add_middleware(TraceMiddleware)
    app.add_exception_handler(GatewayError, _on_gateway_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RedisConnectionError, _on_redis_down)
    app.add_exception_handler(RedisTimeoutError, _on_redis_down)
    app.add_exception_handler(Exception, _on_unexpected)


def serve_process_metrics(app: FastAPI) -> None:
    """`GET /metrics` with the process's own metrics (CPU, memory, file descriptors, GC), for
    the internal services; the edge and the workers serve richer ones."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
