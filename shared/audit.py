"""The audit record: one per API request, written by the edge to the `audit` stream and
consumed into PostgreSQL by the audit service.

A stream entry is `{"kind": "audit", "v": "1", "data": <record JSON>}`. A record never holds a
prompt, an answer or a secret: only who called, what ran, how much it cost and how it ended.
Most records are requests; a record with an `event` tells of something else that happened
(`budget_alert`: a budget passed one of its alert thresholds, its figures in `details`).

Both ends are bounded, so a slow database cannot make Redis grow without limit: every text field
of a record has a maximum length, the edge adds to the stream only while it holds fewer than
`AUDIT_STREAM_MAXLEN` entries (`CAPPED_XADD`), and the audit service skips an entry larger than
`MAX_ENTRY_BYTES`; both count what they leave out.
"""

import hashlib
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis.asyncio import Redis

from shared.identifiers import MODEL_MAX_LENGTH
from shared.redis_keys import RedisKeys

Outcome = Literal["success", "error", "cancelled"]
CacheResult = Literal["hit", "miss", "bypass"]
KIND = "audit"
AUDIT_GROUP = "audit"
MAX_ENTRY_BYTES = 4096

# Adds entries, in order, while the stream holds fewer than `maxlen`; returns how many it added
# (the rest are left out). KEYS: the stream; ARGV: maxlen, the number of values per entry,
# then each entry's fields and values.
CAPPED_XADD = """
local room = tonumber(ARGV[1]) - redis.call('XLEN', KEYS[1])
local width = tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV, width do
  if added >= room then break end
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i, i + width - 1))
  added = added + 1
end
return added
"""
CAPPED_XADD_SHA = hashlib.sha1(CAPPED_XADD.encode()).hexdigest()

Id = Annotated[str, Field(max_length=64)]


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        """PostgreSQL text cannot hold NUL, and a request may carry one (in its path, say):
        one such record must never block the stream behind it."""
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value

    v: Literal[1] = 1
    trace_id: Annotated[str, Field(max_length=128)]
    ts: float  # when the request arrived (Unix seconds)
    method: Annotated[str, Field(max_length=16)]
    path: Annotated[str, Field(max_length=256)]  # without the query string
    status: int
    outcome: Outcome
    duration_ms: float  # until the last byte was sent (for streams: when the stream ended)
    user_id: Id | None = None
    api_key_id: Id | None = None  # the gateway API key used, if any
    provider: Id | None = None
    model: Annotated[str, Field(max_length=MODEL_MAX_LENGTH)] | None = None
    job_id: Id | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    error_type: Id | None = None
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
    """XADD the record, uncapped (the edge adds through `CAPPED_XADD`); the audit service
    deletes what it stored."""
    entry_id = await redis.xadd(keys.audit(), encode(record))  # type: ignore[arg-type]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
