"""`python -m services.workers --provider NAME`: run one provider's worker pool."""

import argparse
import asyncio
import logging
import os
import signal
import socket

import httpx
import uvloop
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.workers.alerts import AlertSender
from services.workers.cancel import ClientWatch
from services.workers.consumer import JobConsumer
from services.workers.credentials import KeyClient
from services.workers.heartbeat import Heartbeat
from services.workers.job_runner import JobRunner
from services.workers.probes import probe_app, serve_probes
from services.workers.providers.base import UpstreamLimits
from services.workers.providers.registry import ADAPTERS
from services.workers.recovery import Recovery
from services.workers.retry import RetryPolicy, UpstreamGuard
from services.workers.upstream_http import upstream_client
from shared.breaker import Breaker
from shared.heap import freeze_startup_heap
from shared.logs import configure_logging, provider_var
from shared.metrics import WorkerMetrics, new_registry
from shared.providers import PROVIDERS
from shared.redis_client import connect
from shared.redis_keys import RedisKeys
from shared.service_auth import decrypt_token
from shared.settings import Settings, load_settings

log = logging.getLogger("services.workers")

# A pool is ready while Redis answered a read of its stream this recently (a read blocks for
# at most a second when the stream is idle).
READY_WITHIN = 5.0


def http_client(settings: Settings) -> httpx.AsyncClient:
    return upstream_client(
        connect=settings.upstream_connect_timeout.seconds,
        read=settings.request_timeout.seconds,
        limit=settings.worker_concurrency,
    )


HOSTED_NIM_RETRIEVAL = "https://ai.api.nvidia.com/v1"


def retrieval_url(settings: Settings, provider_id: str) -> str | None:
    """Where the provider reranks when that is not its base URL: NIM's hosted retrieval API
    (set, or implied by the hosted base URL; a self-hosted NIM ranks on its base URL), a TEI
    server for Hugging Face."""
    if provider_id == "nvidia_nim":
        hosted = settings.provider_base_url(provider_id) == PROVIDERS[provider_id].default_base_url
        return settings.nvidia_nim_retrieval_url or (HOSTED_NIM_RETRIEVAL if hosted else None)
    return settings.huggingface_tei_url if provider_id == "huggingface" else None


def unready_reason(consumer: JobConsumer, stop: asyncio.Event) -> str | None:
    if stop.is_set():
        return "stopping: finishing the jobs in flight, taking no new ones"
    if not consumer.consuming(READY_WITHIN):
        return f"not consuming {consumer.stream}: Redis answered no read in {READY_WITHIN:g} s"
    return None


def serve_port(
    settings: Settings, registry: CollectorRegistry, consumer: JobConsumer, stop: asyncio.Event
) -> None:
    """Metrics and the health probes on `METRICS_PORT` (0: not served; see `probes`)."""
    if not settings.metrics_port:
        return
    app = probe_app(
        registry if settings.enable_metrics else None, lambda: unready_reason(consumer, stop)
    )
    serve_probes(settings.host, settings.metrics_port, app)
    log.info("metrics and health on http://%s:%d", settings.host, settings.metrics_port)


def job_consumer(
    settings: Settings,
    redis: Redis,
    client: httpx.AsyncClient,
    provider_id: str,
    *,
    consumer_name: str,
    metrics: WorkerMetrics,
) -> JobConsumer:
    """The provider's consumer with everything its jobs run through: the adapter of its
    dialect, the caller's keys, the breaker and retries, the watch on the clients."""
    provider = PROVIDERS[provider_id]
    adapter = ADAPTERS[provider.dialect](
        provider,
        client,
        settings.provider_base_url(provider_id),
        settings.provider_key(provider_id) or "",
        limits=UpstreamLimits.from_settings(settings),
        retrieval_url=retrieval_url(settings, provider_id),
        poll_url=settings.nvidia_nim_poll_url if provider_id == "nvidia_nim" else None,
    )
    key_client = KeyClient(
        client,
        settings.keyvault_url,
        decrypt_token(settings),
        ttl=settings.provider_key_cache_ttl.seconds,
    )
    keys = RedisKeys(settings.redis_prefix)
    guard = UpstreamGuard(
        Breaker(redis, keys, settings),
        RetryPolicy.from_settings(settings),
        provider_id,
        provider.name,
    )
    return JobConsumer(
        redis,
        keys,
        JobRunner(adapter, key_client, guard, ClientWatch(redis, keys), metrics),
        consumer_name=consumer_name,
        concurrency=settings.worker_concurrency,
        maxlen=settings.queue_maxlen,
        coalesce=settings.stream_coalesce.seconds,
    )


