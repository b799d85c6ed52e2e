"""The audit stream is bounded at both ends, so a slow audit database cannot let Redis grow
without limit, and what is left out is counted (shared/audit.py).

The edge adds a record only while the stream holds fewer than `AUDIT_STREAM_MAXLEN` entries
(`gateway_audit_records_dropped_total{reason="stream_full"}`); the audit service skips an
entry over `MAX_ENTRY_BYTES` (`gateway_audit_entries_skipped_total{reason="too_large"}`).
"""

import asyncio
import re
import secrets
import time

import asyncpg
import httpx
import orjson
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.edge.audit import AuditEmitter
from services.fleet.plan import FleetConfig
from shared import audit
from shared.metrics import EdgeMetrics
from shared.redis_keys import RedisKeys
from tests.audit.support import record


async def test_the_edge_drops_records_past_the_streams_cap_and_counts_them(
    redis_url: str,
) -> None:
    keys = RedisKeys(f"gw-auditcap-{secrets.token_hex(4)}")
    redis = Redis.from_url(redis_url)
    metrics = EdgeMetrics(CollectorRegistry())
    emitter = AuditEmitter(redis, keys, maxlen=5, lost=metrics.audit_dropped)
    try:
        for _ in range(8):
            emitter.submit(record())
        await emitter.drain()
        assert await redis.xlen(keys.audit()) == 5
    finally:
        await redis.delete(keys.audit())
        await redis.aclose()
    assert (emitter.emitted, emitter.dropped) == (5, 3)
    assert metrics.audit_dropped.labels("stream_full")._value.get() == 3


SKIPPED_TOO_LARGE = re.compile(r'gateway_audit_entries_skipped_total\{reason="too_large"\} (\S+)')


def _skipped(exposition: str) -> float:
    found = SKIPPED_TOO_LARGE.search(exposition)
    return float(found.group(1)) if found else 0.0


async def test_the_audit_service_skips_an_oversized_entry_and_counts_it(
    fleet: FleetConfig, database_url: str
) -> None:
    assert fleet.audit_url
    keys = RedisKeys(fleet.redis_prefix)
    oversized = record().model_dump() | {"model": "m" * 100_000}
    normal = record()
    async with httpx.AsyncClient(base_url=fleet.audit_url) as service:
        skipped_before = _skipped((await service.get("/metrics")).text)
        redis = Redis.from_url(fleet.redis_url)
        try:
            data = orjson.dumps(oversized)
            big_id = await redis.xadd(keys.audit(), {"kind": "audit", "v": "1", "data": data})
            await audit.emit(redis, keys, normal)
            conn = await asyncpg.connect(database_url)
            try:
                deadline = time.monotonic() + 30
                query = "SELECT count(*) FROM audit_log WHERE trace_id = $1"
                while not await conn.fetchval(query, normal.trace_id):
                    assert time.monotonic() < deadline, "the normal record was never stored"
                    await asyncio.sleep(0.2)
                assert await conn.fetchval(query, oversized["trace_id"]) == 0
            finally:
                await conn.close()
            assert await redis.xrange(keys.audit(), big_id, big_id) == []
        finally:
            await redis.aclose()
        assert _skipped((await service.get("/metrics")).text) == skipped_before + 1
