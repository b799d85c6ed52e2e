"""Spend budgets of users and gateway API keys through the real fleet: exact across two edge
replicas racing, refused exactly when the next request could exceed them, settled to what
requests really cost (a stream whose client left: what was delivered), refunded on failure."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from services.fleet.plan import FleetConfig
from shared.budgets import iso, window
from tests.audit.support import wait_for_rows
from tests.e2e.helpers import assert_envelope, auth, chat_body, new_trace, running_edge
from tests.e2e.spend_support import (
    admin_token,
    by_hand,
    new_key,
    price,
    register,
    usd,
    worst_case,
)
from tests.e2e.test_providers import upstream_record

SONNET = ("anthropic", "claude-3-5-sonnet-20241022")


@pytest.fixture(scope="module")
def replica(fleet: FleetConfig) -> Iterator[str]:
    with running_edge(fleet) as url:
        yield url


@pytest.fixture
async def edge2(replica: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=replica, timeout=30.0) as client:
        yield client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def ends(period: str) -> str | None:
    return iso(window(period, datetime.now(UTC)).ends)


async def budgets(edge: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await edge.get("/api/v1/budget", headers=auth(token))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def cost_of(simulator: httpx.AsyncClient, trace: str) -> Decimal:
    return by_hand(*SONNET, (await upstream_record(simulator, trace))["usage"])


async def test_a_key_budget_of_a_few_cents_holds_exactly_across_two_replicas(
    edge: httpx.AsyncClient, edge2: httpx.AsyncClient, simulator: httpx.AsyncClient
) -> None:
    _, token = await register(edge)
    key = (await new_key(edge, token, budget={"amount_usd": 0.05, "period": "day"}))["key"]
    budget = Decimal("0.05")

    # Slow answers hold every reservation until all requests were decided.
    race = "Race [[sim tokens=30 latency_ms=800]]"
    body = chat_body(*SONNET, race, max_tokens=400)
    worst = worst_case(*SONNET, len(race), 400)
    traces = [new_trace() for _ in range(12)]
    calls = [
        (edge if i % 2 else edge2).post("/api/v1/chat", json=body, headers=auth(key, trace))
        for i, trace in enumerate(traces)
    ]
    responses = await asyncio.gather(*calls)
    fit = int(budget // worst)
    assert fit == 8
    assert sorted(r.status_code for r in responses) == [200] * fit + [402] * (12 - fit)
    admitted = [t for t, r in zip(traces, responses, strict=True) if r.status_code == 200]
    spent = sum([await cost_of(simulator, t) for t in admitted], Decimal(0))

    # Settled to what each request cost, the budget has room again; each request gets in while
    # what was spent plus its worst case fits, and the first that could exceed it is refused.
    fill = "Fill [[sim tokens=380]]"
    worst = worst_case(*SONNET, len(fill), 400)
    for _ in range(20):
        trace = new_trace()
        response = await edge.post(
            "/api/v1/chat",
            json=chat_body(*SONNET, fill, max_tokens=400),
            headers=auth(key, trace),
        )
        if spent + worst > budget:
            break
        assert response.status_code == 200, response.text
        spent += await cost_of(simulator, trace)
        assert response.headers["x-budget-remaining-usd"] == f"{budget - spent:.8f}"
        assert response.headers["x-budget-reset"] == ends("day")
    error = assert_envelope(response, 402, "rate_limit_error")
    assert error["details"] == {
        "code": "budget_exceeded",
        "scope": "key",
        "budget_usd": 0.05,
        "spent_usd": float(spent),
        "reserved_usd": 0.0,
        "resets_at": ends("day"),
    }
    assert 0 < int(response.headers["retry-after"]) <= 86_400
    view = (await budgets(edge2, key))["key"]
    assert (usd(view["spent_usd"]), view["reserved_usd"], view["period"]) == (spent, 0, "day")
    listed = (await edge.get("/api/v1/api-keys", headers=auth(token))).json()["api_keys"]
    assert usd(listed[0]["budget"]["spent_usd"]) == spent


async def test_a_stream_whose_client_leaves_is_charged_what_was_delivered(
    edge: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    admin = await admin_token(edge)
    user_id, token = await register(edge)
    put = await edge.put(
        f"/api/v1/admin/users/{user_id}/budget",
        json={"amount_usd": 1, "period": "month"},
        headers=auth(admin),
    )
    assert put.status_code == 200, put.text
    trace = new_trace()
    body = chat_body(*SONNET, "Long story [[sim tokens=400 chunk_delay_ms=20]]", max_tokens=400)
    async with edge.stream(
        "POST", "/api/v1/chat", json=body | {"stream": True}, headers=auth(token, trace)
    ) as response:
        assert response.status_code == 200
        received = 0
        async for chunk in response.aiter_bytes():
            received += chunk.count(b'"content"')
            if received >= 20:
                break
    # Settled once the edge saw the client go: nothing stays reserved.
    deadline = time.monotonic() + 30
    while (view := (await budgets(edge, token))["user"])["reserved_usd"]:
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.1)
    await wait_for_rows(db, [trace])
    row = await db.fetchrow("SELECT * FROM audit_log WHERE trace_id = $1", trace)
    assert row["outcome"] == "cancelled"
    assert 0 < row["completion_tokens"] < 400
    row_price = price(*SONNET)
    by_tokens = row["prompt_tokens"] * row_price.input + row["completion_tokens"] * row_price.output
    charged = (by_tokens / 1_000_000).quantize(Decimal("1e-8"))
    assert row["cost_usd"] == charged == usd(view["spent_usd"]) > 0


async def test_a_failed_request_gives_its_reservation_back(edge: httpx.AsyncClient) -> None:
    _, token = await register(edge)
    key = (await new_key(edge, token, budget={"amount_usd": 0.02, "period": "week"}))["key"]
    failing = chat_body(*SONNET, "hi [[sim fail=401]]", max_tokens=1000)
    response = await edge.post("/api/v1/chat", json=failing, headers=auth(key))
    assert response.status_code >= 400
    view = (await budgets(edge, key))["key"]
    assert (view["spent_usd"], view["reserved_usd"]) == (0, 0)
    assert view["resets_at"] == ends("week")
    # The whole budget is still there for a request whose worst case takes most of it.
    big = chat_body(*SONNET, "hi [[sim tokens=3]]", max_tokens=1300)
    assert (await edge.post("/api/v1/chat", json=big, headers=auth(key))).status_code == 200


async def test_admins_set_and_remove_a_users_budget(edge: httpx.AsyncClient) -> None:
    admin = await admin_token(edge)
    user_id, token = await register(edge)
    path = f"/api/v1/admin/users/{user_id}/budget"
    assert (
        await edge.put(path, json={"amount_usd": 1, "period": "day"}, headers=auth(token))
    ).status_code == 403
    for bad in ({"amount_usd": -1, "period": "day"}, {"amount_usd": 1, "period": "year"}, [1]):
        assert_envelope(
            await edge.put(path, json=bad, headers=auth(admin)), 400, "validation_error"
        )
    set_ = await edge.put(path, json={"amount_usd": 0.001, "period": "none"}, headers=auth(admin))
    assert set_.status_code == 200, set_.text
    shown = (await edge.get(f"/api/v1/admin/users/{user_id}", headers=auth(admin))).json()
    assert shown["budget"] == {
        "amount_usd": 0.001,
        "period": "none",
        "spent_usd": 0.0,
        "reserved_usd": 0.0,
        "resets_at": None,
    }
    assert await budgets(edge, token) == {"user": shown["budget"], "key": None}
    cheap = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=3]]", max_tokens=20)
    admitted = await edge.post("/api/v1/chat", json=cheap, headers=auth(token))
    assert admitted.status_code == 200
    assert "x-budget-reset" not in admitted.headers  # a budget without a period never resets
    assert Decimal(admitted.headers["x-budget-remaining-usd"]) < Decimal("0.001")
    dear = chat_body(*SONNET, "hi", max_tokens=100)
    refused = await edge.post("/api/v1/chat", json=dear, headers=auth(token))
    error = assert_envelope(refused, 402, "rate_limit_error")
    assert (error["details"]["scope"], error["details"]["resets_at"]) == ("user", None)
    assert "retry-after" not in refused.headers
    unpriced = chat_body("perplexity", "sonar-deep-research", "hi")
    error = assert_envelope(
        await edge.post("/api/v1/chat", json=unpriced, headers=auth(token)), 402, "rate_limit_error"
    )
    assert error["details"]["code"] == "unpriced_model"

    removed = await edge.put(
        path, content=b"null", headers=auth(admin) | {"content-type": "application/json"}
    )
    assert removed.status_code == 200 and removed.json()["budget"] is None
    assert await budgets(edge, token) == {"user": None, "key": None}
    assert (await edge.post("/api/v1/chat", json=dear, headers=auth(token))).status_code == 200
    assert (await edge.post("/api/v1/chat", json=unpriced, headers=auth(token))).status_code == 200
