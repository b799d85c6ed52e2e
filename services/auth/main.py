"""`create_app(settings)`: the auth service's FastAPI app; the lifespan owns the pool and keys."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.auth.passwords import PasswordHasher
from services.auth.routes import router
from services.auth.users import UserRepository
from shared import http
from shared.db import apply_migrations, create_pool
from shared.settings import Settings
from shared.tokens import TokenSigner

log = logging.getLogger(__name__)

SERVICE = "auth"
MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set: the auth service needs PostgreSQL")
    return settings.database_url


async def migrate(settings: Settings) -> list[str]:
    applied = await apply_migrations(database_url(settings), SERVICE, MIGRATIONS)
    log.info("migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return applied


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    await migrate(settings)
    signer = TokenSigner.from_settings(settings)
    app.state.signer = signer
    app.state.verifier = signer.verifier()
    app.state.passwords = await PasswordHasher.create(settings.bcrypt_rounds)
    pool = await create_pool(database_url(settings))
    app.state.users = UserRepository(pool)
    log.info("auth ready (signing key kid=%s)", signer.kid)
    try:
        yield
    finally:
        await pool.close()


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="ai-gateway auth",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    http.install(app)
    app.include_router(router)
    return app
