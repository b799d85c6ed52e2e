"""The audit chain is keyed: only the audit service's key makes a row match.

The chain was `sha256(prev_hash || row)`: anyone who could write the table could rewrite it
from any row and have `verify` pass. Rows are now chained with an HMAC under a versioned
secret (`AUDIT_HMAC_KEYS`), the chain's head is kept under its own HMAC so deleting the newest
rows shows, `python -m services.audit verify` names the first row that does not match, and
`rekey` re-chains rows written before (or under an older key) once the chain checks out.
"""

import base64
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.audit.chain import COLUMNS, GENESIS, canonical, row_fields
from services.audit.main import MIGRATIONS, SERVICE
from services.audit.repository import AuditRepository
from shared.db import create_pool
from tests.audit.support import CHAIN_KEYS, HMAC_KEYS, record, verify
from tests.databases import migrated_database
from tests.security.support import production_env, start_and_wait


@pytest.fixture
def audit_db(postgres_server: str) -> Iterator[str]:
    with migrated_database(postgres_server, "gw_chain", SERVICE, MIGRATIONS) as dsn:
        yield dsn


@pytest.fixture
async def db(audit_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(audit_db)
    yield conn
    await conn.close()


async def _store(audit_db: str, count: int, keys: object = CHAIN_KEYS) -> None:
    pool = await create_pool(audit_db, max_size=2)
    try:
        repo = AuditRepository(pool, keys)  # type: ignore[arg-type]
        stamp = int(time.time() * 1000)
        for start in range(0, count, 500):
            batch = [(f"{stamp}-{i}", record()) for i in range(start, min(count, start + 500))]
            assert await repo.insert_batch(batch) == len(batch)
    finally:
        await pool.close()


def _sha256(prev: str, row: object) -> str:
    return hashlib.sha256(prev.encode() + canonical(row)).hexdigest()  # type: ignore[arg-type]


async def _rewrite_without_the_key(db: asyncpg.Connection, start: int) -> None:
    """What someone who can write the table, but holds no key, can do: change a row and
    recompute every hash from it on, as the chain once was computed."""
    await db.execute("UPDATE audit_log SET total_tokens = 0 WHERE seq = $1", start)
    prev = await db.fetchval("SELECT row_hash FROM audit_log WHERE seq = $1", start - 1)
    for row in await db.fetch("SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq", start):
        digest = _sha256(prev, row)
        await db.execute(
            "UPDATE audit_log SET prev_hash = $2, row_hash = $3 WHERE seq = $1",
            row["seq"],
            prev,
            digest,
        )
        prev = digest


async def test_a_row_rewritten_without_the_key_is_named(
    audit_db: str, db: asyncpg.Connection
) -> None:
    await _store(audit_db, 10)
    await _rewrite_without_the_key(db, 5)
    result = verify(audit_db)
    assert result.returncode == 1, result.stdout
    assert "seq=5 " in result.stderr
    assert "do not match" in result.stderr


async def test_verify_walks_every_page_of_rows(audit_db: str, db: asyncpg.Connection) -> None:
    await _store(audit_db, 2_500)
    intact = verify(audit_db)
    assert intact.returncode == 0, intact.stderr
    assert "2500 rows" in intact.stdout and "head seq=2500 " in intact.stdout

    await db.execute("UPDATE audit_log SET status = 500 WHERE seq = 2100")
    changed = verify(audit_db)
    assert changed.returncode == 1 and "seq=2100 " in changed.stderr
    await db.execute("UPDATE audit_log SET status = 200 WHERE seq = 2100")

    await db.execute("DELETE FROM audit_log WHERE seq = 2345")
    removed = verify(audit_db)
    assert removed.returncode == 1 and "seq=2346 " in removed.stderr


async def test_deleting_the_newest_rows_is_detected(audit_db: str, db: asyncpg.Connection) -> None:
    await _store(audit_db, 10)
    await db.execute("DELETE FROM audit_log WHERE seq > 8")
    result = verify(audit_db)
    assert result.returncode == 1
    assert "seq=8 " in result.stderr
    assert "rows 9..10 are missing" in result.stderr

    await db.execute("DELETE FROM audit_chain_head")
    result = verify(audit_db)
    assert result.returncode == 1 and "head record is missing" in result.stderr


async def test_deleted_newest_rows_stay_detected_after_the_writer_restarts(
    audit_db: str, db: asyncpg.Connection
) -> None:
    """A restarted writer goes on from the head record, not from the table's last row."""
    await _store(audit_db, 10)
    await db.execute("DELETE FROM audit_log WHERE seq > 8")
    await _store(audit_db, 2)  # a new repository: what an audit service does at start
    result = verify(audit_db)
    assert result.returncode == 1
    assert "seq=11 " in result.stderr and "prev_hash" in result.stderr


async def test_a_deleted_head_record_is_not_written_again(
    audit_db: str, db: asyncpg.Connection
) -> None:
    await _store(audit_db, 10)
    await db.execute("DELETE FROM audit_log WHERE seq > 8")
    await db.execute("DELETE FROM audit_chain_head")
    pool = await create_pool(audit_db, max_size=2)
    try:
        repo = AuditRepository(pool, CHAIN_KEYS)
        for batch in range(3):  # the first after a start, then the ones after it
            assert await repo.insert_batch([(f"1700000000009-{batch}", record())]) == 1
    finally:
        await pool.close()
    result = verify(audit_db)
    assert result.returncode == 1 and "head record is missing" in result.stderr


async def test_an_older_copy_of_the_head_hides_deleted_rows_only_from_verify_alone(
    audit_db: str, db: asyncpg.Connection
) -> None:
    """The limit SECURITY.md states: a head once valid stays valid. `verify` prints the head,
    so a head kept elsewhere (here: `recorded`) shows the chain went backwards."""
    await _store(audit_db, 8)
    old_head = dict(await db.fetchrow("SELECT * FROM audit_chain_head"))
    await _store(audit_db, 2)
    recorded = verify(audit_db)
    assert "head seq=10 " in recorded.stdout
    await db.execute("DELETE FROM audit_log WHERE seq > 8")
    await db.execute(
        "UPDATE audit_chain_head SET seq = $1, row_hash = $2, key_version = $3, mac = $4",
        old_head["seq"],
        old_head["row_hash"],
        old_head["key_version"],
        old_head["mac"],
    )
    replayed = verify(audit_db)
    assert replayed.returncode == 0
    assert "head seq=8 " in replayed.stdout  # behind the head recorded before


async def _store_unkeyed(db: asyncpg.Connection, count: int) -> None:
    """Rows as the audit service stored them before its chain was keyed."""
    prev = GENESIS
    columns = [*COLUMNS, "prev_hash", "row_hash"]
    insert = (
        f"INSERT INTO audit_log ({', '.join(columns)}) VALUES"
        f" ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})"
    )
    for seq in range(1, count + 1):
        fields = row_fields(seq, f"1600000000000-{seq}", record())
        digest = _sha256(prev, fields)
        await db.execute(insert, *fields.values(), prev, digest)
        prev = digest


async def test_rows_from_before_the_key_are_re_chained_once_they_check_out(
    audit_db: str, db: asyncpg.Connection
) -> None:
    await _store_unkeyed(db, 5)
    unkeyed = verify(audit_db)
    assert unkeyed.returncode == 1 and "seq=1 " in unkeyed.stderr and "not keyed" in unkeyed.stderr
    rekeyed = verify(audit_db, "rekey")
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert "5 rows" in rekeyed.stdout
    await _store(audit_db, 3)
    intact = verify(audit_db)
    assert intact.returncode == 0, intact.stderr
    assert "8 rows" in intact.stdout


async def test_a_broken_chain_is_never_re_chained(audit_db: str, db: asyncpg.Connection) -> None:
    await _store_unkeyed(db, 5)
    await db.execute("UPDATE audit_log SET total_tokens = 1 WHERE seq = 3")
    refused = verify(audit_db, "rekey")
    assert refused.returncode == 1
    assert "seq=3 " in refused.stderr
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE key_version IS NULL") == 5


async def test_rotating_the_key_re_chains_under_the_newest_version(
    audit_db: str, db: asyncpg.Connection
) -> None:
    await _store(audit_db, 4)
    second = base64.b64encode(os.urandom(32)).decode()
    both = f"{HMAC_KEYS},2:{second}"
    assert verify(audit_db, "verify", both).returncode == 0
    rekeyed = verify(audit_db, "rekey", both)
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert await db.fetchval("SELECT DISTINCT key_version FROM audit_log") == 2
    intact = verify(audit_db, "verify", f"2:{second}")
    assert intact.returncode == 0, intact.stderr
    assert verify(audit_db).returncode == 1  # version 1 alone no longer verifies


def test_the_audit_service_refuses_to_start_in_production_without_its_key(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    env = production_env(tmp_path, redis_url, database_url)
    code, output = start_and_wait("services.audit", env, tmp_path)
    assert code != 0
    assert "AUDIT_HMAC_KEYS is not set" in output, output
