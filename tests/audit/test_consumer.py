"""The audit service as a process: nothing lost or doubled when it is killed mid-flight."""

import asyncio
from collections.abc import Callable

import asyncpg
from redis.asyncio import Redis

from services.audit.main import consumer_name
from services.audit.repository import AuditRepository
from services.fleet.processes import Service
from shared import audit
from shared.audit import AUDIT_GROUP
from shared.db import create_pool
from shared.redis_keys import RedisKeys
from tests.audit.support import (
    CHAIN_KEYS,
    backends_gone,
    eventually,
    inserts_held,
    record,
    verify,
    wait_for_rows,
    waiting_inserts,
)


async def _emit(redis: Redis, keys: RedisKeys, count: int) -> list[str]:
    traces = []
    for _ in range(count):
        item = record()
        await audit.emit(redis, keys, item)
        traces.append(item.trace_id)
    return traces


async def _read_without_ack(redis: Redis, keys: RedisKeys, consumer: str, count: int) -> list:
    reply = await redis.xreadgroup(AUDIT_GROUP, consumer, {keys.audit(): ">"}, count=count)
    return reply[0][1]


async def test_entries_of_a_consumer_that_died_are_stored_once(
    redis: Redis,
    audit_keys: RedisKeys,
    audit_db: str,
    db: asyncpg.Connection,
    audit_service: Callable[[], Service],
) -> None:
    await redis.xgroup_create(audit_keys.audit(), AUDIT_GROUP, id="0", mkstream=True)
    traces = await _emit(redis, audit_keys, 60)
    # The service's own name read a batch and died before storing it...
    await _read_without_ack(redis, audit_keys, consumer_name(), 20)
    # ... read another, stored it, and died before XACK ...
    committed = await _read_without_ack(redis, audit_keys, consumer_name(), 10)
    pool = await create_pool(audit_db, max_size=1)
    try:
        entries = [(i.decode(), audit.decode(f)) for i, f in committed]
        assert await AuditRepository(pool, CHAIN_KEYS).insert_batch(entries) == 10
    finally:
        await pool.close()
    # ... and a replica that never comes back read some more (taken over with XAUTOCLAIM).
    await _read_without_ack(redis, audit_keys, "audit-gone-for-good", 10)

    audit_service()
    await wait_for_rows(db, traces)

    async def stream_emptied() -> bool:
        return await redis.xlen(audit_keys.audit()) == 0

    await eventually(stream_emptied)
    assert verify(audit_db).returncode == 0


async def test_sigkill_while_records_keep_coming_loses_nothing(
    redis: Redis,
    audit_keys: RedisKeys,
    audit_db: str,
    db: asyncpg.Connection,
    audit_service: Callable[[], Service],
) -> None:
    first = audit_service()
    traces = await _emit(redis, audit_keys, 50)
    await wait_for_rows(db, traces)
    async with inserts_held(audit_db):
        producer = asyncio.create_task(_emit(redis, audit_keys, 400))

        async def storing() -> bool:
            pending = (await redis.xpending(audit_keys.audit(), AUDIT_GROUP))["pending"]
            return pending > 0 and bool(await waiting_inserts(db))

        # Killed with a batch read and not acknowledged, its INSERT on its way to PostgreSQL.
        await eventually(storing)
        orphans = await waiting_inserts(db)
        assert first.process is not None
        first.process.kill()  # SIGKILL, by its PID
        first.process.wait()
        traces += await producer
    # The dead process's statement goes on once the lock is gone, and may commit: its entries
    # are still pending in the stream, so they come again to the next consumer.
    await backends_gone(db, orphans)
    traces += await _emit(redis, audit_keys, 50)  # while nobody consumes

    audit_service()
    await wait_for_rows(db, traces)
    assert await db.fetchval("SELECT count(*) FROM audit_log") == len(traces)

    async def nothing_pending() -> bool:
        return (await redis.xpending(audit_keys.audit(), AUDIT_GROUP))["pending"] == 0

    await eventually(nothing_pending)
    assert verify(audit_db).returncode == 0
