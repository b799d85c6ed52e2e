"""`create_app(settings)`: the keyvault's FastAPI app; the lifespan owns pool, keys, Redis."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.keyvault.crypto import MasterKeys
from services.keyvault.repository import KeyRepository
from services.keyvault.routes import internal, public
from services.keyvault.vault import Vault
from shared import http
from shared.db import apply_migrations, create_pool
from shared.errors import ServiceUnavailable
from shared.redis_client import connect, warm_up
from shared.service_auth import both_tokens
from shared.settings import Settings
from shared.tokens import load_verifier

log = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 2.0

SERVICE = "keyvault"
MIGRATIONS = Path(__file__).parent / "migrations"


def required(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"{name} is not set: the keyvault needs it")
    return value


async def migrate(settings: Settings) -> list[str]:
    dsn = required(settings.database_url, "DATABASE_URL")
    applied = await apply_migrations(dsn, SERVICE, MIGRATIONS)
    log.info("migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return applied


@asynccontextmanager
async def open_vault(settings: Settings) -> AsyncIterator[Vault]:
    """A vault on its own pool and Redis connection (the app's lifespan and the CLI use it)."""
    master = MasterKeys.from_settings(settings)
    pool = await create_pool(required(settings.database_url, "DATABASE_URL"))
    redis = connect(required(settings.redis_url, "REDIS_URL"), cluster=settings.redis_cluster)
    await warm_up(redis)
    try:
        yield Vault(KeyRepository(pool), master, redis, settings.redis_keys)
    finally:
        await redis.aclose()
        await pool.close()


async def purge_expired_copies(vault: Vault, every: float) -> None:
    """Deletes expired validation copies of keys now and every `every` seconds after."""
    while True:
        try:
            if purged := await vault.repo.purge_expired():
                log.info("%d expired validation copies purged", purged)
        except Exception:
            log.warning("expired validation copies not purged; retrying later", exc_info=True)
        await asyncio.sleep(every)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Secrets first: a misconfigured service stops before it touches the database.
        MasterKeys.from_settings(settings)
        app.state.internal_token, app.state.decrypt_token = both_tokens(settings)
        await migrate(settings)
        async with httpx.AsyncClient(timeout=5.0) as client, open_vault(settings) as vault:
            app.state.verifier = await load_verifier(settings, client)
            app.state.vault = vault
            every = max(1.0, settings.keyvault_purge_interval.seconds)
            purging = asyncio.create_task(purge_expired_copies(vault, every))
            log.info("keyvault ready (master key v%d)", vault.master.newest)
            try:
                yield
            finally:
                purging.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purging

    app = FastAPI(title="ai-gateway keyvault", lifespan=lifespan, docs_url=None, redoc_url=None)
    http.install(app)
    http.serve_process_metrics(app)
    app.include_router(public)
    app.include_router(internal)

    @app.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> dict[str, str]:
        """Ready when PostgreSQL (the keys) and Redis (the edge's key choices) answer."""
        vault: Vault = app.state.vault
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                await vault.repo.ping()
                await vault.redis.ping()
        except Exception as exc:
            raise ServiceUnavailable("PostgreSQL or Redis is unavailable") from exc
        return {"status": "ok"}

    return app
