"""OWASP API10:2023 Unsafe Consumption of APIs.

A provider's answer is validated before any field of it is used: JSON that does not parse, a
stream that is not SSE, fields of the wrong type (a string where a list belongs, a number for
the reply text, negative or string token counts) and answers over `UPSTREAM_MAX_BYTES` all
end as a 502 `provider_error` naming the provider, through edge, worker and simulator
(`[[sim fail=...]]`, see services/simulator/garbage.py), streamed or not. The worker serves the
next request, and acknowledged the broken job.
"""

import secrets

import httpx
import pytest
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import assert_envelope, auth, budgeted_key, chat_body, new_trace, settled_to
from tests.security.support import keeps_serving

MODELS = {"deepseek": "deepseek-chat", "anthropic": "claude-3-5-sonnet-20241022"}

providers = pytest.mark.parametrize("provider", sorted(MODELS))
streamed = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


async def assert_provider_error(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    token: str,
    provider: str,
    fail: str,
    stream: bool,
) -> None:
    """The client gets a 502 naming the provider for a `fail` answer (which every attempt
    got)."""
    trace = new_trace()
    text = f"hi {secrets.token_hex(3)} [[sim fail={fail}]]"
    body = chat_body(provider, MODELS[provider], text, stream=stream)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token, trace))
    error = assert_envelope(response, 502, "provider_error")
    assert isinstance(error["details"], dict) and error["details"]["provider"] == provider
    found = await simulator.get("/_sim/requests", params={"trace_id": trace})
    calls: list[dict[str, object]] = [r for r in found.json()["requests"] if r["method"] == "POST"]
    assert calls and all(call["outcome"] == fail for call in calls)


BROKEN = [
    pytest.param("bad_json", id="json-cut-off"),
    pytest.param("bad_sse", id="html-page-instead-of-json-or-sse"),
    pytest.param("bad_list", id="reply-list-a-string"),
    pytest.param("bad_text", id="reply-text-a-number"),
    pytest.param("bad_usage", id="token-counts-negative-and-strings"),
]


@providers
@streamed
@pytest.mark.parametrize("fail", BROKEN)
async def test_a_broken_answer_is_a_provider_error_and_the_worker_serves_on(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    redis_url: str,
    fleet: FleetConfig,
    user_token: str,
    provider: str,
    stream: bool,
    fail: str,
) -> None:
    """None of it reaches the client or the token budget."""
    key, owner = await budgeted_key(edge, user_token)
    await assert_provider_error(edge, simulator, key, provider, fail, stream)
    redis = Redis.from_url(redis_url)
    try:  # what the request reserved was given back
        await settled_to(redis, RedisKeys(fleet.redis_prefix), owner, 0)
    finally:
        await redis.aclose()
    await keeps_serving(edge, user_token, redis_url, fleet.redis_prefix, provider, MODELS[provider])


@providers
@streamed
async def test_a_huge_answer_is_cut_off_unread(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    redis_url: str,
    fleet: FleetConfig,
    user_token: str,
    provider: str,
    stream: bool,
) -> None:
    """A 512 MiB reply text: the worker stops reading at UPSTREAM_MAX_BYTES (a body, or one
    line of a stream) and drops the connection."""
    trace = new_trace()
    body = chat_body(provider, MODELS[provider], "hi [[sim fail=huge]]", stream=stream)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))
    error = assert_envelope(response, 502, "provider_error")
    limit = int(fleet.extra_env["UPSTREAM_MAX_BYTES"])
    assert f"larger than {limit} bytes" in str(error["message"])
    assert isinstance(error["details"], dict) and error["details"]["provider"] == provider
    if stream:
        found = await simulator.get("/_sim/requests", params={"trace_id": trace})
        assert not any(call["finished"] for call in found.json()["requests"])
    await keeps_serving(edge, user_token, redis_url, fleet.redis_prefix, provider, MODELS[provider])
