"""`create_app(settings)`: the audit service; its lifespan runs the stream consumer."""

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI

from services.audit import provider_stats
from services.audit.chain import Verdict, verify
from services.audit.chain_keys import ChainKeys
from services.audit.consumer import AuditConsumer
from services.audit.rekey import rekey
from services.audit.repository import AuditRepository
from services.audit.routes import router
from shared import http
from shared.db import apply_migrations, create_pool
from shared.redis_client import connect, warm_up
from shared.settings import Settings
from shared.tokens import load_verifier

log = logging.getLogger(__name__)

SERVICE = "audit"
MIGRATIONS = Path(__file__).parent / "migrations"


def required(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"{name} is not set: the audit service needs it")
    return value


async def migrate(settings: Settings) -> list[str]:
    applied = await apply_migrations(
        required(settings.database_url, "DATABASE_URL"), SERVICE, MIGRATIONS
    )
    log.info("migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return applied


@asynccontextmanager
async def _connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(required(settings.database_url, "DATABASE_URL"))
    try:
        yield conn
    finally:
        await conn.close()


async def verify_chain(settings: Settings) -> Verdict:
    keys = ChainKeys.from_settings(settings)
    async with _connection(settings) as conn:
        return await verify(conn, keys)


async def rekey_chain(settings: Settings) -> int:
    """Re-chains every row not under the newest key (`rekey.py`); how many changed."""
    keys = ChainKeys.from_settings(settings)
    await migrate(settings)
    async with _connection(settings) as conn:
        return await rekey(conn, keys)


def consumer_name() -> str:
    """Stable across restarts on one host (or pod), so a restart re-reads its own pending."""
    return f"audit-{socket.gethostname()}"


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = ChainKeys.from_settings(settings)  # secrets first: stop before the database
        await migrate(settings)
        pool = await create_pool(required(settings.database_url, "DATABASE_URL"), max_size=5)
        if unkeyed := await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE key_version IS NULL"
        ):
            log.warning(
                "%d audit rows are not keyed yet: run `python -m services.audit rekey`", unkeyed
            )
        redis = connect(required(settings.redis_url, "REDIS_URL"), cluster=settings.redis_cluster)
        await warm_up(redis)
        app.state.repo = repo = AuditRepository(pool, keys)
        consumer = AuditConsumer(
            redis,
            settings.redis_keys,
            repo,
            consumer=consumer_name(),
            reclaim_idle_ms=int(settings.reclaim_idle.seconds * 1000),
        )
        task = asyncio.create_task(consumer.run())
        try:
            async with httpx.AsyncClient(base_url=settings.auth_url, timeout=5.0) as client:
                app.state.verifier = await load_verifier(settings, client)
                app.state.auth = client  # asks it who is an admin (`routes.check_admin`)
                log.info("audit service ready (consumer %s)", consumer.consumer)
                yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await redis.aclose()
            await pool.close()

    app = FastAPI(title="ai-gateway audit", lifespan=lifespan, docs_url=None, redoc_url=None)
    http.install(app)
    http.serve_process_metrics(app)
    app.include_router(router)
    app.include_router(provider_stats.router)
    return app
