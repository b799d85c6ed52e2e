"""`create_app(settings)`: the auth service's FastAPI app; the lifespan owns pool, Redis, keys."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.auth import routes, routes_admin, routes_admin_find, routes_api_keys
from services.auth.api_keys import ApiKeyRepository
from services.auth.bootstrap import bootstrap_credentials, ensure_admin
from services.auth.deps import Components
from services.auth.limits import LimitsPublisher
from services.auth.passwords import PasswordHasher
from services.auth.revocation import KeyCache, Revocations
from services.auth.throttle import LoginThrottle
from services.auth.users import UserRepository
from shared import http
from shared.client_address import ClientAddress
from shared.db import apply_migrations, create_pool
from shared.redis_client import connect, warm_up
from shared.service_auth import internal_token
from shared.settings import Settings
from shared.tokens import TokenSigner

log = logging.getLogger(__name__)

SERVICE = "auth"
MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set: the auth service needs PostgreSQL")
    return settings.database_url


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: the auth service needs Redis")
    return settings.redis_url


async def migrate(settings: Settings) -> list[str]:
    applied = await apply_migrations(database_url(settings), SERVICE, MIGRATIONS)
    log.info("migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return applied


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # Secrets first: a misconfigured service stops before it touches the database.
    signer = TokenSigner.from_settings(settings)
    service_token = internal_token(settings)
    bootstrap = bootstrap_credentials(settings)
    await migrate(settings)
    passwords = await PasswordHasher.create(settings.bcrypt_rounds)
    pool = await create_pool(database_url(settings))
    redis = connect(redis_url(settings), cluster=settings.redis_cluster)
    await warm_up(redis)
    keys = settings.redis_keys
    app.state.signer = signer
    app.state.users = UserRepository(pool)
    if bootstrap is not None:
        await ensure_admin(bootstrap, app.state.users, passwords)
    app.state.auth = Components(
        api_keys=ApiKeyRepository(pool),
        passwords=passwords,
        signer=signer,
        verifier=signer.verifier(),
        revocations=Revocations(redis, keys),
        key_cache=KeyCache(redis, keys),
        throttle=LoginThrottle(redis, keys, settings),
        limits=LimitsPublisher(redis, keys, settings),
        service_token=service_token,
    )
    log.info("auth ready (signing key kid=%s)", signer.kid)
    try:
        yield
    finally:
        await redis.aclose()
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
    app.add_middleware(ClientAddress, proxies=settings.proxies)
    http.serve_process_metrics(app)
    app.include_router(routes.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_admin_find.router)
    app.include_router(routes_api_keys.router)
    app.include_router(routes_api_keys.internal)
    return app
