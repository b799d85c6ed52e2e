"""Audit rows in PostgreSQL: the idempotent, keyed-chain batch insert (`usage.py` reads them)."""

import contextlib
import logging

import asyncpg

from services.audit.chain import COLUMNS, GENESIS, head_mac, row_fields, row_hash
from services.audit.chain_keys import ChainKeys
from shared.audit import AuditRecord

log = logging.getLogger(__name__)

# One writer extends the chain at a time, whichever audit process holds this lock.
CHAIN_LOCK = 0x61756469  # "audi"
_TYPES = {
    "seq": "bigint",
    "at": "timestamptz",
    "status": "integer",
    "duration_ms": "double precision",
    "prompt_tokens": "integer",
    "completion_tokens": "integer",
    "total_tokens": "integer",
    "cached_tokens": "integer",
    "cost_usd": "numeric",
    "details": "jsonb",
    "key_version": "integer",
}
_COLUMNS = [*COLUMNS, "key_version", "prev_hash", "row_hash"]
_HEAD_UPDATE = (
    " ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, row_hash = EXCLUDED.row_hash,"
    " key_version = EXCLUDED.key_version, mac = EXCLUDED.mac, updated_at = now()"
)
# $1 seq, $2 row_hash, $3 key_version, $4 mac of the chain's last row.
UPSERT_HEAD = (
    "INSERT INTO audit_chain_head (seq, row_hash, key_version, mac) VALUES ($1, $2, $3, $4)"
    + _HEAD_UPDATE
)
_HEAD_PARAMS = ", ".join(
    f"${len(_COLUMNS) + i}::{kind}"
    for i, kind in enumerate(("bigint", "text", "integer", "text"), 1)
)
_ADD_ROWS = (
    f"INSERT INTO audit_log ({', '.join(_COLUMNS)})"
    " SELECT batch.* FROM chain, unnest("
    + ", ".join(f"${i}::{_TYPES.get(name, 'text')}[]" for i, name in enumerate(_COLUMNS, 1))
    + ") AS batch"
)
_LOCK = f"WITH chain AS (SELECT pg_advisory_xact_lock({CHAIN_LOCK}))"
# All rows of a batch and the chain's new head in one statement (its own transaction), under
# the chain's lock.
_INSERT = (
    f"{_LOCK}, added AS ({_ADD_ROWS} RETURNING seq)"
    f" INSERT INTO audit_chain_head (seq, row_hash, key_version, mac)"
    f" SELECT {_HEAD_PARAMS} FROM (SELECT count(*) FROM added) AS stored" + _HEAD_UPDATE
)
# The rows alone: while the head record is missing from a keyed chain (see `_insert_checked`).
_INSERT_ROWS = f"{_LOCK} {_ADD_ROWS}"

Head = tuple[int, str]  # the chain's last row: its seq and row_hash


def _chained(
    keys: ChainKeys, entries: list[tuple[str, AuditRecord]], head: Head, stored: set[str]
) -> tuple[list[tuple[object, ...]], Head]:
    """The rows extending the chain from `head` with the entries not in `stored`."""
    seq, prev = head
    version = keys.newest
    rows: list[tuple[object, ...]] = []
    for entry_id, record in entries:
        if entry_id in stored:
            continue
        stored.add(entry_id)
        seq += 1
        fields = row_fields(seq, entry_id, record)
        digest = row_hash(keys, version, prev, fields)
        rows.append((*fields.values(), version, prev, digest))
        prev = digest
    return rows, (seq, prev)


def _resume_from(last: asyncpg.Record | None, recorded: asyncpg.Record | None) -> Head:
    """Where the chain goes on: from its head record, so newest rows deleted since leave a
    gap `verify` shows, unless the table goes further (rows added by hand: `verify` shows
    those)."""
    if recorded is not None and (last is None or recorded["seq"] >= last["seq"]):
        return recorded["seq"], recorded["row_hash"]
    return (last["seq"], last["row_hash"]) if last is not None else (0, GENESIS)


class AuditRepository:
    def __init__(self, pool: asyncpg.Pool, keys: ChainKeys) -> None:
        self.pool = pool
        self.keys = keys
        # The chain's last row as this writer left it: the next batch is then one INSERT.
        # Unknown at start and after any failure.
        self._head: Head | None = None

    async def insert_batch(self, entries: list[tuple[str, AuditRecord]]) -> int:
        """Appends the entries not stored yet to the chain, in one transaction; returns how
        many were new. Entries are keyed by their stream entry id, so a re-delivered batch
        inserts nothing twice."""
        if not entries:
            return 0
        head, self._head = self._head, None
        if head is not None:
            # Conflicts only when an entry was stored already (a re-delivery) or another
            # audit process extended the chain since; the checked insert sorts both out.
            with contextlib.suppress(asyncpg.UniqueViolationError):
                rows, head = _chained(self.keys, entries, head, set())
                await self.pool.execute(_INSERT, *self._params(rows, head))
                self._head = head
                return len(rows)
        rows, self._head = await self._insert_checked(entries)
        return len(rows)

    async def _insert_checked(
        self, entries: list[tuple[str, AuditRecord]]
    ) -> tuple[list[tuple[object, ...]], Head | None]:
        """Reads the chain's head and the entries stored already under the chain's lock; the
        head the next batch may start from (None: check again)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
            stored = {
                r["entry_id"]
                for r in await conn.fetch(
                    "SELECT entry_id FROM audit_log WHERE entry_id = ANY($1::text[])",
                    [entry_id for entry_id, _ in entries],
                )
            }
            last = await conn.fetchrow(
                "SELECT seq, row_hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            )
            recorded = await conn.fetchrow("SELECT seq, row_hash FROM audit_chain_head")
            rows, head = _chained(self.keys, entries, _resume_from(last, recorded), stored)
            if not rows:
                return rows, head
            if recorded is None and await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE key_version IS NOT NULL)"
            ):
                # Someone deleted the head record of a keyed chain: a new one would hide what
                # it showed (deleted newest rows), so none is written and verify says so.
                log.error("the audit chain's head record is missing: run `verify`")
                await conn.execute(_INSERT_ROWS, *self._params(rows, head)[: len(_COLUMNS)])
                return rows, None
            await conn.execute(_INSERT, *self._params(rows, head))
        return rows, head

    def _params(self, rows: list[tuple[object, ...]], head: Head) -> list[object]:
        """The insert's column arrays, then the new head with its HMAC."""
        version = self.keys.newest
        mac = head_mac(self.keys, version, *head)
        return [*zip(*rows, strict=True), head[0], head[1], version, mac]

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")
