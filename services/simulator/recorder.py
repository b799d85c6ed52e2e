"""Bounded in-memory log of the requests the simulator answered, for tests to inspect."""

import contextlib
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.simulator import wire

ANSWER_LIMIT = 1 << 20  # answers larger than this (the garbage ones) are not kept


@dataclass
class Record:
    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    outcome: str = "ok"
    reply: str = ""
    reasoning: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    chunks: int = 0  # frames of a streamed body that were sent
    answer: Any = None  # what was sent: a JSON body, or a stream's JSON `data:` payloads
    finished: bool = False  # a streamed body was sent to its end (not cut by the client)
    ended: bool = False  # a streamed body stopped: sent to its end, or cut by the client
    ts: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Recorder:
    def __init__(self, limit: int) -> None:
        self._records: deque[Record] = deque(maxlen=limit)

    def add(self, record: Record) -> None:
        self._records.append(record)

    def find(self, trace_id: str | None = None) -> list[Record]:
        if trace_id is None:
            return list(self._records)
        return [r for r in self._records if r.headers.get("x-request-id") == trace_id]

    def attempt(self, record: Record) -> int:
        """How many POSTs with `record`'s `x-request-id` (it included) reached the simulator,
        on any provider: the attempt number of a retried (or fallen back) request."""
        trace = record.headers.get("x-request-id")
        if trace is None:
            return 1
        return sum(1 for r in self.find(trace) if r.method == "POST")

    def clear(self) -> None:
        self._records.clear()


async def counted(body: wire.Body, record: Record) -> wire.Body:
    """`body`, counting the frames sent into `record`; `ended` once it stops either way."""
    try:
        async for chunk in body:
            if not isinstance(chunk, wire.Drop):
                record.chunks += 1
            yield chunk
        record.finished = True
    finally:
        record.ended = True


def attempt_of(request: Request, record: Record) -> int:
    recorder: Recorder = request.app.state.recorder
    return recorder.attempt(record)


def record_request(request: Request, provider: str, body: Any) -> Record:
    """Add a record of `request` (status 200 until the handler says otherwise) and return it."""
    record = Record(
        provider=provider,
        method=request.method,
        path=request.url.path,
        headers=wire.lower_headers(request),
        body=body,
        status=200,
    )
    recorder: Recorder = request.app.state.recorder
    recorder.add(record)
    request.state.record = record
    return record


def _answer(body: bytes, stream: bool) -> Any:
    if not stream:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(body)
        return None
    payloads = []
    for line in body.splitlines():
        if line.startswith(b"data:"):
            with contextlib.suppress(orjson.JSONDecodeError):
                payloads.append(orjson.loads(line[5:]))
    return payloads


class AnswerRecorder:
    """ASGI middleware keeping what a recorded request was answered (`Record.answer`), so tests
    compare with what the provider sent rather than with the simulator's wording."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, kind = bytearray(), b""

        async def keep(message: Message) -> None:
            nonlocal kind
            if message["type"] == "http.response.start":
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
            elif message["type"] == "http.response.body" and len(body) <= ANSWER_LIMIT:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, keep)
        finally:
            record = scope.get("state", {}).get("record")
            known = kind.startswith((b"application/json", b"text/event-stream"))
            if isinstance(record, Record) and known and len(body) <= ANSWER_LIMIT:
                record.answer = _answer(bytes(body), kind.startswith(b"text/event-stream"))
