"""What every request cost, through the real fleet: computed from the usage the provider
reported and matched against a hand computation from the simulator's record and the price
table, for plain, streamed, cached and tool-calling requests on several providers and every
surface; shown in headers and stream usage, stored in the audit record, counted in metrics."""

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.fleet.plan import FleetConfig
from tests.audit.support import wait_for_rows
from tests.e2e.helpers import auth, chat_body, new_trace, running_edge, sse_payloads
from tests.e2e.spend_support import by_hand, new_key, usd
from tests.e2e.test_providers import upstream_record
from tests.e2e.test_tools import WEATHER


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def chat(
    edge: httpx.AsyncClient, token: str, body: dict[str, Any], path: str = "/api/v1/chat"
) -> tuple[str, httpx.Response]:
    trace = new_trace()
    response = await edge.post(path, json=body, headers=auth(token, trace))
    assert response.status_code == 200, response.text
    return trace, response


async def recorded_usage(simulator: httpx.AsyncClient, trace: str) -> dict[str, Any]:
    usage: dict[str, Any] = (await upstream_record(simulator, trace))["usage"]
    return usage


def final_usage(text: str) -> dict[str, Any]:
    finals = [p for p in sse_payloads(text) if isinstance(p, dict) and "usage" in p]
    usage: dict[str, Any] = finals[-1]["usage"]
    return usage


@pytest.mark.parametrize(
    ("provider", "model", "text"),
    [
        ("deepseek", "deepseek-chat", "What is two and two? [[sim tokens=17]]"),
        ("anthropic", "claude-3-5-haiku-20241022", "Name a colour [[sim tokens=9]]"),
        ("xai", "grok-4-1-fast-reasoning", "Think first [[sim tokens=5 reasoning_tokens=7]]"),
        ("perplexity", "sonar-pro", "Latest news? [[sim tokens=11]]"),
    ],
)
async def test_a_plain_answer_costs_what_its_usage_costs_by_hand(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
    text: str,
) -> None:
    trace, response = await chat(edge, user_token, chat_body(provider, model, text))
    expected = by_hand(provider, model, await recorded_usage(simulator, trace))
    assert expected > 0
    assert response.headers["x-gateway-cost-usd"] == f"{expected:.8f}"


@pytest.mark.parametrize(
    ("provider", "model"),
    [("anthropic", "claude-sonnet-4-20250514"), ("deepseek", "deepseek-reasoner")],
)
async def test_a_stream_tells_its_cost_in_its_last_usage(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    db: asyncpg.Connection,
    provider: str,
    model: str,
) -> None:
    body = chat_body(provider, model, "Tell a story [[sim tokens=40]]", stream=True)
    trace, response = await chat(edge, user_token, body)
    expected = by_hand(provider, model, await recorded_usage(simulator, trace))
    assert "x-gateway-cost-usd" not in response.headers  # a stream's cost is known at its end
    assert usd(final_usage(response.text)["cost_usd"]) == expected
    await wait_for_rows(db, [trace])
    stored = await db.fetchval("SELECT cost_usd FROM audit_log WHERE trace_id = $1", trace)
    assert stored == expected


