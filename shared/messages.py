"""Versioned messages between the edge and the workers: the queue's contract.

A job is one stream entry `{"job": <ChatJob JSON>}` on `jobs:{provider}`. The worker answers on
the pub/sub channel `reply:{job id}` with zero or more `DeltaEvent`s (streaming jobs only) and
exactly one terminal event: `DoneEvent` or `ErrorEvent`. Adding an optional field is a
compatible change; anything else needs a new version.
"""

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.schemas import ChatRequest, Usage


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ChatJob(_Message):
    kind: Literal["chat"] = "chat"
    v: Literal[1] = 1
    id: str
    trace: str
    ts: float
    deadline: float
    user_id: str
    request: ChatRequest


class DeltaEvent(_Message):
    kind: Literal["delta"] = "delta"
    content: str = ""
    reasoning_content: str = ""


class DoneEvent(_Message):
    kind: Literal["done"] = "done"
    id: str
    model: str
    finish_reason: str
    usage: Usage
    content: str | None = None  # the whole answer, for non-streaming jobs
    reasoning_content: str | None = None


class ErrorEvent(_Message):
    kind: Literal["error"] = "error"
    type: str
    message: str
    status: int
    details: dict[str, Any] = Field(default_factory=dict)
    retry_after: float | None = None


Event = Annotated[DeltaEvent | DoneEvent | ErrorEvent, Field(discriminator="kind")]
EVENTS: TypeAdapter[DeltaEvent | DoneEvent | ErrorEvent] = TypeAdapter(Event)


def encode(message: _Message) -> bytes:
    return orjson.dumps(message.model_dump(exclude_none=True))


def decode_event(raw: bytes | str) -> DeltaEvent | DoneEvent | ErrorEvent:
    return EVENTS.validate_json(raw)
