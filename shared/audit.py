"""The audit record: one per API request, written by the edge to the `audit` stream and
consumed into PostgreSQL by the audit service.

A stream entry is `{"kind": "audit", "v": "1", "data": <record JSON>}`. A record never holds a
prompt, an answer or a secret: only who called, what ran, how much it cost and how it ended.
Most records are requests; a record with an `event` tells of something else that happened
(`budget_alert`: a budget passed one of its alert thresholds, its figures in `details`).
"""

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, field_validator
from redis.asyncio import Redis

from shared.redis_keys import RedisKeys

Outcome = Literal["success", "error", "cancelled"]
CacheResult = Literal["hit", "miss", "bypass"]
KIND = "audit"
AUDIT_GROUP = "audit"


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        """PostgreSQL text cannot hold NUL, and a request may carry one (in its path, say):
        one such record must never block the stream behind it."""
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value

    v: Literal[1] = 1
    trace_id: str
    ts: float  # when the request arrived (Unix seconds)
    method: str
    path: str  # without the query string
    status: int
    outcome: Outcome
    duration_ms: float  # until the last byte was sent (for streams: when the stream ended)
    user_id: str | None = None
    api_key_id: str | None = None  # the gateway API key used, if any
    provider: str | None = None
    model: str | None = None
    job_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    error_type: str | None = None
    cache: CacheResult | None = None
    cached_tokens: int | None = None  # prompt tokens read from the provider's prompt cache
    cost_usd: float | None = 0.0  # None: the model it ran on has no price (unpriced)
    event: Literal["budget_alert"] | None = None
    details: dict[str, Any] | None = None


def encode(record: AuditRecord) -> dict[str, bytes]:
    """The stream entry's fields."""
    return {"kind": KIND.encode(), "v": b"1", "data": orjson.dumps(record.model_dump())}


def decode(fields: dict[bytes, bytes]) -> AuditRecord:
    return AuditRecord.model_validate_json(fields[b"data"])


async def emit(redis: Redis, keys: RedisKeys, record: AuditRecord) -> str:
    """XADD the record; the stream is not trimmed, the audit service deletes what it stored."""
    entry_id = await redis.xadd(keys.audit(), encode(record))  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
