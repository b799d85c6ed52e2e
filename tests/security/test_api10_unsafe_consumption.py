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

from services.fleet.plan import FleetConfig
from tests.e2e.helpers import assert_envelope, auth, chat_body, new_trace
from tests.security.support import keeps_serving

UPSTREAM_MAX_BYTES = 262_144  # the test fleet's (tests/conftest.py)
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
) -> dict[str, object]:
    """The client's 502 error for a `fail` answer (which every attempt got)."""
    trace = new_trace()
    text = f"hi {secrets.token_hex(3)} [[sim fail={fail}]]"
    body = chat_body(provider, MODELS[provider], text, stream=stream)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token, trace))
    error = assert_envelope(response, 502, "provider_error")
    assert isinstance(error["details"], dict) and error["details"]["provider"] == provider
    found = await simulator.get("/_sim/requests", params={"trace_id": trace})
    calls: list[dict[str, object]] = [r for r in found.json()["requests"] if r["method"] == "POST"]
    assert calls and all(call["outcome"] == fail for call in calls)
    return error


async def check(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    redis_url: str,
    fleet: FleetConfig,
    token: str,
    provider: str,
    fail: str,
    stream: bool,
) -> dict[str, object]:
    error = await assert_provider_error(edge, simulator, token, provider, fail, stream)
    await keeps_serving(edge, token, redis_url, fleet.redis_prefix, provider, MODELS[provider])
    return error


@providers
@streamed
async def test_an_answer_that_is_not_json(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    redis_url: str,
    fleet: FleetConfig,
    user_token: str,
    provider: str,
    stream: bool,
) -> None:
    await check(edge, simulator, redis_url, fleet, user_token, provider, "bad_json", stream)


@providers
@streamed
async def test_an_html_page_instead_of_json_or_sse(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    redis_url: str,
    fleet: FleetConfig,
    user_token: str,
    provider: str,
    stream: bool,
) -> None:
    await check(edge, simulator, redis_url, fleet, user_token, provider, "bad_sse", stream)


@providers
@streamed
@pytest.mark.parametrize("fail", ["bad_list", "bad_text", "bad_usage"])
async def test_fields_of_the_wrong_type(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    redis_url: str,
    fleet: FleetConfig,
    user_token: str,
    provider: str,
    stream: bool,
    fail: str,
) -> None:
    """`choices` (Anthropic `content`, or a stream's delta) a string, the reply text a number,
    token counts negative and strings: none of them reaches the client or the token budget."""
    await check(edge, simulator, redis_url, fleet, user_token, provider, fail, stream)


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
    assert f"larger than {UPSTREAM_MAX_BYTES} bytes" in str(error["message"])
    assert isinstance(error["details"], dict) and error["details"]["provider"] == provider
    if stream:
        found = await simulator.get("/_sim/requests", params={"trace_id": trace})
        assert not any(call["finished"] for call in found.json()["requests"])
    await keeps_serving(edge, user_token, redis_url, fleet.redis_prefix, provider, MODELS[provider])
