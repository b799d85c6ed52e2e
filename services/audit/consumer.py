"""Reads the audit stream in the `audit` consumer group and stores it in batches.

After a batch that did not fill up, the consumer waits `linger_ms` before reading again, so
under load a batch gathers the records of that moment (one read, one INSERT and one ack for
all of them) instead of costing those round trips per request; a record is stored at most
that much later.

Loss-free by ordering: a batch is committed to PostgreSQL in one transaction and only then
XACKed and XDELed. A consumer that dies before the ack leaves its entries pending; at start (and
after any failure) it first re-reads its own pending entries (id `0`), then new ones (`>`), and
entries left pending by a consumer that never came back are taken over with XAUTOCLAIM. The
insert skips entries already stored, so a re-delivery inserts nothing twice.

Bounded: a batch is at most `batch` entries of at most `MAX_ENTRY_BYTES` each; a larger entry
or one that does not decode is skipped (acknowledged, never stored) and counted in
`gateway_audit_entries_skipped_total`.
"""

import asyncio
import logging
import time
from typing import Any

import pydantic
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.audit.repository import AuditRepository
from shared.audit import AUDIT_GROUP, MAX_ENTRY_BYTES, AuditRecord, decode
from shared.redis_keys import RedisKeys

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes] | None]

SKIPPED = Counter(
    "gateway_audit_entries_skipped_total",
    "Audit stream entries not stored: too_large (over MAX_ENTRY_BYTES) or unreadable",
    ["reason"],
)


class AuditConsumer:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        repo: AuditRepository,
        *,
        consumer: str,
        batch: int = 500,
        block_ms: int = 1000,
        linger_ms: int = 200,
        reclaim_idle_ms: int = 30_000,
    ) -> None:
        self.redis = redis
        self.stream = keys.audit()
        self.repo = repo
        self.consumer = consumer
        self.batch = batch
        self.block_ms = block_ms
        self.linger = linger_ms / 1000
        self.reclaim_idle_ms = reclaim_idle_ms
        self.stored = 0
        self._next_reclaim = 0.0

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, AUDIT_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        backlog = True
        while True:
            try:
                if backlog:
                    await self.ensure_group()
                    backlog = await self.step("0") > 0
                else:
                    await self.reclaim()
                    if await self.step(">") < self.batch:
                        await asyncio.sleep(self.linger)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("audit batch not stored; retrying its pending entries")
                backlog = True
                await asyncio.sleep(1.0)

    async def step(self, cursor: str) -> int:
        """Reads and stores one batch (`0`: own pending entries, `>`: new ones); returns how
        many entries it read."""
        block = None if cursor == "0" else self.block_ms
        reply: Any = await self.redis.xreadgroup(
            AUDIT_GROUP, self.consumer, {self.stream: cursor}, count=self.batch, block=block
        )
        entries: list[Entry] = reply[0][1] if reply else []
        await self.store(entries)
        return len(entries)

    async def reclaim(self) -> None:
        """Takes over entries another consumer read long ago and never acknowledged."""
        if time.monotonic() < self._next_reclaim:
            return
        self._next_reclaim = time.monotonic() + self.reclaim_idle_ms / 2000
        start = "0-0"
        while True:
            reply: Any = await self.redis.xautoclaim(
                self.stream,
                AUDIT_GROUP,
                self.consumer,
                self.reclaim_idle_ms,
                start_id=start,
                count=self.batch,
            )
            start, entries = reply[0], reply[1]
            await self.store(entries)
            if start in (b"0-0", "0-0") or not entries:
                return

    async def store(self, entries: list[Entry]) -> None:
        if not entries:
            return
        records: list[tuple[str, AuditRecord]] = []
        for entry_id, fields in entries:
            if not fields:  # deleted after it was read: stored already
                continue
            if len(fields.get(b"data", b"")) > MAX_ENTRY_BYTES:
                SKIPPED.labels("too_large").inc()
                log.error(
                    "audit entry %s over %d bytes skipped", entry_id.decode(), MAX_ENTRY_BYTES
                )
                continue
            try:
                records.append((entry_id.decode(), decode(fields)))
            except (pydantic.ValidationError, KeyError):
                SKIPPED.labels("unreadable").inc()
                log.error("unreadable audit entry %s skipped", entry_id.decode())
        inserted = await self.repo.insert_batch(records)
        ids = [entry_id for entry_id, _ in entries]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, AUDIT_GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            await pipe.execute()
        self.stored += inserted
        if inserted < len(records):
            log.info("%d re-delivered audit entries were stored already", len(records) - inserted)
