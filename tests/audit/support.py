"""Records and table reads for the audit service's tests."""

import asyncio
import base64
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from services.audit.chain_keys import ChainKeys
from shared.audit import AuditRecord

# The audit tests' AUDIT_HMAC_KEYS: given to the processes they start and to `verify`.
HMAC_KEYS = "1:" + base64.b64encode(os.urandom(32)).decode()
CHAIN_KEYS = ChainKeys.parse(HMAC_KEYS)


def record(trace: str | None = None, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "trace_id": trace or f"req_audit_{secrets.token_hex(6)}",
        "ts": time.time(),
        "method": "POST",
        "path": "/api/v1/chat",
        "status": 200,
        "outcome": "success",
        "duration_ms": 12.5,
        "user_id": "usr_audit",
        "provider": "deepseek",
        "model": "deepseek-chat",
        "job_id": f"job_{secrets.token_hex(6)}",
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "total_tokens": 30,
    }
    return AuditRecord(**(values | fields))


async def rows_per_trace(db: asyncpg.Connection, traces: list[str]) -> dict[str, int]:
    found = await db.fetch(
        "SELECT trace_id, count(*) AS n FROM audit_log WHERE trace_id = ANY($1::text[])"
        " GROUP BY trace_id",
        traces,
    )
    return {r["trace_id"]: r["n"] for r in found}


async def wait_for_rows(db: asyncpg.Connection, traces: list[str], within: float = 60) -> None:
    """Until every trace has a row (bounded), then each must have exactly one."""
    deadline = time.monotonic() + within
    while True:
        counts = await rows_per_trace(db, traces)
        if len(counts) == len(traces) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    missing = [t for t in traces if t not in counts]
    assert not missing, f"{len(missing)} records never stored, e.g. {missing[:3]}"
    assert all(n == 1 for n in counts.values()), {t: n for t, n in counts.items() if n != 1}


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


@asynccontextmanager
async def inserts_held(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """audit_log locked against writes (readers go on) until the block ends; the connection
    holding the lock is yielded."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            yield conn
    finally:
        await conn.close()


async def waiting_inserts(db: asyncpg.Connection) -> list[int]:
    """The backends of `db`'s database whose INSERT into audit_log waits for a lock."""
    rows = await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO audit_log%'"
    )
    return [row["pid"] for row in rows]


async def backends_gone(db: asyncpg.Connection, pids: list[int]) -> None:
    """Waits until the backends `pids` ended (a killed client's statement ran to its end)."""

    async def gone() -> bool:
        found = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
        )
        return bool(found == 0)

    await eventually(gone)


def verify(
    database_url: str, command: str = "verify", hmac_keys: str = HMAC_KEYS
) -> subprocess.CompletedProcess[str]:
    """`python -m services.audit verify` (or `rekey`) on the database."""
    env = {
        "DATABASE_URL": database_url,
        "AUDIT_HMAC_KEYS": hmac_keys,
        "PATH": "/usr/bin:/bin",
        "LOG_LEVEL": "warning",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.audit", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
