"""The edge: the fleet's only public HTTP entry point."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.edge import (
    admin,
    anthropic_compat,
    chat,
    dead_letters,
    health,
    keys,
    listing,
    observability,
    openai_compat,
    proxy,
    retrieval,
    spend_routes,
)
from services.edge.admission import Admission
from services.edge.audit import AuditEmitter, AuditMiddleware, TrackedJob
from services.edge.auth import ApiKeys, Authenticator, Failures
from services.edge.body_limit import BodyLimit
from services.edge.cache import ResponseCache
from services.edge.catalogue import Catalogue
from services.edge.deps import Components, Internal
from services.edge.job_queue import JobQueue
from services.edge.limits import Gate
from services.edge.readiness import Readiness
from services.edge.refusals import ChargeRefusals
from services.edge.replies import ReplyHub
from services.edge.spend import Spending
from shared import http
from shared.breaker import Breaker
from shared.client_address import ClientAddress
from shared.db import create_pool
from shared.heap import freeze_startup_heap
from shared.metrics import EdgeMetrics, new_registry
from shared.pricing import PriceTable
from shared.redis_client import connect, warm_up
from shared.service_auth import internal_token
from shared.settings import Settings, load_settings
from shared.tokens import load_verifier


def create_app(settings: Settings) -> FastAPI:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is required")
    # Made here, as the audit middleware needs them; connections open on first use.
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    redis_keys = settings.redis_keys
    registry = new_registry()
    metrics = EdgeMetrics(registry)
    audit = AuditEmitter(
        redis, redis_keys, maxlen=settings.audit_stream_maxlen, lost=metrics.audit_dropped
    )
    spending = Spending(
        PriceTable.load(settings.prices_file), redis, redis_keys, settings, audit, metrics
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await warm_up(redis)
        hub = ReplyHub(redis, redis_keys)
        async with (
            httpx.AsyncClient(base_url=settings.auth_url, timeout=10.0) as auth_client,
            httpx.AsyncClient(base_url=settings.keyvault_url, timeout=10.0) as keyvault_client,
            httpx.AsyncClient(base_url=settings.audit_url, timeout=10.0) as audit_client,
        ):
            # Only for readiness (one connection, opened on first use): the edge serves
            # without PostgreSQL.
            readiness_pool = None
            if settings.database_url:
                readiness_pool = await create_pool(settings.database_url, max_size=1, min_size=0)
            internal = Internal(
                auth_client, keyvault_client, audit_client, internal_token(settings)
            )
            failures = Failures(
                redis,
                redis_keys,
                settings.auth_client_max_failures,
                settings.auth_rate_limit_window.whole_seconds,
            )
            api_keys = ApiKeys(redis, redis_keys, auth_client, internal.token, failures)
            verifier = await load_verifier(settings, auth_client)
            admission = Admission(redis, redis_keys, settings.alert_thresholds)
            await hub.start()
            jobs = JobQueue(
                redis,
                hub,
                redis_keys,
                admission,
                timeout=settings.request_timeout.seconds,
                maxlen=settings.queue_maxlen,
                queue_limit=settings.queue_limit,
                spending=spending,
            )
            edge = Components(
                settings=settings,
                redis=redis,
                keys=redis_keys,
                registry=registry,
                metrics=metrics,
                audit=audit,
                internal=internal,
                authenticator=Authenticator(verifier, api_keys),
                gate=Gate(admission, settings),
                breaker=Breaker(redis, redis_keys, settings),
                jobs=jobs,
                catalogue=Catalogue(redis, jobs, redis_keys),
                cache=ResponseCache(redis, redis_keys, settings.cache_ttl.seconds),
                readiness=Readiness(redis, readiness_pool),
                spending=spending,
            )
            app.state.edge = edge
            refresh_every = settings.model_refresh_interval.seconds
            refresher = (
                asyncio.create_task(edge.catalogue.keep_fresh(refresh_every))
                if refresh_every > 0
                else None
            )
            freeze_startup_heap()
            try:
                yield
            finally:
                if refresher is not None:
                    refresher.cancel()
                await audit.drain()
                await hub.close()
                await redis.aclose()
                await edge.readiness.close()

    app = FastAPI(
        title="AI Gateway",
        version="0.1.0",
        description="One HTTP API in front of many LLM providers.",
        servers=[{"url": settings.api_base_url}] if settings.api_base_url else None,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ChargeRefusals)

    # Inside the trace middleware: it needs the trace id.
    def count_spend(job: TrackedJob) -> None:
        edge: Components = app.state.edge
        spending.count(job, edge.catalogue.listed)

    app.add_middleware(AuditMiddleware, emitter=audit, metrics=metrics, on_job=count_spend)
    app.add_middleware(ClientAddress, proxies=settings.proxies)
    http.install(app)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-Request-ID",
                "x-api-key",
                "anthropic-version",
                "traceparent",
                "X-Drop-Params",
            ],
            expose_headers=[
                "X-Request-ID",
                "X-Dropped-Params",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "X-Gateway-Cost-USD",
                "X-Budget-Remaining-USD",
                "X-Budget-Reset",
            ],
        )
    app.include_router(health.router)
    app.include_router(observability.router)
    app.include_router(proxy.router)
    app.include_router(keys.router)
    app.include_router(chat.router)
    app.include_router(retrieval.router)
    app.include_router(spend_routes.router)
    app.include_router(listing.router)
    app.include_router(openai_compat.router)
    # Anthropic-compatible surface: `POST /v1/messages`.
    app.include_router(anthropic_compat.router)
    app.include_router(admin.router)
    app.include_router(dead_letters.router)
    return app


def app_from_env() -> FastAPI:
    return create_app(load_settings())
