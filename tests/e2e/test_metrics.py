"""After a few requests, `/metrics` shows the spec's families with real values."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.breaker import Breaker, BreakerConfig
from shared.providers import PROVIDERS
from shared.redis_keys import RedisKeys
from tests.conftest import RUN_ID
from tests.e2e.helpers import auth, chat_body, eventually, running_edge


async def samples(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(found.get((name, frozenset(labels.items())), 0.0))


@pytest.fixture(scope="module")
def own_edge_url(fleet: FleetConfig) -> Iterator[str]:
    """An edge process of the fleet that only these tests send to: its counters move by exactly
    what a test sends."""
    with running_edge(fleet) as url:
        yield url


@pytest.fixture
async def own_edge(own_edge_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=own_edge_url, timeout=30.0) as client:
        yield client


async def settled(
    client: httpx.AsyncClient, name: str, labels: dict[str, str], reaches: float
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples once `name{labels}` reached `reaches` (the edge records a request right after
    its last byte), failing if it went past."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    async def reached() -> bool:
        nonlocal found
        found = await samples(client)
        now = value(found, name, **labels)
        assert now <= reaches, f"{name}{labels} is {now}, past {reaches}"
        return now == reaches

    await eventually(reached, f"{name}{labels} reaching {reaches}")
    return found


async def test_edge_metrics_count_requests_tokens_errors_and_queues(
    own_edge: httpx.AsyncClient, user_token: str
) -> None:
    before = await samples(own_edge)
    ok = chat_body("litellm", "gpt-4o", "hi [[sim tokens=3]]")
    limited = chat_body("litellm", "gpt-4o", "hi [[sim fail=429]]")
    answered = await own_edge.post("/api/v1/chat", json=ok, headers=auth(user_token))
    assert answered.status_code == 200
    refused = await own_edge.post("/api/v1/chat", json=limited, headers=auth(user_token))
    assert refused.status_code == 429

    both = {"provider": "litellm"}
    count = "gateway_request_duration_seconds_count"
    after = await settled(own_edge, count, both, value(before, count, **both) + 2)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    prompt, completion = answered.json()["usage"]["prompt_tokens"], 3
    assert answered.json()["usage"]["completion_tokens"] == completion
    assert grew("gateway_requests_total", provider="litellm", status="success") == 1
    assert grew("gateway_requests_total", provider="litellm", status="error") == 1
    assert grew("gateway_errors_total", provider="litellm", error_type="rate_limit") == 1
    assert grew("gateway_tokens_total", provider="litellm", type="completion") == completion
    assert grew("gateway_tokens_total", provider="litellm", type="prompt") == prompt
    assert ("gateway_queue_depth", frozenset({("provider", "litellm")})) in after
    assert ("gateway_queue_pending", frozenset({("provider", "litellm")})) in after
    for provider in PROVIDERS:
        assert ("gateway_breaker_state", frozenset({("provider", provider)})) in after
    labels = {dict(k[1]).get("user_id") or dict(k[1]).get("trace_id") for k in after}
    assert labels == {None}  # bounded labels: no user or request ids


async def test_worker_pools_serve_their_own_metrics(
    edge: httpx.AsyncClient, user_token: str, fleet: FleetConfig
) -> None:
    port = fleet.worker_metrics_ports[fleet.providers.index("litellm")]
    body = chat_body("litellm", "gpt-4o", "hi [[sim tokens=2]]")
    jobs = {"provider": "litellm", "kind": "chat", "outcome": "success"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as worker:
        before = await samples(worker)
        response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
        assert response.status_code == 200
        total = "gateway_jobs_total"
        found = await settled(worker, total, jobs, value(before, total, **jobs) + 1)

    def grew(name: str, **labels: str) -> float:
        return value(found, name, **labels) - value(before, name, **labels)

    assert grew("gateway_queue_wait_seconds_count", provider="litellm") == 1
    assert grew("gateway_upstream_latency_seconds_count", provider="litellm", kind="chat") == 1
    assert ("gateway_jobs_in_flight", frozenset({("provider", "litellm")})) in found


async def test_a_streamed_answer_records_its_time_to_first_token(
    own_edge: httpx.AsyncClient, user_token: str
) -> None:
    name = "gateway_time_to_first_token_seconds_count"
    before = await samples(own_edge)
    body = chat_body("xai", "grok-3", "hi [[sim tokens=5]]", stream=True)
    response = await own_edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    assert response.status_code == 200, response.text
    plain = chat_body("xai", "grok-3", "hi [[sim tokens=5]]")
    response = await own_edge.post("/api/v1/chat", json=plain, headers=auth(user_token))
    assert response.status_code == 200
    count, xai = "gateway_request_duration_seconds_count", {"provider": "xai"}
    after = await settled(own_edge, count, xai, value(before, count, **xai) + 2)
    assert value(after, name, **xai) == value(before, name, **xai) + 1  # not the plain one


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_request_time_is_split_between_the_provider_and_the_gateways_overhead(
    own_edge: httpx.AsyncClient, user_token: str, fleet: FleetConfig, stream: bool
) -> None:
    port = fleet.worker_metrics_ports[fleet.providers.index("nvidia_nim")]
    model = "meta/llama-3.3-70b-instruct"
    body = chat_body("nvidia_nim", model, "hi [[sim latency_ms=400 tokens=2]]", stream=stream)
    nim = {"provider": "nvidia_nim"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as worker:
        before, edge_before = await samples(worker), await samples(own_edge)
        response = await own_edge.post("/api/v1/chat", json=body, headers=auth(user_token))
        assert response.status_code == 200, response.text
        # kind=chat: the edge may also have had the worker fetch NIM's model list.
        count, chat = "gateway_upstream_latency_seconds_count", {**nim, "kind": "chat"}
        after = await settled(worker, count, chat, value(before, count, **chat) + 1)
        count = "gateway_edge_overhead_seconds_count"
        edge_after = await settled(own_edge, count, nim, value(edge_before, count, **nim) + 1)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def edge_grew(name: str) -> float:
        return value(edge_after, name, **nim) - value(edge_before, name, **nim)

    upstream = grew("gateway_upstream_latency_seconds_sum", provider="nvidia_nim", kind="chat")
    assert upstream >= 0.4
    assert grew("gateway_worker_overhead_seconds_sum", provider="nvidia_nim") < upstream
    duration = edge_grew("gateway_request_duration_seconds_sum")
    assert duration >= 0.4
    # The edge waited for the worker at least the provider's 400 ms: its overhead is the rest.
    assert 0 < edge_grew("gateway_edge_overhead_seconds_sum") <= duration - 0.4


async def test_counts_are_right_when_the_edge_runs_several_processes(
    fleet: FleetConfig, user_token: str
) -> None:
    with running_edge(fleet, WEB_CONCURRENCY="2") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            body = chat_body("openrouter", "openai/gpt-4o-mini", "hi [[sim tokens=1]]")
            calls = [
                client.post("/api/v1/chat", json=body, headers=auth(user_token)) for _ in range(20)
            ]
            assert {r.status_code for r in await asyncio.gather(*calls)} == {200}
            success = {"provider": "openrouter", "status": "success"}
            await settled(client, "gateway_requests_total", success, 20)
            for _ in range(3):  # whichever process answers the scrape, it sums them all
                found = await samples(client)
                assert value(found, "gateway_requests_total", **success) == 20


async def test_internal_services_serve_process_metrics(fleet: FleetConfig) -> None:
    assert fleet.audit_port is not None
    for port in (fleet.auth_port, fleet.keyvault_port, fleet.audit_port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            found = await samples(client)
        assert any(name == "process_resident_memory_bytes" for name, _ in found)


def breaker_states(found: dict) -> dict[str, float]:  # type: ignore[type-arg]
    return {
        dict(labels)["provider"]: sample
        for (name, labels), sample in found.items()
        if name == "gateway_breaker_state"
    }


async def test_the_breaker_state_follows_a_breaker_through_open_half_open_and_closed(
    fleet: FleetConfig, redis_url: str
) -> None:
    # Its own Redis namespace, so no other test's requests meet this breaker.
    prefix = f"gw-brk-{RUN_ID}"
    redis = Redis.from_url(redis_url)
    breaker = Breaker(redis, RedisKeys(prefix), BreakerConfig(30, 2, 0.5, 3.0, 1))
    closed = dict.fromkeys(PROVIDERS, 0.0)
    try:
        with running_edge(fleet, REDIS_PREFIX=prefix) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                assert breaker_states(await samples(client)) == closed
                for _ in range(2):
                    await breaker.record("deepseek", ok=False)
                assert breaker_states(await samples(client)) == {**closed, "deepseek": 2.0}
                half_open = {**closed, "deepseek": 1.0}  # the cooldown passed: a probe may go

                async def probing() -> bool:
                    return breaker_states(await samples(client)) == half_open

                await eventually(probing, "the breaker turning half-open")
                assert (await breaker.check("deepseek")).allowed
                assert breaker_states(await samples(client)) == {**closed, "deepseek": 1.0}
                await breaker.record("deepseek", ok=True)
                assert breaker_states(await samples(client)) == closed
    finally:
        await redis.delete(RedisKeys(prefix).breaker("deepseek"))
        await redis.aclose()
