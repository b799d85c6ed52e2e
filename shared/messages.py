"""Versioned messages between the edge and the workers: the queue's contract.

A job is one stream entry `{"job": <job JSON>}` on `jobs:{provider}`; its `kind` says what it
asks for (`chat`, `embeddings`, `rerank`, `count_tokens`, `models`, `key_check`); `key_id`,
when set, names the caller's own provider key, which the worker fetches from the keyvault;
`traceparent` carries the request's W3C trace context to the provider; `reply_to` names the
pub/sub channel of the edge that waits for the answer. The worker answers on that channel,
each event framed with the job's id (`frame`): a chat job with zero or more `DeltaEvent`s (streaming
only) and exactly one terminal event, `DoneEvent` or `ErrorEvent`; every other job with
exactly one terminal event, its result or an `ErrorEvent`. Adding an optional field is a
compatible change; anything else needs a new version.
"""

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.schemas import (
    ChatRequest,
    EmbeddingsRequest,
    RerankRequest,
    RerankResult,
    ToolCall,
    Usage,
)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Job(_Message):
    v: Literal[2] = 2  # 2: the edge's reply channel (`reply_to`) instead of one per job
    id: str
    reply_to: str
    trace: str
    ts: float
    deadline: float
    user_id: str
    key_id: str | None = None  # the user's own provider key to use (never the key itself)
    traceparent: str | None = None  # W3C trace context of the request (`shared.tracecontext`)


class ChatJob(_Job):
    kind: Literal["chat"] = "chat"
    request: ChatRequest


class EmbeddingsJob(_Job):
    kind: Literal["embeddings"] = "embeddings"
    request: EmbeddingsRequest


class RerankJob(_Job):
    kind: Literal["rerank"] = "rerank"
    request: RerankRequest


class CountTokensJob(_Job):
    """Asks the provider how many input tokens `request` holds, without answering it."""

    kind: Literal["count_tokens"] = "count_tokens"
    request: ChatRequest


class ModelsJob(_Job):
    """Asks the provider for its model list (the edge caches it)."""

    kind: Literal["models"] = "models"


class KeyCheckJob(_Job):
    """Asks whether the key named by `key_id` works with the provider, at its cheapest."""

    kind: Literal["key_check"] = "key_check"


Job = ChatJob | EmbeddingsJob | RerankJob | CountTokensJob | ModelsJob | KeyCheckJob
JOBS: TypeAdapter[Job] = TypeAdapter(Annotated[Job, Field(discriminator="kind")])


class ToolCallDelta(_Message):
    """A piece of a tool call: the first carries id and name, later ones argument text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class DeltaEvent(_Message):
    """A piece of a streamed answer. `usage`, when the provider reports it before the end
    (Anthropic's input tokens), rides on the first delta."""

    kind: Literal["delta"] = "delta"
    content: str = ""
    reasoning_content: str = ""
    reasoning_details: tuple[dict[str, Any], ...] = ()
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[dict[str, Any], ...] = ()  # the tokens' log probabilities, when asked
    usage: Usage | None = None


class Alternative(_Message):
    """A further choice of an answer asked for with `n` > 1 (the first is the answer)."""

    index: int
    finish_reason: str
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    logprobs: dict[str, Any] | None = None


class DoneEvent(_Message):
    kind: Literal["done"] = "done"
    id: str
    model: str
    provider: str | None = None  # who answered (workers set it; a fallback may differ)
    request_model: str | None = None  # the model that provider was asked for (its price)
    finish_reason: str
    usage: Usage
    content: str | None = None  # the whole answer, for non-streaming jobs
    reasoning_content: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None  # OpenRouter, non-streaming jobs
    tool_calls: list[ToolCall] | None = None  # non-streaming jobs
    stop_sequence: str | None = None  # the stop sequence that ended the answer, when known
    logprobs: dict[str, Any] | None = None  # OpenAI's `{"content": [...]}`, when asked
    alternatives: list[Alternative] | None = None  # choices 1..n-1, non-streaming jobs
    provider_metadata: dict[str, Any] | None = None  # e.g. Perplexity citations


class EmbeddingsResult(_Message):
    kind: Literal["embeddings_result"] = "embeddings_result"
    model: str
    vectors: list[list[float]]  # one per input, in input order
    usage: Usage


class RerankResultEvent(_Message):
    kind: Literal["rerank_result"] = "rerank_result"
    results: list[RerankResult]  # sorted by relevance, best first


class TokenCount(_Message):
    kind: Literal["token_count"] = "token_count"
    input_tokens: int


class ModelsResult(_Message):
    kind: Literal["models_result"] = "models_result"
    models: list[str]


class KeyCheckResult(_Message):
    kind: Literal["key_check_result"] = "key_check_result"
    valid: bool
    models: list[str] = Field(default_factory=list)
    reason: str | None = None


class ErrorEvent(_Message):
    kind: Literal["error"] = "error"
    type: str
    message: str
    status: int
    details: dict[str, Any] = Field(default_factory=dict)
    retry_after: float | None = None


Event = (
    DeltaEvent
    | DoneEvent
    | EmbeddingsResult
    | RerankResultEvent
    | TokenCount
    | ModelsResult
    | KeyCheckResult
    | ErrorEvent
)
EVENTS: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="kind")])


def encode(message: _Message) -> bytes:
    return orjson.dumps(message.model_dump(exclude_none=True))


def frame(job_id: str, event: Event) -> bytes:
    """An event as published on an edge's reply channel: the job's id, a space, the event."""
    return b"%s %s" % (job_id.encode(), encode(event))


def unframe(data: bytes) -> tuple[bytes, bytes]:
    """The job id and the encoded event of a message read from an edge's reply channel."""
    job_id, _, raw = data.partition(b" ")
    return job_id, raw


def decode_event(raw: bytes | str) -> Event:
    return EVENTS.validate_json(raw)


def decode_job(raw: bytes | str) -> Job:
    return JOBS.validate_json(raw)
