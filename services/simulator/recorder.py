"""Bounded in-memory log of the requests the simulator answered, for tests to inspect."""

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request

from services.simulator import wire


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
    return record
