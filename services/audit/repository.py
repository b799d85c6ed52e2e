"""Audit rows in PostgreSQL: the idempotent, hash-chained batch insert (`usage.py` reads them)."""

import contextlib

import asyncpg

from services.audit.chain import COLUMNS, GENESIS, row_fields, row_hash
from shared.audit import AuditRecord

# One writer extends the chain at a time, whichever audit process holds this lock.
_CHAIN_LOCK = 0x61756469  # "audi"
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
}
_COLUMNS = [*COLUMNS, "prev_hash", "row_hash"]
# All rows of a batch in one statement (its own transaction), under the chain's lock.
_INSERT = (
    f"WITH chain AS (SELECT pg_advisory_xact_lock({_CHAIN_LOCK}))"
    f" INSERT INTO audit_log ({', '.join(_COLUMNS)})"
    " SELECT batch.* FROM chain, unnest("
    + ", ".join(f"${i}::{_TYPES.get(name, 'text')}[]" for i, name in enumerate(_COLUMNS, 1))
    + ") AS batch"
)

Head = tuple[int, str]  # the chain's last row: its seq and row_hash


def _chained(
    entries: list[tuple[str, AuditRecord]], head: Head, stored: set[str]
) -> tuple[list[tuple[object, ...]], Head]:
    """The rows extending the chain from `head` with the entries not in `stored`."""
    seq, prev = head
    rows: list[tuple[object, ...]] = []
    for entry_id, record in entries:
        if entry_id in stored:
            continue
        stored.add(entry_id)
        seq += 1
        fields = row_fields(seq, entry_id, record)
        digest = row_hash(prev, fields)
        rows.append((*fields.values(), prev, digest))
        prev = digest
    return rows, (seq, prev)


class AuditRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
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
                rows, head = _chained(entries, head, set())
                await self.pool.execute(_INSERT, *zip(*rows, strict=True))
                self._head = head
                return len(rows)
        rows, self._head = await self._insert_checked(entries)
        return len(rows)

    async def _insert_checked(
        self, entries: list[tuple[str, AuditRecord]]
    ) -> tuple[list[tuple[object, ...]], Head]:
        """Reads the chain's head and the entries stored already under the chain's lock."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _CHAIN_LOCK)
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
            head = (last["seq"], last["row_hash"]) if last else (0, GENESIS)
            rows, head = _chained(entries, head, stored)
            if rows:
                await conn.execute(_INSERT, *zip(*rows, strict=True))
        return rows, head

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")
