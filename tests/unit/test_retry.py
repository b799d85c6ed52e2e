"""Which upstream failures are retried, count against the breaker, and how long to wait."""

import time

import httpx
import pytest

from services.workers.fallback import next_job
from services.workers.providers.upstream_errors import upstream_error
from services.workers.retry import RetryPolicy, breaker_outcome, circuit_open, error_is_retryable
from shared.delivered import delivered_usage
from shared.errors import GatewayError, InvalidRequest, ProviderError
from shared.messages import ChatJob
from shared.providers import PROVIDERS
from shared.schemas import ChatRequest

POLICY = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=2.0)


def upstream(status: int, **headers: str) -> GatewayError:
    return upstream_error(PROVIDERS["deepseek"], status, '{"error":"x"}', httpx.Headers(headers))


def transport(status: int) -> ProviderError:
    return ProviderError("could not be reached", status=status, details={"provider": "deepseek"})


@pytest.mark.parametrize(
    ("error", "retryable", "outcome"),
    [
        (upstream(429), True, None),
        (upstream(500), True, False),
        (upstream(502), True, False),
        (upstream(503), True, False),
        (upstream(529), True, False),
        (upstream(504), True, False),
        (upstream(408), True, False),
        (upstream(400), False, True),
        (upstream(404), False, True),
        (upstream(401), False, True),
        (upstream(402), False, True),
        (upstream(503, **{"x-should-retry": "false"}), False, True),
        (transport(502), True, False),  # connection error, broken stream
        (transport(504), True, False),  # timeout
        (InvalidRequest("bad", details={"provider": "deepseek"}), False, None),
        (circuit_open("deepseek", "DeepSeek", 3.0), True, None),
        (ProviderError("The client went away", status=499), False, None),
    ],
)
def test_classification(error: GatewayError, retryable: bool, outcome: bool | None) -> None:
    assert error_is_retryable(error) is retryable
    assert breaker_outcome(error) is outcome


def test_backoff_is_full_jitter_and_grows() -> None:
    deadline = time.time() + 60
    for attempt, ceiling in ((1, 0.1), (2, 0.2)):
        waits = [POLICY.delay(upstream(500), attempt, deadline) for _ in range(200)]
        assert all(w is not None and 0 <= w <= ceiling for w in waits)
    assert POLICY.delay(upstream(500), 3, deadline) is None  # RETRY_MAX_ATTEMPTS reached


def test_retry_after_is_honoured_unless_too_long() -> None:
    deadline = time.time() + 60
    wait = POLICY.delay(upstream(429, **{"retry-after": "1"}), 1, deadline)
    assert wait is not None and 1 <= wait <= 1.1
    assert POLICY.delay(upstream(429, **{"retry-after": "5"}), 1, deadline) is None  # > max
    soon = time.time() + 0.5
    assert POLICY.delay(upstream(429, **{"retry-after": "1"}), 1, soon) is None  # > deadline
    assert POLICY.delay(upstream(400), 1, deadline) is None


def test_fallback_rewrites_the_request_and_skips_unknown_providers() -> None:
    request = ChatRequest(
        provider="deepseek", model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
    )
    # The edge refuses unknown providers; a job queued by an older edge may still name one.
    fallbacks = ["nowhere/x", "openrouter/openai/gpt-4o-mini", "anthropic/claude"]
    request = request.model_copy(update={"fallbacks": fallbacks})
    job = ChatJob(
        id="job_1",
        reply_to="r",
        trace="req_1",
        ts=0,
        deadline=1,
        user_id="u",
        key_id="k",
        request=request,
    )
    moved = next_job(job)
    assert moved is not None
    assert (moved.id, moved.key_id) == ("job_1", None)
    assert (moved.request.provider, moved.request.model) == ("openrouter", "openai/gpt-4o-mini")
    assert moved.request.fallbacks == ["anthropic/claude"]
    second = next_job(moved)
    assert second is not None
    assert (second.id, second.request.provider, second.request.model) == (
        "job_1",
        "anthropic",
        "claude",
    )
    assert second.request.fallbacks is None
    assert next_job(second) is None


def test_delivered_usage_is_about_four_characters_a_token() -> None:
    request = ChatRequest(
        provider="deepseek", model="m", messages=[{"role": "user", "content": "x" * 40}]
    )
    usage = delivered_usage(request, 18)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 5, 15)
