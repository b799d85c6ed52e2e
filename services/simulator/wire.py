"""Bytes on the wire: JSON bodies, SSE frames, pacing, and a stream that can drop mid-way."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Send


class Drop:
    """Yielded by a body iterator to close the connection without finishing the response."""


DROP: Final = Drop()

Body = AsyncIterator[bytes | Drop]


class DroppableStream(StreamingResponse):
    body_iterator: Body  # type: ignore[assignment]

    def __init__(
        self, body: Body, headers: Mapping[str, str] | None = None, media_type: str | None = None
    ) -> None:
        self.body_iterator = body
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                if isinstance(chunk, Drop):
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # A send that failed (the client left) leaves the body suspended: close it now,
            # so what it records on the way out is there when a test looks.
            if isinstance(self.body_iterator, AsyncGenerator):
                await self.body_iterator.aclose()


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(dumps(value), status, headers, media_type="application/json")


def event_stream(body: Body, headers: Mapping[str, str] | None = None) -> DroppableStream:
    stream_headers = {"cache-control": "no-cache", **(headers or {})}
    return DroppableStream(body, headers=stream_headers, media_type="text/event-stream")


def data_frame(value: Any) -> bytes:
    return b"data: " + dumps(value) + b"\n\n"


def named_frame(event: str, value: Any, padding: int = 0) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(value) + b" " * padding + b"\n\n"


async def pause(seconds: float, keepalive: bytes | None, every: float) -> AsyncIterator[bytes]:
    """Sleep `seconds`, yielding `keepalive` every `every` seconds when one is given."""
    remaining = seconds
    while remaining > 0:
        step = min(remaining, every) if keepalive is not None and every > 0 else remaining
        await asyncio.sleep(step)
        remaining -= step
        if keepalive is not None and remaining > 0:
            yield keepalive


def lower_headers(request: Request) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items()}


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def json_body(request: Request) -> Any:
    """The parsed JSON body, or None when it is not JSON."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
