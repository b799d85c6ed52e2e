"""Prometheus metrics of the fleet, built on a registry each process passes in.

The documented families keep their names and labels (`gateway_requests_total{provider,status}`,
`gateway_request_duration_seconds{provider}`, `gateway_tokens_total{provider,type}`,
`gateway_errors_total{provider,error_type}`); the duration is a histogram, so any quantile is
`histogram_quantile()` away. Label values are bounded: providers, outcomes, error types, never
user or request ids. When several processes serve one port (uvicorn `--workers`), values are
shared through `PROMETHEUS_MULTIPROC_DIR` and summed at scrape time.
"""

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.errors import ERROR_TYPES
from shared.providers import PROVIDERS

# Upstream answers range from tens of milliseconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# The gateway's own share of a request: microseconds to tens of milliseconds.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


NO_PROVIDER = "none"
UNKNOWN = "unknown"
# The error types the edge answers with: its own envelope's and the Anthropic surface's.
_ERROR_TYPES = frozenset(ERROR_TYPES) | {
    "permission_error",
    "invalid_request_error",
    "api_error",
    "overloaded_error",
    "billing_error",
    "not_found_error",
    "conflict_error",
    "request_too_large",
    "timeout_error",
}


def error_label(error_type: str) -> str:
    """`rate_limit_error` -> `rate_limit`, as the spec's example labels it; a type that is not
    one of ours is `unknown` (labels come from closed sets)."""
    return error_type.removesuffix("_error") if error_type in _ERROR_TYPES else UNKNOWN


def provider_label(provider: str | None) -> str:
    """One of the providers, `none` for a request to no provider, or `unknown`."""
    if provider is None:
        return NO_PROVIDER
    return provider if provider in PROVIDERS else UNKNOWN


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gateway_requests_total",
            "API requests by provider and outcome",
            ["provider", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to last byte",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "gateway_tokens_total",
            "Tokens by provider and type",
            ["provider", "type"],
            registry=registry,
        )
        self.errors = Counter(
            "gateway_errors_total",
            "Failed requests by provider and error type",
            ["provider", "error_type"],
            registry=registry,
        )
        self.first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request to the first streamed delta",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.cost = Counter(
            "gateway_cost_usd_total",
            "What answered requests cost (USD), by the provider and model that answered",
            ["provider", "model"],
            registry=registry,
        )
        self.unpriced = Counter(
            "gateway_unpriced_requests_total",
            "Requests answered by a model that has no price",
            ["provider", "model"],
            registry=registry,
        )
        self.budget_alerts = Counter(
            "gateway_budget_alerts_total",
            "Spend budgets that passed an alert threshold, by budget scope and threshold",
            ["scope", "threshold"],
            registry=registry,
        )
        self.audit_dropped = Counter(
            "gateway_audit_records_dropped_total",
            "Audit records not written: backlog_full, stream_full (AUDIT_STREAM_MAXLEN), "
            "write_failed",
            ["reason"],
            registry=registry,
        )
        self.overhead = Histogram(
            "gateway_edge_overhead_seconds",
            "A queued request's time at the edge not spent waiting for its worker's events",
            ["provider"],
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )

    def observe(
        self,
        *,
        provider: str | None,
        status: int,
        seconds: float,
        error_type: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        waited: float | None = None,
    ) -> None:
        """One finished API request (labelled as `provider_label` says); `waited`: its seconds
        waiting for a worker, when it went through the queue."""
        label = provider_label(provider)
        self.requests.labels(label, "success" if status < 400 else "error").inc()
        self.duration.labels(label).observe(seconds)
        if waited is not None:
            self.overhead.labels(label).observe(max(0.0, seconds - waited))
        if prompt_tokens:
            self.tokens.labels(label, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(label, "completion").inc(completion_tokens)
        if status >= 400 and error_type:
            self.errors.labels(label, error_label(error_type)).inc()


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue_wait = Histogram(
            "gateway_queue_wait_seconds",
            "Time a job waited on its stream before a worker took it",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_latency_seconds",
            "A job's time on its provider: its calls, their retries and back-off",
            ["provider", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "gateway_jobs_in_flight",
            "Jobs a worker process is running",
            ["provider"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.jobs = Counter(
            "gateway_jobs_total",
            "Jobs finished by worker pools",
            ["provider", "kind", "outcome"],
            registry=registry,
        )
        self.overhead = Histogram(
            "gateway_worker_overhead_seconds",
            "A job's time in the worker beyond calling its provider, up to its terminal event",
            ["provider"],
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )


class Snapshot(Collector):
    """Gauges read at scrape time (queue depth, breaker state), set just before a scrape."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[str, list[str], dict[tuple[str, ...], float]]] = {}

    def set(
        self, name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]
    ) -> None:
        self.values[name] = (doc, labels, values)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, (doc, labels, values) in self.values.items():
            family = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family


def new_registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


def exposition(registry: CollectorRegistry, *extra: Collector) -> tuple[bytes, str]:
    """The text exposition of this process (or of all processes sharing the multiprocess
    folder) plus the scrape-time collectors."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
    else:
        scrape = registry
    body = generate_latest(scrape)
    for collector in extra:
        extra_registry = CollectorRegistry()
        extra_registry.register(collector)
        body += generate_latest(extra_registry)
    return body, CONTENT_TYPE_LATEST
