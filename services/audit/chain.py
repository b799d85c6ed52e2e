"""The keyed hash chain over audit rows: how a row's hash is computed, and the walk that checks it.

`row_hash = HMAC-SHA256(key[key_version], prev_hash || canonical JSON of CHAINED fields)`, the
first row's `prev_hash` being `GENESIS` (keys: `chain_keys.py`). Changing a chained field breaks
that row's hash; removing or reordering rows breaks the next row's `prev_hash`; nobody without
the key can compute a matching hash for a changed or added row. The fields added later
(`ADDED`) are chained when set, so the rows written before them keep their hashes.

The newest rows have no next row to break, so the chain's head (its last seq and hash) is also
kept in `audit_chain_head`, under its own HMAC, updated in the statement that adds each batch:
deleting the newest rows leaves the head pointing past the table's end. What this cannot show:
newest rows deleted together with the head replaced by an older copy of itself (a head once
valid stays valid); keep the head `verify` prints somewhere else to catch that.

Rows written before the chain was keyed carry a plain SHA-256 (`key_version` NULL): `python -m
services.audit rekey` re-chains them once their chain checks out (`rekey.py`). Until then
`verify` reports them: a row anyone could have rewritten is not evidence.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from services.audit.chain_keys import ChainKeys
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
HEAD_QUERY = "SELECT seq, row_hash, key_version, mac FROM audit_chain_head"


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


def row_hash(keys: ChainKeys, version: int, prev_hash: str, fields: Mapping[str, Any]) -> str:
    return keys.mac(version, prev_hash.encode() + canonical(fields))


def legacy_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The unkeyed hash of rows written before `AUDIT_HMAC_KEYS`."""
    return hashlib.sha256(prev_hash.encode() + canonical(fields)).hexdigest()


def head_mac(keys: ChainKeys, version: int, seq: int, last_hash: str) -> str:
    return keys.mac(version, f"audit-chain-head|{seq}|{last_hash}".encode())


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
    head: tuple[int, str] | None = None  # the last row's seq and hash


def _check(row: asyncpg.Record, prev: str, after: int, keys: ChainKeys, legacy: bool) -> str | None:
    if row["prev_hash"] != prev:
        return "its prev_hash is not the previous row's hash (rows removed, added or changed)"
    version = row["key_version"]
    if version is None:
        if not legacy:
            return "the row is not keyed (run `python -m services.audit rekey` once)"
        expected = legacy_hash(prev, row)
    elif not keys.has(version):
        return f"its key version {version} is not in AUDIT_HMAC_KEYS"
    else:
        expected = row_hash(keys, version, prev, row)
    if expected != row["row_hash"]:
        return "its fields do not match its row_hash (the row was changed)"
    if row["seq"] != after + 1:
        return f"rows {after + 1}..{row['seq'] - 1} are missing"
    return None


def _head_problem(
    head: asyncpg.Record | None, last: tuple[int, str], keyed: bool, keys: ChainKeys
) -> str | None:
    if head is None:
        return "the chain head record is missing" if keyed else None
    version = head["key_version"]
    if (
        not keys.has(version)
        or head_mac(keys, version, head["seq"], head["row_hash"]) != head["mac"]
    ):
        return "the chain head record was changed"
    if head["seq"] > last[0]:
        return f"rows {last[0] + 1}..{head['seq']} are missing (the newest rows were deleted)"
    if (head["seq"], head["row_hash"]) != last:
        return f"the chain head names row {head['seq']}, not the last row"
    return None


async def walk(conn: asyncpg.Connection, keys: ChainKeys, *, legacy: bool = False) -> Verdict:
    """Checks every row and the head, in the caller's transaction; `legacy` also accepts rows
    not keyed yet (by their plain SHA-256), as re-chaining them needs."""
    prev, after, count, keyed = GENESIS, 0, 0, False
    last: asyncpg.Record | None = None
    while rows := await conn.fetch(
        "SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2", after, _PAGE
    ):
        for row in rows:
            reason = _check(row, prev, after, keys, legacy)
            if reason is not None:
                broken = Broken(row["seq"], row["entry_id"], row["trace_id"], reason)
                return Verdict(count, broken)
            prev, after, count, last = row["row_hash"], row["seq"], count + 1, row
            keyed = keyed or row["key_version"] is not None
    problem = _head_problem(await conn.fetchrow(HEAD_QUERY), (after, prev), keyed, keys)
    if problem is not None:
        if last is None:
            return Verdict(count, Broken(0, "-", "-", problem))
        return Verdict(count, Broken(after, last["entry_id"], last["trace_id"], problem))
    return Verdict(count, None, (after, prev) if count else None)


async def verify(conn: asyncpg.Connection, keys: ChainKeys) -> Verdict:
    """Walks the whole chain in one snapshot; the first row that does not match breaks it."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await walk(conn, keys)
