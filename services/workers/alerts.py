"""Budget alerts POSTed to the operator's webhook (`BUDGET_ALERT_WEBHOOK_URL`).

The edge adds every threshold crossing to the `budget-alerts` stream as it settles the request
that crossed it; the workers (the gateway's only egress) deliver them, never on any request's
path. Every worker pool with a webhook configured reads the stream in the `webhook` consumer
group, so each alert is delivered by one of them. The body is the alert's JSON as the edge wrote
it, signed with HMAC-SHA256 of those raw bytes (`X-Gateway-Signature: sha256=<hex>`) when
`BUDGET_ALERT_WEBHOOK_SECRET` is set. A failed POST (a connection error, a timeout, 408, 429 or
a 5xx) is retried with exponential back-off; an entry is acknowledged and deleted once
delivered, refused for good (another 4xx) or out of attempts. Entries left pending by a worker
that died are taken over after `reclaim_idle_ms`.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shared.redis_keys import RedisKeys

log = logging.getLogger(__name__)

GROUP = "webhook"
SIGNATURE_HEADER = "X-Gateway-Signature"
_RETRYABLE = frozenset({408, 425, 429})


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AlertSender:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        client: httpx.AsyncClient,
        *,
        url: str,
        secret: str | None,
        consumer: str,
        attempts: int = 6,
        base_delay: float = 1.0,
        reclaim_idle_ms: int = 300_000,
    ) -> None:
        self.redis = redis
        self.stream = keys.budget_alerts()
        self.client = client
        self.url = url
        self.secret = secret
        self.consumer = consumer
        self.attempts = attempts
        self.base_delay = base_delay
        self.reclaim_idle_ms = reclaim_idle_ms
        self.delivered = 0
        self.failed = 0

    async def run(self, stop: asyncio.Event) -> None:
        ready, own_pending, next_reclaim = False, True, 0.0
        while not stop.is_set():
            try:
                if not ready:
                    await self._ensure_group()
                    ready = True
                if own_pending:  # this consumer's own pending entries first (after a failure)
                    entries = await self._read("0")
                    own_pending = bool(entries)
                else:
                    entries = []
                    if time.monotonic() >= next_reclaim:
                        next_reclaim = time.monotonic() + self.reclaim_idle_ms / 2000
                        entries = await self._reclaimed()
                    entries = entries or await self._read(">")
                for entry_id, fields in entries:
                    await self._handle(entry_id, fields)
            except RedisError:
                log.warning("budget alerts: Redis unavailable; retrying", exc_info=True)
                ready, own_pending = False, True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, cursor: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply: Any = await self.redis.xreadgroup(
            GROUP,
            self.consumer,
            {self.stream: cursor},
            count=50,
            block=None if cursor == "0" else 1000,
        )
        return list(reply[0][1]) if reply else []

    async def _reclaimed(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply: Any = await self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, self.reclaim_idle_ms, start_id="0-0", count=50
        )
        return list(reply[1])

    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes] | None) -> None:
        body = (fields or {}).get(b"body")
        if body is not None:
            if await self.deliver(body):
                self.delivered += 1
            else:
                self.failed += 1
                log.error("budget alert %s not delivered to the webhook", entry_id.decode())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, entry_id)
            pipe.xdel(self.stream, entry_id)
            await pipe.execute()

    async def deliver(self, body: bytes) -> bool:
        headers = {"content-type": "application/json"}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.base_delay * 2 ** (attempt - 1))
            try:
                answer = await self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning("budget alert webhook: %s (attempt %d)", type(exc).__name__, attempt)
                continue
            if answer.is_success:
                return True
            if answer.status_code < 500 and answer.status_code not in _RETRYABLE:
                log.error("budget alert webhook refused it with %d", answer.status_code)
                return False
            log.warning(
                "budget alert webhook answered %d (attempt %d)", answer.status_code, attempt
            )
        return False