async def test_cached_prompt_tokens_are_priced_as_cached(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    """Anthropic: a marked system prompt is written to the cache, then read from it."""
    model = "claude-sonnet-4-20250514"
    rules = " ".join(f"rule{i}-{secrets.token_hex(2)}" for i in range(1200))
    system = [{"type": "text", "text": rules, "cache_control": {"type": "ephemeral"}}]
    costs, usages = [], []
    for question in ("First question [[sim tokens=6]]", "Second one [[sim tokens=6]]"):
        body = chat_body("anthropic", model, question)
        body["messages"] = [{"role": "system", "content": system}, *body["messages"]]
        trace, response = await chat(edge, user_token, body)
        usages.append(await recorded_usage(simulator, trace))
        costs.append(response.headers["x-gateway-cost-usd"])
        assert response.json()["usage"]["prompt_tokens_details"]  # cached tokens reported
    assert usages[0]["cache_creation_input_tokens"] == 1200
    assert usages[1]["cache_read_input_tokens"] == 1200
    assert costs == [f"{by_hand('anthropic', model, u):.8f}" for u in usages]
    assert Decimal(costs[1]) < Decimal(costs[0]) / 5  # reading costs a tenth of writing


async def test_deepseek_cache_hits_are_priced_as_cached(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    context = " ".join(f"fact{i}-{secrets.token_hex(2)}" for i in range(200))
    hits, costs = [], []
    for question in ("What follows? [[sim tokens=8]]", "And then? [[sim tokens=8]]"):
        body = chat_body("deepseek", "deepseek-chat", question)
        body["messages"] = [{"role": "system", "content": context}, *body["messages"]]
        trace, response = await chat(edge, user_token, body)
        usage = await recorded_usage(simulator, trace)
        hits.append(usage["prompt_cache_hit_tokens"])
        assert (
            response.headers["x-gateway-cost-usd"]
            == f"{by_hand('deepseek', 'deepseek-chat', usage):.8f}"
        )
        costs.append(Decimal(response.headers["x-gateway-cost-usd"]))
    assert hits == [0, 192]
    assert costs[1] < costs[0]


@pytest.mark.parametrize(
    ("provider", "model", "stream"),
    [
        ("xai", "grok-4-1-fast-non-reasoning", False),
        ("anthropic", "claude-3-5-sonnet-20241022", True),
    ],
)
async def test_a_tool_call_costs_its_usage(
    edge: httpx.AsyncClient,
    simulator: httpx.AsyncClient,
    user_token: str,
    provider: str,
    model: str,
    stream: bool,
) -> None:
    body = chat_body(provider, model, "Weather in Florence? [[sim tool=get_weather]]")
    body |= {"tools": [WEATHER], "stream": stream}
    trace, response = await chat(edge, user_token, body)
    expected = by_hand(provider, model, await recorded_usage(simulator, trace))
    if stream:
        assert usd(final_usage(response.text)["cost_usd"]) == expected
    else:
        assert response.json()["choices"][0]["message"]["tool_calls"]
        assert response.headers["x-gateway-cost-usd"] == f"{expected:.8f}"


async def test_every_surface_shows_the_same_cost(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    text = "Same question everywhere [[sim tokens=12]]"
    openai = {
        "model": "deepseek/deepseek-chat",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    trace, response = await chat(edge, user_token, openai, "/v1/chat/completions")
    expected = by_hand("deepseek", "deepseek-chat", await recorded_usage(simulator, trace))
    assert usd(final_usage(response.text)["cost_usd"]) == expected
    plain = openai | {"stream": False}
    del plain["stream_options"]
    _, response = await chat(edge, user_token, plain, "/v1/chat/completions")
    assert response.headers["x-gateway-cost-usd"] == f"{expected:.8f}"

    messages = {
        "model": "anthropic/claude-3-5-haiku-20241022",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": text}],
        "stream": True,
    }
    trace, response = await chat(edge, user_token, messages, "/v1/messages")
    expected = by_hand(
        "anthropic", "claude-3-5-haiku-20241022", await recorded_usage(simulator, trace)
    )
    deltas = [e for e in response.text.split("\n\n") if e.startswith("event: message_delta")]
    delta = orjson.loads(deltas[0].partition("data: ")[2])
    assert usd(delta["usage"]["cost_usd"]) == expected
    _, response = await chat(edge, user_token, messages | {"stream": False}, "/v1/messages")
    assert response.headers["x-gateway-cost-usd"] == f"{expected:.8f}"


async def test_an_unpriced_model_says_so_and_is_never_free(
    edge: httpx.AsyncClient, user_token: str, db: asyncpg.Connection
) -> None:
    body = chat_body("perplexity", "sonar-deep-research", "Why? [[sim tokens=5]]")
    trace, response = await chat(edge, user_token, body)
    assert response.headers["x-gateway-cost-usd"] == "unpriced"
    _, streamed = await chat(edge, user_token, body | {"stream": True})
    assert final_usage(streamed.text)["cost_usd"] is None
    await wait_for_rows(db, [trace])
    row = await db.fetchrow(
        "SELECT cost_usd, total_tokens FROM audit_log WHERE trace_id = $1", trace
    )
    assert row["cost_usd"] is None and row["total_tokens"] > 0
    metrics = (await edge.get("/metrics")).text
    assert (
        'gateway_unpriced_requests_total{model="sonar-deep-research",provider="perplexity"}'
        in metrics
    )


async def test_a_cache_hit_costs_nothing(edge: httpx.AsyncClient, user_token: str) -> None:
    body = chat_body(
        "deepseek", "deepseek-chat", f"Deterministic {secrets.token_hex(4)}", temperature=0
    )
    _, first = await chat(edge, user_token, body)
    _, second = await chat(edge, user_token, body)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert Decimal(first.headers["x-gateway-cost-usd"]) > 0
    assert second.headers["x-gateway-cost-usd"] == "0.00000000"


async def test_cost_is_counted_in_prometheus(edge: httpx.AsyncClient, user_token: str) -> None:
    def counted(text: str) -> float:
        name = 'gateway_cost_usd_total{model="deepseek-chat",provider="deepseek"}'
        lines = [line for line in text.splitlines() if line.startswith(name)]
        return float(lines[0].split()[-1]) if lines else 0.0

    before = counted((await edge.get("/metrics")).text)
    _, response = await chat(edge, user_token, chat_body("deepseek", "deepseek-chat", "Count me"))
    after = counted((await edge.get("/metrics")).text)
    assert after - before == pytest.approx(float(response.headers["x-gateway-cost-usd"]), abs=1e-12)


async def test_operator_prices_override_the_shipped_ones(
    fleet: FleetConfig, tmp_path: Path, user_token: str
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "prices:\n"
        "  - provider: litellm\n    model: text-embedding-3-small\n    input: 0.02\n"
        "    as_of: 2026-12-01\n    source: our contract\n"
        "  - provider: nvidia_nim\n    model: nvidia/llama-3.2-nv-rerankqa-1b-v2\n"
        "    per_request: 0.002\n    as_of: 2026-12-01\n    source: our contract\n"
        "  - provider: deepseek\n    model: deepseek-chat\n    input: 1\n    output: 2\n"
        "    as_of: 2026-12-01\n    source: our contract\n"
    )
    with running_edge(fleet, PRICES_FILE=str(prices)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as replica:
            listed = (await replica.get("/api/v1/prices", headers=auth(user_token))).json()
            rows = {(r["provider"], r["model"]): r for r in listed["prices"]}
            assert rows[("deepseek", "deepseek-chat")]["origin"] == "override"
            assert rows[("deepseek", "deepseek-chat")]["cached_input_read"] is None
            assert rows[("anthropic", "claude-sonnet-4-20250514")]["origin"] == "default"
            embedded = await replica.post(
                "/api/v1/embeddings",
                json={
                    "provider": "litellm",
                    "model": "text-embedding-3-small",
                    "input": ["a b", "c"],
                },
                headers=auth(user_token),
            )
            assert embedded.status_code == 200, embedded.text
            tokens = embedded.json()["usage"]["total_tokens"]
            expected = (Decimal(tokens) * Decimal("0.02") / 1_000_000).quantize(Decimal("1e-8"))
            assert embedded.headers["x-gateway-cost-usd"] == f"{expected:.8f}"
            reranked = await replica.post(
                "/api/v1/rerank",
                json={
                    "provider": "nvidia_nim",
                    "model": "nvidia/llama-3.2-nv-rerankqa-1b-v2",
                    "query": "q",
                    "documents": ["x", "y"],
                },
                headers=auth(user_token),
            )
            assert reranked.status_code == 200, reranked.text
            assert reranked.headers["x-gateway-cost-usd"] == "0.00200000"


async def test_the_keys_that_spent_most_today_are_on_the_dashboard(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    key = await new_key(edge, user_token)
    body = chat_body("anthropic", "claude-opus-4-1-20250805", "Write [[sim tokens=400]]")
    spent = Decimal(0)
    for _ in range(2):
        _, response = await chat(edge, key["key"], body)
        spent += Decimal(response.headers["x-gateway-cost-usd"])
    assert spent > Decimal("0.05")  # more than any other key of the suite spends
    line = f'gateway_key_spend_today_usd{{key_id="{key["id"]}"}}'

    async def tallied() -> Decimal | None:
        lines = (await edge.get("/metrics")).text.splitlines()
        found = next((x for x in lines if x.startswith(line)), None)
        return usd(found.split()[-1]) if found else None

    # Each answer's audit record adds its cost in the background, after the answer ended.
    deadline = time.monotonic() + 10
    while (found := await tallied()) != spent:
        assert time.monotonic() < deadline, f"the gauge shows {found}, not {spent}"
        await asyncio.sleep(0.1)
