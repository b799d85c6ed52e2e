"""A flood of public readiness probes cannot use up PostgreSQL's connection slots.

`/health/ready` is served through the ingress; each call once opened a new PostgreSQL
connection, so a flood starved auth and keyvault of connections. The edge now checks at most
once a second, on its own one-connection pool (services/edge/health.py).
"""

import asyncio

import asyncpg
import httpx

PROBES, AT_ONCE = 1000, 50
# Sessions other fleet processes might open meanwhile (their pools grow under load); far
# below one per probe.
SLACK = 20


async def _sessions(conn: asyncpg.Connection) -> int:
    """Sessions ever established to this database (PostgreSQL's cumulative statistics)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    count: int = await conn.fetchval(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    return count


async def test_a_thousand_readiness_probes_open_no_database_sessions(
    edge: httpx.AsyncClient, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        before = await _sessions(conn)
        for _ in range(PROBES // AT_ONCE):
            answers = await asyncio.gather(*(edge.get("/health/ready") for _ in range(AT_ONCE)))
            assert all(a.status_code == 200 for a in answers), answers[0].text
            assert all(a.json()["database"] == "connected" for a in answers)
        after = await _sessions(conn)
        active = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    assert after - before < SLACK, f"{after - before} sessions opened by {PROBES} probes"
    assert active < 60  # the fleet's pools, not one per probe
