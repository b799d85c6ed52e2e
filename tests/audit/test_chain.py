"""The hash chain: re-delivery stores nothing twice, and `verify` finds the changed row."""

import asyncpg

from services.audit.repository import AuditRepository
from shared.db import create_pool
from tests.audit.support import CHAIN_KEYS, record, verify


async def _insert(audit_db: str, entries: list[tuple[str, object]]) -> int:
    pool = await create_pool(audit_db, max_size=2)
    try:
        return await AuditRepository(pool, CHAIN_KEYS).insert_batch(entries)  # type: ignore[arg-type]
    finally:
        await pool.close()


async def test_a_redelivered_batch_inserts_nothing_twice(
    audit_db: str, db: asyncpg.Connection
) -> None:
    batch = [(f"1700000000000-{i}", record()) for i in range(5)]
    assert await _insert(audit_db, batch) == 5
    # Delivered again (the consumer died after the commit, before XACK), with one new entry.
    again = [*batch, ("1700000000001-0", record())]
    assert await _insert(audit_db, again) == 1
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 6
    assert await db.fetchval("SELECT count(DISTINCT entry_id) FROM audit_log") == 6
    assert verify(audit_db).returncode == 0


async def test_writers_sharing_the_chain_keep_it_whole(
    audit_db: str, db: asyncpg.Connection
) -> None:
    """Two audit processes' writers, each remembering where it left the chain, take turns;
    one of them also gets a batch delivered again."""
    pool = await create_pool(audit_db, max_size=2)
    try:
        first, second = AuditRepository(pool, CHAIN_KEYS), AuditRepository(pool, CHAIN_KEYS)
        batch = [(f"1700000000000-{i}", record()) for i in range(3)]
        assert await first.insert_batch(batch) == 3
        assert await second.insert_batch([("1700000000001-0", record())]) == 1
        assert await first.insert_batch([("1700000000002-0", record())]) == 1
        again = [*batch, ("1700000000003-0", record())]
        assert await first.insert_batch(again) == 1
        assert await second.insert_batch([("1700000000004-0", record())]) == 1
    finally:
        await pool.close()
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 7
    assert verify(audit_db).returncode == 0


async def test_verify_names_the_first_row_that_was_changed(
    audit_db: str, db: asyncpg.Connection
) -> None:
    await _insert(audit_db, [(f"1700000000000-{i}", record()) for i in range(10)])
    intact = verify(audit_db)
    assert intact.returncode == 0, intact.stderr
    assert "10 rows" in intact.stdout

    await db.execute("UPDATE audit_log SET total_tokens = total_tokens + 1 WHERE seq = 4")
    tampered = verify(audit_db)
    assert tampered.returncode == 1
    assert "seq=4 " in tampered.stderr
    assert "1700000000000-3" in tampered.stderr

    await db.execute("UPDATE audit_log SET total_tokens = total_tokens - 1 WHERE seq = 4")
    assert verify(audit_db).returncode == 0


async def test_verify_detects_a_removed_row(audit_db: str, db: asyncpg.Connection) -> None:
    await _insert(audit_db, [(f"1700000000000-{i}", record()) for i in range(5)])
    await db.execute("DELETE FROM audit_log WHERE seq = 3")
    result = verify(audit_db)
    assert result.returncode == 1
    assert "seq=4 " in result.stderr


async def test_an_empty_chain_verifies(audit_db: str) -> None:
    result = verify(audit_db)
    assert result.returncode == 0
    assert "0 rows" in result.stdout
