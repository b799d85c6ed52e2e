"""Upstream calls guarded by the provider's circuit breaker and retried with backoff.

What counts (docs/providers.md §10.4):
- retryable: 429, 408, 5xx and 529 answers, timeouts, connection errors, broken streams, bad
  answers; never a 4xx client error, a rejected key, an account without credit, or an answer
  with `x-should-retry: false`.
- a breaker failure: the retryable ones except 429 (the provider is alive, only throttling).
  A 4xx answer is a breaker success; an error raised before anything reached upstream is
  not recorded.

Delays: the provider's Retry-After when it sent one (plus a little jitter); given up at once
when it is longer than `RETRY_MAX_DELAY` or than what is left of the job's deadline; else full
jitter, uniform(0, min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2^(attempt-1))). At most
`RETRY_MAX_ATTEMPTS` attempts, and only while `can_retry()` says so (for chat: nothing was
streamed to the client yet).
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.breaker import Breaker
from shared.errors import GatewayError, ProviderError
from shared.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a look at the breaker saying closed lets calls skip `check`: it covers the start of
# the jobs read with it, not a job that waited.
_FRESH = 0.05

_RETRYABLE_UPSTREAM = frozenset({408, 429, 500, 502, 503, 504, 529})
_RETRYABLE_OWN = frozenset({502, 503, 504})  # transport and stream failures, no upstream status


def is_retryable(type_: str, status: int, details: dict[str, Any]) -> bool:
    if details.get("retryable") is False or details.get("credentials") == "rejected":
        return False
    upstream = details.get("upstream_status")
    if isinstance(upstream, int):
        return upstream in _RETRYABLE_UPSTREAM or upstream >= 500
    return type_ == "provider_error" and status in _RETRYABLE_OWN and "provider" in details


def error_is_retryable(error: GatewayError) -> bool:
    return is_retryable(error.type, error.status, error.details)


def breaker_outcome(error: GatewayError) -> bool | None:
    """The breaker outcome of a failed call: False (failure), True (the provider answered),
    None (not to be recorded: throttling, or nothing reached upstream)."""
    if error.details.get("circuit") == "open":
        return None
    upstream = error.details.get("upstream_status")
    if upstream == 429:
        return None
    if error_is_retryable(error):
        return False
    return True if isinstance(upstream, int) else None


def circuit_open(provider: str, name: str, retry_after: float) -> ProviderError:
    return ProviderError(
        f"{name} is unavailable: circuit open",
        status=503,
        retry_after=max(1.0, round(retry_after, 3)),
        details={"provider": provider, "circuit": "open"},
    )


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float
    max_delay: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetryPolicy":
        return cls(
            max_attempts=settings.retry_max_attempts,
            base_delay=settings.retry_base_delay.seconds,
            max_delay=settings.retry_max_delay.seconds,
        )

    def delay(self, error: GatewayError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up."""
        if attempt >= self.max_attempts or not error_is_retryable(error):
            return None
        remaining = deadline - time.time()
        if error.retry_after is not None:
            if error.retry_after > self.max_delay:
                return None
            wait = error.retry_after + random.uniform(0, self.base_delay)
        else:
            wait = random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        return wait if wait < remaining else None


class UpstreamGuard:
    """Runs one upstream call for a provider through its breaker, retrying what may be.

    The worker reads its breaker's state along with each batch of jobs (`saw_breaker`); the
    first attempts of those jobs skip `check` while that look is fresh and said closed (check
    would only have said yes). The successes of those calls are tallied and recorded together,
    at most once per breaker bucket (`Breaker.bucket_seconds`), or with the next outcome that
    is recorded at once: a failure, or the success of a call that went through `check` (a
    half-open probe's closes the breaker). The breaker thus sees a busy worker's successes up
    to a bucket late, and a worker that stops loses at most a bucket's tally.
    """

    def __init__(self, breaker: Breaker, policy: RetryPolicy, provider: str, name: str) -> None:
        self.breaker = breaker
        self.policy = policy
        self.provider = provider
        self.name = name
        self._closed_at: float | None = None  # when the breaker was last seen closed
        self._tallied = 0  # successes while seen closed, not recorded yet
        self._record_at = 0.0  # when the tally is next recorded with a success

    def saw_breaker(self, closed: bool) -> None:
        self._closed_at = time.monotonic() if closed else None

    def _seen_closed(self) -> bool:
        return self._closed_at is not None and time.monotonic() - self._closed_at < _FRESH

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        deadline: float,
        can_retry: Callable[[], bool] = lambda: True,
    ) -> T:
        """`attempt()`'s result, its outcome recorded in the breaker."""
        tries = 0
        while True:
            tries += 1
            checked = tries > 1 or not self._seen_closed()
            if checked:
                verdict = await self.breaker.check(self.provider)
                if not verdict.allowed:
                    raise circuit_open(self.provider, self.name, verdict.retry_after)
            try:
                result = await attempt()
            except GatewayError as exc:
                outcome = breaker_outcome(exc)
                if outcome is not None:
                    await self._record(outcome)
                wait = self.policy.delay(exc, tries, deadline) if can_retry() else None
                if wait is None:
                    raise
                log.info("attempt %d failed (%s); retrying in %.2fs", tries, exc.status, wait)
                await asyncio.sleep(wait)
                continue
            if checked or time.monotonic() >= self._record_at:
                await self._record(True)
            else:
                self._tallied += 1
            return result

    async def _record(self, ok: bool) -> None:
        earlier, self._tallied = self._tallied, 0
        self._record_at = time.monotonic() + self.breaker.bucket_seconds
        await self.breaker.record(self.provider, ok, earlier)