def consumer_name(pid: int) -> str:
    """A worker's name in its stream's consumer group: unique while it runs."""
    return f"{socket.gethostname()}-{pid}"


async def serve(settings: Settings, provider_id: str, predecessor: int | None = None) -> None:
    provider = PROVIDERS[provider_id]
    provider_var.set(provider_id)
    if not settings.provider_key(provider_id):
        log.warning(
            "no operator key for %s (%s): only callers with their own key are served",
            provider_id,
            provider.key_setting.upper(),
        )
    if not settings.redis_url:
        raise SystemExit("REDIS_URL is required")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    redis = connect(settings.redis_url, max_connections=settings.worker_concurrency + 4)
    async with http_client(settings) as client:
        registry = new_registry()
        consumer = job_consumer(
            settings,
            redis,
            client,
            provider_id,
            consumer_name=consumer_name(os.getpid()),
            metrics=WorkerMetrics(registry),
        )
        serve_port(settings, registry, consumer, stop)
        freeze_startup_heap()
        try:
            adopted = consumer_name(predecessor) if predecessor else None
            await run_pool(settings, redis, consumer.keys, consumer, stop, adopted)
        finally:
            await redis.aclose()
    log.info("worker pool for %s stopped", provider_id)


def alert_sender(
    settings: Settings, redis: Redis, keys: RedisKeys, name: str
) -> AlertSender | None:
    """The budget alert webhook's sender, when one is configured."""
    if not settings.budget_alert_webhook_url:
        return None
    secret = settings.budget_alert_webhook_secret
    return AlertSender(
        redis,
        keys,
        httpx.AsyncClient(timeout=10.0),
        url=settings.budget_alert_webhook_url,
        secret=secret.get_secret_value() if secret else None,
        consumer=name,
    )


async def run_pool(
    settings: Settings,
    redis: Redis,
    keys: RedisKeys,
    consumer: JobConsumer,
    stop: asyncio.Event,
    predecessor: str | None = None,
) -> None:
    """The consumer, its heartbeat, its crash recovery and the budget alert sender, until
    `stop` and the drain end. The jobs `predecessor` (a consumer that exited) had taken are
    taken over first."""
    finished = asyncio.Event()
    heartbeat = Heartbeat(redis, keys, consumer, settings.heartbeat_interval.seconds)
    recovery = Recovery(
        redis,
        keys,
        consumer,
        idle=settings.reclaim_idle.seconds,
        max_deliveries=settings.max_deliveries,
    )
    await consumer.ensure_group()
    if predecessor:
        await recovery.adopt(predecessor)
    beating = asyncio.create_task(heartbeat.run(stop, finished))
    reclaiming = asyncio.create_task(recovery.run(stop))
    background = [beating, reclaiming]
    alerts = alert_sender(settings, redis, keys, consumer.consumer_name)
    sending = asyncio.create_task(alerts.run(stop)) if alerts is not None else None
    log.info("worker pool for %s consuming %s", consumer.provider, consumer.stream)
    try:
        await consumer.run(stop, settings.worker_shutdown_grace.seconds)
    finally:
        finished.set()
        stop.set()
        if alerts is not None and sending is not None:
            sending.cancel()  # an alert being retried is taken over by another worker
            background.append(sending)
        await asyncio.gather(*background, return_exceptions=True)
        if alerts is not None:
            await alerts.client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--provider", required=True, choices=sorted(PROVIDERS))
    parser.add_argument(
        "--predecessor",
        type=int,
        metavar="PID",
        help="the PID of a worker of this pool on this host that exited: its jobs are taken "
        "over at start, without waiting for RECLAIM_IDLE",
    )
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(f"worker-{args.provider}", settings.log_level)
    uvloop.run(serve(settings, args.provider, args.predecessor))


if __name__ == "__main__":
    main()
