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

    def clear(self) -> None:
        self._records.clear()


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
