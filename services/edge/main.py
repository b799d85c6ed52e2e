"""The edge: the fleet's only public HTTP entry point."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.edge import (
    anthropic_compat,
    catalogue,
    chat,
    health,
    keys,
    observability,
    openai_compat,
    proxy,
    retrieval,
)
from services.edge.admission import Admission
from services.edge.audit import AuditEmitter, AuditMiddleware
from services.edge.auth import ApiKeys, Authenticator, Failures
from services.edge.body_limit import BodyLimit
from services.edge.cache import ResponseCache
from services.edge.catalogue import Catalogue
from services.edge.health import Readiness
from services.edge.jobs import JobQueue
from services.edge.limits import Gate
from services.edge.refusals import ChargeRefusals
from services.edge.replies import ReplyHub
from shared import http
from shared.breaker import Breaker
from shared.client_address import ClientAddress, TrustedProxies
from shared.db import create_pool
from shared.heap import freeze_startup_heap
from shared.metrics import EdgeMetrics, new_registry
from shared.redis_client import connect
from shared.redis_keys import RedisKeys
from shared.service_auth import internal_token
from shared.settings import Settings
from shared.tokens import load_verifier


def create_app(settings: Settings) -> FastAPI:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is required")
    redis_url = settings.redis_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys = RedisKeys(settings.redis_prefix)
        redis = connect(redis_url)
        hub = ReplyHub(redis, keys)
        async with (
            httpx.AsyncClient(base_url=settings.auth_url, timeout=10.0) as auth_client,
            httpx.AsyncClient(base_url=settings.keyvault_url, timeout=10.0) as keyvault_client,
            httpx.AsyncClient(base_url=settings.audit_url, timeout=10.0) as audit_client,
        ):
            app.state.settings = settings
            app.state.redis = redis
            app.state.keys = keys
            # Only for readiness (one connection, opened on first use): the edge serves
            # without PostgreSQL.
            pool = None
            if settings.database_url:
                pool = await create_pool(settings.database_url, max_size=1, min_size=0)
            app.state.readiness = Readiness(redis, pool)
            app.state.registry = new_registry()
            app.state.metrics = EdgeMetrics(app.state.registry)
            app.state.internal = {
                "auth": auth_client,
                "keyvault": keyvault_client,
                "audit": audit_client,
            }
            app.state.audit = AuditEmitter(
                redis,
                keys,
                maxlen=settings.audit_stream_maxlen,
                lost=app.state.metrics.audit_dropped,
            )
            app.state.response_cache = ResponseCache(redis, keys, settings.seconds("cache_ttl"))
            app.state.service_token = internal_token(settings)
            failures = Failures(
                redis,
                keys,
                settings.auth_client_max_failures,
                max(1, settings.auth_rate_limit_window_seconds),
            )
            api_keys = ApiKeys(redis, keys, auth_client, app.state.service_token, failures)
            verifier = await load_verifier(settings, auth_client)
            app.state.authenticator = Authenticator(verifier, api_keys)
            admission = Admission(redis, keys)
            app.state.breaker = Breaker(redis, keys, settings)
            app.state.gate = Gate(admission, settings)
            await hub.start()
            app.state.jobs = JobQueue(
                redis,
                hub,
                keys,
                admission,
                timeout=settings.request_timeout_seconds,
                maxlen=settings.queue_maxlen,
                queue_limit=settings.queue_limit,
            )
            app.state.catalogue = Catalogue(redis, app.state.jobs, keys)
            refresh_every = settings.seconds("model_refresh_interval")
            refresher = (
                asyncio.create_task(app.state.catalogue.keep_fresh(refresh_every))
                if refresh_every > 0
                else None
            )
            freeze_startup_heap()
            try:
                yield
            finally:
                if refresher is not None:
                    refresher.cancel()
                await app.state.audit.drain()
                await hub.close()
                await redis.aclose()
                if pool is not None:
                    await pool.close()

    app = FastAPI(
        title="AI Gateway",
        version="0.1.0",
        description="One HTTP API in front of many LLM providers.",
        servers=[{"url": settings.api_base_url}] if settings.api_base_url else None,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ChargeRefusals)
    app.add_middleware(AuditMiddleware)  # inside the trace middleware: it needs the trace id
    proxies = TrustedProxies(settings.trusted_proxy_networks, settings.trusted_proxy_header)
    app.add_middleware(ClientAddress, proxies=proxies)
    http.install(app)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "x-api-key"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
        )
    app.include_router(health.router)
    app.include_router(observability.router)
    app.include_router(proxy.router)
    app.include_router(keys.router)
    app.include_router(chat.router)
    app.include_router(retrieval.router)
    app.include_router(catalogue.router)
    app.include_router(openai_compat.router)
    # Anthropic-compatible surface: `POST /v1/messages`.
    app.include_router(anthropic_compat.router)
    return app


def app_from_env() -> FastAPI:
    return create_app(Settings())
