"""After a few requests, `/metrics` shows the spec's families with real values."""

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from services.fleet.plan import FleetConfig
from shared.breaker import Breaker, BreakerConfig
from shared.providers import PROVIDERS
from shared.redis_keys import RedisKeys
from tests.conftest import RUN_ID
from tests.e2e.helpers import auth, chat_body, running_edge


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


async def test_edge_metrics_count_requests_tokens_errors_and_queues(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    before = await samples(edge)
    ok = chat_body("litellm", "gpt-4o", "hi [[sim tokens=3]]")
    limited = chat_body("litellm", "gpt-4o", "hi [[sim fail=429]]")
    assert (await edge.post("/api/v1/chat", json=ok, headers=auth(user_token))).status_code == 200
    assert (
        await edge.post("/api/v1/chat", json=limited, headers=auth(user_token))
    ).status_code == 429

    for _ in range(40):  # the edge records a request right after its last byte
        after = await samples(edge)
        errors = value(after, "gateway_errors_total", provider="litellm", error_type="rate_limit")
        if errors > value(
            before, "gateway_errors_total", provider="litellm", error_type="rate_limit"
        ):
            break
        await asyncio.sleep(0.05)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("gateway_requests_total", provider="litellm", status="success") >= 1
    assert grew("gateway_requests_total", provider="litellm", status="error") >= 1
    assert grew("gateway_errors_total", provider="litellm", error_type="rate_limit") >= 1
    assert grew("gateway_tokens_total", provider="litellm", type="completion") >= 3
    assert grew("gateway_tokens_total", provider="litellm", type="prompt") >= 1
    assert grew("gateway_request_duration_seconds_count", provider="litellm") >= 2
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
    assert (await edge.post("/api/v1/chat", json=body, headers=auth(user_token))).status_code == 200
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as worker:
        found = await samples(worker)
    assert (
        value(found, "gateway_jobs_total", provider="litellm", kind="chat", outcome="success") >= 1
    )
    assert value(found, "gateway_queue_wait_seconds_count", provider="litellm") >= 1
    assert (
        value(found, "gateway_upstream_latency_seconds_count", provider="litellm", kind="chat") >= 1
    )
    assert ("gateway_jobs_in_flight", frozenset({("provider", "litellm")})) in found


async def test_a_streamed_answer_records_its_time_to_first_token(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    name = "gateway_time_to_first_token_seconds_count"
    before = value(await samples(edge), name, provider="xai")
    body = chat_body("xai", "grok-3", "hi [[sim tokens=5]]", stream=True)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    assert response.status_code == 200, response.text
    plain = chat_body("xai", "grok-3", "hi [[sim tokens=5]]")
    assert (
        await edge.post("/api/v1/chat", json=plain, headers=auth(user_token))
    ).status_code == 200
    for _ in range(40):  # the edge records a request right after its last byte
        after = value(await samples(edge), name, provider="xai")
        if after > before:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    assert value(await samples(edge), name, provider="xai") == before + 1  # not the plain one


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_request_time_is_split_between_the_provider_and_the_gateways_overhead(
    edge: httpx.AsyncClient, user_token: str, fleet: FleetConfig, stream: bool
) -> None:
    port = fleet.worker_metrics_ports[fleet.providers.index("nvidia_nim")]
    model = "meta/llama-3.3-70b-instruct"
    body = chat_body("nvidia_nim", model, "hi [[sim latency_ms=400 tokens=2]]", stream=stream)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as worker:
        before, edge_before = await samples(worker), await samples(edge)
        response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
        assert response.status_code == 200, response.text
        after = await samples(worker)
        for _ in range(40):  # the edge records a request right after its last byte
            edge_after = await samples(edge)
            name, labels = "gateway_edge_overhead_seconds_count", {"provider": "nvidia_nim"}
            if value(edge_after, name, **labels) > value(edge_before, name, **labels):
                break
            await asyncio.sleep(0.05)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def edge_grew(name: str) -> float:
        return value(edge_after, name, provider="nvidia_nim") - value(
            edge_before, name, provider="nvidia_nim"
        )

    upstream = grew("gateway_upstream_latency_seconds_sum", provider="nvidia_nim", kind="chat")
    assert grew("gateway_worker_overhead_seconds_count", provider="nvidia_nim") >= 1
    assert upstream >= 0.4
    assert grew("gateway_worker_overhead_seconds_sum", provider="nvidia_nim") < upstream
    assert edge_grew("gateway_edge_overhead_seconds_count") >= 1
    assert edge_grew("gateway_request_duration_seconds_sum") >= 0.4
    assert 0 < edge_grew("gateway_edge_overhead_seconds_sum") < 0.4


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
            await asyncio.sleep(0.3)
            for _ in range(3):  # whichever process answers the scrape, it sums them all
                found = await samples(client)
                assert (
                    value(found, "gateway_requests_total", provider="openrouter", status="success")
                    == 20
                )


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
    breaker = Breaker(redis, RedisKeys(prefix), BreakerConfig(30, 2, 0.5, 1.0, 1))
    closed = dict.fromkeys(PROVIDERS, 0.0)
    try:
        with running_edge(fleet, REDIS_PREFIX=prefix) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                assert breaker_states(await samples(client)) == closed
                for _ in range(2):
                    await breaker.record("deepseek", ok=False)
                assert breaker_states(await samples(client)) == {**closed, "deepseek": 2.0}
                await asyncio.sleep(1.1)  # the cooldown passed: the next call is a probe
                assert breaker_states(await samples(client)) == {**closed, "deepseek": 1.0}
                assert (await breaker.check("deepseek")).allowed
                assert breaker_states(await samples(client)) == {**closed, "deepseek": 1.0}
                await breaker.record("deepseek", ok=True)
                assert breaker_states(await samples(client)) == closed
    finally:
        await redis.delete(RedisKeys(prefix).breaker("deepseek"))
        await redis.aclose()
