"""`GET /api/v1/usage`: spend and tokens grouped by day, provider, model and API key over a date
range, as JSON or CSV; admins over any user or the whole gateway, nobody else."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest

from tests.audit.support import wait_for_rows
from tests.e2e.helpers import assert_envelope, auth, chat_body, new_trace
from tests.e2e.spend_support import admin_token, new_key, register, usd

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def spend(
    edge: httpx.AsyncClient, token: str, provider: str, model: str, text: str
) -> tuple[str, Decimal | None]:
    trace = new_trace()
    response = await edge.post(
        "/api/v1/chat", json=chat_body(provider, model, text), headers=auth(token, trace)
    )
    assert response.status_code == 200, response.text
    cost = response.headers["x-gateway-cost-usd"]
    return trace, None if cost == "unpriced" else Decimal(cost)


async def test_usage_groups_spend_by_day_provider_model_and_key(
    edge: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user_id, token = await register(edge)
    key = await new_key(edge, token)
    calls = [
        (token, "deepseek", "deepseek-chat", "one [[sim tokens=5]]"),
        (token, "deepseek", "deepseek-chat", "two [[sim tokens=7]]"),
        (key["key"], "deepseek", "deepseek-chat", "three [[sim tokens=9]]"),
        (key["key"], "anthropic", "claude-3-5-haiku-20241022", "four [[sim tokens=4]]"),
        (token, "perplexity", "sonar-deep-research", "five [[sim tokens=3]]"),
    ]
    done = [await spend(edge, *call) for call in calls]
    await wait_for_rows(db, [trace for trace, _ in done])
    costs = [cost for _, cost in done]

    params = {"from": TODAY, "to": TODAY, "group_by": "day,provider,model,key"}
    report = await edge.get("/api/v1/usage", params=params, headers=auth(token))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["group_by"] == ["day", "provider", "model", "key"]
    rows = {(r["provider"], r["model"], r["key"]): r for r in body["usage"]}
    assert set(rows) == {
        ("deepseek", "deepseek-chat", None),
        ("deepseek", "deepseek-chat", key["id"]),
        ("anthropic", "claude-3-5-haiku-20241022", key["id"]),
        ("perplexity", "sonar-deep-research", None),
    }
    assert all(r["day"] == TODAY for r in body["usage"])
    jwt_chats = rows[("deepseek", "deepseek-chat", None)]
    assert jwt_chats["requests"] == 2
    assert usd(jwt_chats["cost_usd"]) == costs[0] + costs[1]
    assert usd(rows[("deepseek", "deepseek-chat", key["id"])]["cost_usd"]) == costs[2]
    unpriced = rows[("perplexity", "sonar-deep-research", None)]
    assert (unpriced["unpriced_requests"], unpriced["cost_usd"]) == (1, 0)
    assert unpriced["prompt_tokens"] > 0
    totals = body["totals"]
    assert totals["requests"] == 5 and totals["unpriced_requests"] == 1
    assert usd(totals["cost_usd"]) == sum(c for c in costs if c is not None)
    stored = await db.fetchval(
        "SELECT sum(completion_tokens) FROM audit_log WHERE user_id = $1 AND event IS NULL",
        user_id,
    )
    assert totals["completion_tokens"] == stored

    # The default grouping keeps the shape the report always had.
    default = (await edge.get("/api/v1/usage", headers=auth(token))).json()
    assert default["group_by"] == ["provider", "model"]
    assert {(r["provider"], r["model"]) for r in default["usage"]} == {(p, m) for p, m, _ in rows}
    assert all("total_tokens" in r for r in default["usage"])

    exported = await edge.get(
        "/api/v1/usage", params=params | {"format": "csv"}, headers=auth(token)
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="usage-{TODAY}-{TODAY}.csv"'
    )
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(lines) == 4
    assert list(lines[0])[:4] == ["day", "provider", "model", "key"]
    assert sum(Decimal(line["cost_usd"]) for line in lines) == usd(totals["cost_usd"])
    by_accept = await edge.get(
        "/api/v1/usage", params=params, headers=auth(token) | {"Accept": "text/csv"}
    )
    assert by_accept.text == exported.text


async def test_admins_read_any_users_usage_and_the_whole_gateway(
    edge: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    admin = await admin_token(edge)
    first_id, first = await register(edge)
    second_id, second = await register(edge)
    traces = [
        (await spend(edge, first, "deepseek", "deepseek-chat", "a [[sim tokens=3]]"))[0],
        (await spend(edge, second, "deepseek", "deepseek-chat", "b [[sim tokens=3]]"))[0],
    ]
    await wait_for_rows(db, traces)

    theirs = await edge.get("/api/v1/usage", params={"user_id": first_id}, headers=auth(admin))
    assert theirs.status_code == 200, theirs.text
    assert [r["requests"] for r in theirs.json()["usage"]] == [1]
    everyone = await edge.get(
        "/api/v1/usage", params={"scope": "all", "group_by": "user"}, headers=auth(admin)
    )
    assert everyone.status_code == 200, everyone.text
    users = {r["user"]: r["requests"] for r in everyone.json()["usage"]}
    assert (users[first_id], users[second_id]) == (1, 1)

    for params in ({"user_id": second_id}, {"scope": "all"}):
        refused = await edge.get("/api/v1/usage", params=params, headers=auth(first))
        assert_envelope(refused, 403, "authorization_error")
    own = await edge.get("/api/v1/usage", params={"user_id": first_id}, headers=auth(first))
    assert own.status_code == 200
    missing = await edge.get("/api/v1/usage", params={"user_id": "usr_nobody"}, headers=auth(admin))
    assert missing.status_code == 404
    for params in (
        {"group_by": "user"},
        {"group_by": "provider,weather"},
        {"from": "yesterday"},
        {"from": "2026-12-02", "to": "2026-12-01"},
        {"scope": "all", "user_id": first_id},
        {"format": "xml"},
    ):
        bad = await edge.get("/api/v1/usage", params=params, headers=auth(admin))
        assert bad.status_code in (400, 422), (params, bad.text)
        assert bad.json()["error"]["type"] == "validation_error"
