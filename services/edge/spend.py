"""Money at the edge: what a request may cost before it runs, what it cost when it ended, and
the alerts its spend raises.

Before a job is queued its worst-case cost (the prompt estimate and every answer token it may
get, at its model's dearest prices; for a chat with fallbacks, the dearest of its models) is
reserved against the caller's spend budgets (`admission.py`). When the job answers, its cost is
computed from the usage the provider reported (`shared.cost`), priced as the model that
answered (a fallback's own); a stream the client left is priced on what was delivered. That
cost replaces the reservation, is shown to the caller (`X-Gateway-Cost-USD`, or the final
stream event's `usage.cost_usd`), stored with the audit record and counted in Prometheus.
A request whose settlement takes a budget past an alert threshold raises one alert per
budget, period and threshold: a `budget_alert` audit record, a metric and an entry on the
`budget-alerts` stream, which the workers POST to the operator's webhook.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from fastapi import Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.edge.admission import Settled
from services.edge.audit import AuditEmitter, TrackedJob, context_of
from services.edge.caps import fallback_targets
from shared.audit import AuditRecord
from shared.budgets import BudgetState, iso
from shared.cost import cost_usd, from_units, header_value, to_units, worst_case_usd
from shared.http import add_response_headers
from shared.messages import Job, RerankJob
from shared.metrics import EdgeMetrics
from shared.model_limits import max_output_tokens
from shared.pricing import PriceRow, PriceTable
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest, Usage
from shared.settings import Settings

log = logging.getLogger(__name__)

ALERTS_MAXLEN = 10_000  # alerts waiting for the webhook; older ones go first


def cost_headers(request: Request) -> None:
    """A plain answer's `X-Gateway-Cost-USD` (nothing spent without a job, as on a cache hit)
    and its budgets as its settlement left them."""
    job = context_of(request).job
    cost = job.cost if job is not None else Decimal(0)
    add_response_headers(request, {"X-Gateway-Cost-USD": header_value(cost)})
    if job is not None:
        add_response_headers(request, budget_headers(job.budgets))


def budget_headers(states: list[BudgetState]) -> dict[str, str]:
    """`X-Budget-Remaining-USD` of the tighter budget, and when that one resets."""
    if not states:
        return {}
    tightest = min(states, key=lambda s: s.remaining)
    headers = {"X-Budget-Remaining-USD": f"{Decimal(tightest.remaining) / 100_000_000:.8f}"}
    if (reset := iso(tightest.ends)) is not None:
        headers["X-Budget-Reset"] = reset
    return headers


@dataclass
class Spending:
    prices: PriceTable
    redis: Redis
    keys: RedisKeys
    settings: Settings
    audit: AuditEmitter
    metrics: EdgeMetrics

    def row(self, provider: str, *models: str | None) -> PriceRow | None:
        for model in models:
            if model and (price := self.prices.get(provider, model)) is not None:
                return price.row
        return None

    def chat_worst_case(self, body: ChatRequest, prompt_tokens: int) -> int | None:
        """In 1e-8 USD, over the model and every fallback; None when one has no price."""
        worst = Decimal(0)
        for provider, model in [(body.provider, body.model), *fallback_targets(body)]:
            row = self.row(provider, model)
            answer = body.max_tokens or max_output_tokens(
                provider, model, self.settings.max_output_tokens
            )
            cost = worst_case_usd(row, prompt_tokens, answer) if row else None
            if cost is None:
                return None
            worst = max(worst, cost)
        return to_units(worst)

    def text_worst_case(self, provider: str, model: str, tokens: int) -> int | None:
        row = self.row(provider, model)
        cost = worst_case_usd(row, tokens, 0) if row else None
        return None if cost is None else to_units(cost)

    def job_cost(
        self, job: Job, priced_as: tuple[str, str | None, str | None], usage: Usage | None
    ) -> tuple[Decimal | None, str | None]:
        """What an answered job cost, and the model of the price row it was priced by:
        (provider, model asked for, model reported) names who answered. None, None when that
        model has no price."""
        provider, asked, reported = priced_as
        row = self.row(provider, asked, reported)
        if row is None:
            return None, None
        return cost_usd(row, None if isinstance(job, RerankJob) else usage), row.model

    def count(self, job: TrackedJob, listed: Callable[[str, str], bool]) -> None:
        """`gateway_cost_usd_total` and `gateway_unpriced_requests_total` of an answered job.
        The model label is a priced model, one its provider lists (`listed`), or `other`: a
        closed set."""
        if job.priced_as is None or (job.cost is not None and not job.cost):
            return
        provider, asked, _ = job.priced_as
        if job.cost is not None:
            self.metrics.cost.labels(provider, job.cost_model or "other").inc(float(job.cost))
            return
        known = asked is not None and listed(provider, asked)
        self.metrics.unpriced.labels(provider, asked if known else "other").inc()

    async def alert(self, settled: Settled, job: Job) -> None:
        """One alert for each threshold the settlement crossed first in its period."""
        spend = settled.spend
        now = time.time()
        for number in settled.crossed:
            threshold = self.settings.alert_thresholds[number - 1]
            alert = {
                "type": "budget_alert",
                "scope": spend.scope,
                "user_id": job.user_id,
                "key_id": spend.owner_id if spend.scope == "key" else None,
                "threshold": threshold,
                "budget_usd": from_units(settled.budget),
                "spent_usd": from_units(settled.spent),
                "period": spend.period,
                "resets_at": iso(spend.ends),
                "at": iso(datetime.fromtimestamp(now, UTC)),
            }
            self.metrics.budget_alerts.labels(spend.scope, f"{threshold:g}").inc()
            self.audit.submit(
                AuditRecord(
                    trace_id=job.trace,
                    ts=now,
                    method="EVENT",
                    path="budget_alert",
                    status=0,
                    outcome="success",
                    duration_ms=0.0,
                    user_id=job.user_id,
                    api_key_id=alert["key_id"],
                    job_id=job.id,
                    event="budget_alert",
                    details={k: v for k, v in alert.items() if k not in ("type", "user_id")},
                )
            )
            log.warning(
                "budget of %s %s passed %g (%s of %s USD)",
                spend.scope,
                spend.owner_id,
                threshold,
                alert["spent_usd"],
                alert["budget_usd"],
            )
            try:
                await self.redis.xadd(
                    self.keys.budget_alerts(),
                    {"body": orjson.dumps(alert)},
                    maxlen=ALERTS_MAXLEN,
                    approximate=True,
                )
            except RedisError:
                log.error("budget alert for %s %s not queued", spend.scope, spend.owner_id)
