"""The hash chain over audit rows: how a row's hash is computed, and the walk that checks it.

`row_hash = sha256(prev_hash || canonical JSON of CHAINED fields)`, the first row's `prev_hash`
being `GENESIS`. Changing a chained field breaks that row's hash; removing or reordering rows
breaks the next row's `prev_hash`. The fields added later (`ADDED`) are chained when set, so
the rows written before them keep their hashes.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from shared.audit import AuditRecord

GENESIS = "0" * 64
CHAINED = (
    "seq",
    "entry_id",
    "trace_id",
    "at",
    "method",
    "path",
    "status",
    "outcome",
    "duration_ms",
    "user_id",
    "api_key_id",
    "provider",
    "model",
    "job_id",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "error_type",
    "cache",
)
ADDED = ("cached_tokens", "cost_usd", "event", "details")
COLUMNS = (*CHAINED, *ADDED)
_PAGE = 1000


def row_fields(seq: int, entry_id: str, record: AuditRecord) -> dict[str, Any]:
    """The row's column values, in `COLUMNS` order, as the database takes them."""
    values = record.model_dump(exclude={"v", "ts"})
    values.update(seq=seq, entry_id=entry_id, at=datetime.fromtimestamp(record.ts, UTC))
    if values["cost_usd"] is not None:
        values["cost_usd"] = Decimal(str(values["cost_usd"]))
    if values["details"] is not None:
        values["details"] = orjson.dumps(values["details"]).decode()
    return {name: values[name] for name in COLUMNS}


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if name == "cost_usd":
        return f"{Decimal(str(value)):.8f}"
    if name == "details" and isinstance(value, str):  # jsonb arrives as its text
        return orjson.loads(value)
    return value


def canonical(fields: Mapping[str, Any]) -> bytes:
    chained = {name: _plain(name, fields[name]) for name in CHAINED}
    chained |= {n: _plain(n, fields[n]) for n in ADDED if fields.get(n) is not None}
    return orjson.dumps(chained, option=orjson.OPT_SORT_KEYS)


def row_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(fields)).hexdigest()


@dataclass(frozen=True)
class Broken:
    seq: int
    entry_id: str
    trace_id: str
    reason: str

    def describe(self) -> str:
        return (
            f"audit chain broken at row seq={self.seq} (entry {self.entry_id}, trace"
            f" {self.trace_id}): {self.reason}"
        )


@dataclass(frozen=True)
class Verdict:
    rows: int
    broken: Broken | None


def _check(row: asyncpg.Record, prev: str, after: int) -> str | None:
    if row["prev_hash"] != prev:
        return "its prev_hash is not the previous row's hash (rows removed, added or changed)"
    if row_hash(prev, row) != row["row_hash"]:
        return "its fields do not match its row_hash (the row was changed)"
    if row["seq"] != after + 1:
        return f"rows {after + 1}..{row['seq'] - 1} are missing"
    return None


async def verify(conn: asyncpg.Connection) -> Verdict:
    """Walks the whole chain in one snapshot; the first row that does not match breaks it."""
    prev, after, count = GENESIS, 0, 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        while True:
            rows = await conn.fetch(
                "SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2", after, _PAGE
            )
            if not rows:
                return Verdict(count, None)
            for row in rows:
                reason = _check(row, prev, after)
                if reason is not None:
                    broken = Broken(row["seq"], row["entry_id"], row["trace_id"], reason)
                    return Verdict(count, broken)
                prev, after, count = row["row_hash"], row["seq"], count + 1
