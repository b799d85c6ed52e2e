"""Every API request leaves exactly one audit row, also when the audit service or an edge is
killed mid-flight; `GET /api/v1/usage` reports a user's own usage by provider and model."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from services.fleet.infra import free_port
from services.fleet.plan import FleetConfig, edge_replica
from services.fleet.processes import Service
from shared import audit
from shared.audit import AUDIT_GROUP
from shared.redis_keys import RedisKeys
from tests import redis_support
from tests.audit.support import (
    backends_gone,
    eventually,
    inserts_held,
    wait_for_rows,
    waiting_inserts,
)
from tests.conftest import ADMIN_EMAIL
from tests.e2e.helpers import auth, chat_body, new_trace, register, sse_payloads

DEEPSEEK = ("deepseek", "deepseek-chat")
ANTHROPIC = ("anthropic", "claude-3-5-sonnet-20241022")
EMBEDDER = ("litellm", "text-embedding-3-small")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def user_of(token: str) -> str:
    sub: str = jwt.decode(token, options={"verify_signature": False})["sub"]
    return sub


async def row(db: asyncpg.Connection, trace: str) -> dict[str, Any]:
    found = await db.fetchrow("SELECT * FROM audit_log WHERE trace_id = $1", trace)
    assert found is not None
    return dict(found)


async def chat(edge: httpx.AsyncClient, token: str, text: str, provider=DEEPSEEK) -> str:
    trace = new_trace()
    body = chat_body(*provider, text, max_tokens=50)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token, trace))
    assert response.status_code == 200, response.text
    return trace


def audit_service(fleet_services: tuple[FleetConfig, list[Service]]) -> Service:
    return next(s for s in fleet_services[1] if s.name == "audit")


def restart(service: Service) -> None:
    service.stop()  # closes its log; the process is already gone
    service.start()
    service.wait_healthy()


async def test_every_request_has_exactly_one_row(
    edge: httpx.AsyncClient, user_token: str, db: asyncpg.Connection
) -> None:
    user = user_of(user_token)
    traces = {name: new_trace() for name in ("plain", "stream", "error", "404", "embed", "bad")}
    plain = await edge.post(
        "/api/v1/chat",
        json=chat_body(*DEEPSEEK, "Hello there", max_tokens=50),
        headers=auth(user_token, traces["plain"]),
    )
    stream = await edge.post(
        "/api/v1/chat",
        json=chat_body(*ANTHROPIC, "Tell me a story [[sim tokens=30]]", stream=True),
        headers=auth(user_token, traces["stream"]),
    )
    failed = await edge.post(
        "/api/v1/chat",
        json=chat_body(*DEEPSEEK, "hi [[sim fail=500]]"),
        headers=auth(user_token, traces["error"]),
    )
    missing = await edge.get("/api/v1/no-such-route", headers=auth(user_token, traces["404"]))
    embed = await edge.post(
        "/api/v1/embeddings",
        json={"provider": EMBEDDER[0], "model": EMBEDDER[1], "input": "one text"},
        headers=auth(user_token, traces["embed"]),
    )
    bad = await edge.post(
        "/api/v1/chat",
        json=chat_body("nope", "m", "hi"),
        headers=auth(user_token, traces["bad"]),
    )
    health = new_trace()
    await edge.get("/health/live", headers={"X-Request-ID": health})
    assert [plain.status_code, stream.status_code, failed.status_code] == [200, 200, 502]
    assert [missing.status_code, embed.status_code, bad.status_code] == [404, 200, 400]

    await wait_for_rows(db, list(traces.values()))
    got = {name: await row(db, trace) for name, trace in traces.items()}
    usage = plain.json()["usage"]
    assert (
        got["plain"]
        | {
            "user_id": user,
            "provider": "deepseek",
            "model": "deepseek-chat",
            "status": 200,
            "outcome": "success",
            "error_type": None,
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
        }
        == got["plain"]
    )
    assert got["plain"]["job_id"].startswith("job_")
    assert got["plain"]["duration_ms"] > 0
    final = [p for p in sse_payloads(stream.text) if isinstance(p, dict) and "usage" in p][-1]
    assert (got["stream"]["provider"], got["stream"]["outcome"]) == ("anthropic", "success")
    assert got["stream"]["total_tokens"] == final["usage"]["total_tokens"] > 0
    assert (got["error"]["status"], got["error"]["outcome"]) == (502, "error")
    assert got["error"]["error_type"] == "provider_error"
    assert (got["404"]["status"], got["404"]["outcome"], got["404"]["provider"]) == (
        404,
        "error",
        None,
    )
    assert got["embed"]["provider"] == "litellm"
    assert got["embed"]["total_tokens"] == embed.json()["usage"]["total_tokens"] > 0
    assert (got["bad"]["status"], got["bad"]["error_type"]) == (400, "validation_error")
    # No route, so nobody authenticated the caller of the 404.
    assert all(r["user_id"] == user for name, r in got.items() if name != "404")
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE trace_id = $1", health) == 0


async def admin_token(edge: httpx.AsyncClient) -> str:
    body = {"email": ADMIN_EMAIL, "password": "correct-horse-battery", "name": "Admin"}
    response = await edge.post("/api/v1/auth/register", json=body)
    if response.status_code == 409:
        response = await edge.post("/api/v1/auth/login", json=body | {"name": None})
    assert response.status_code in (200, 201), response.text
    token: str = response.json()["token"]
    return token


async def tokens_spent(edge: httpx.AsyncClient, token: str, budget: int) -> int:
    """This minute's tokens spent from `budget`, read from the refusal of a request that
    cannot fit (a refused request reserves nothing)."""
    probe = chat_body(*DEEPSEEK, "hi", max_tokens=budget)
    refused = await edge.post("/api/v1/chat", json=probe, headers=auth(token))
    assert refused.status_code == 429, refused.text
    left: int = refused.json()["error"]["details"]["tokens_left"]
    return budget - left


async def test_a_client_that_leaves_mid_stream_is_recorded_as_cancelled(
    fleet: FleetConfig, edge: httpx.AsyncClient, user_token: str, db: asyncpg.Connection
) -> None:
    budget = 5000
    limits = {"tokens_per_minute": budget}
    response = await edge.put(
        f"/api/v1/admin/users/{user_of(user_token)}/limits",
        json=limits,
        headers=auth(await admin_token(edge)),
    )
    assert response.status_code == 200, response.text
    text = "Long one [[sim tokens=400{}]]"
    full = await edge.post(
        "/api/v1/chat",
        json=chat_body(*DEEPSEEK, text.format(""), max_tokens=500),
        headers=auth(user_token),
    )
    assert full.status_code == 200, full.text
    full_usage = full.json()["usage"]
    assert await tokens_spent(edge, user_token, budget) == full_usage["total_tokens"]

    trace = new_trace()
    body = chat_body(*DEEPSEEK, text.format(" chunk_delay_ms=20"), stream=True, max_tokens=500)
    async with (
        httpx.AsyncClient(base_url=fleet.edge_url, timeout=30.0) as client,
        client.stream("POST", "/api/v1/chat", json=body, headers=auth(user_token, trace)) as r,
    ):
        assert r.status_code == 200
        async for _ in r.aiter_bytes():
            break  # leave after the first chunk
    await wait_for_rows(db, [trace])
    record = await row(db, trace)
    assert record["outcome"] == "cancelled"
    # Billed for the prompt and what was sent before it left: some of the answer, not all.
    assert record["prompt_tokens"] > 0
    assert 0 < record["completion_tokens"] < full_usage["completion_tokens"]
    assert record["total_tokens"] == record["prompt_tokens"] + record["completion_tokens"]
    # The token budget is charged exactly what the audit row says, not the reservation.
    spent = full_usage["total_tokens"] + record["total_tokens"]
    assert await tokens_spent(edge, user_token, budget) == spent


async def test_usage_is_the_callers_own_by_provider_and_model(
    edge: httpx.AsyncClient, user_token: str, db: asyncpg.Connection
) -> None:
    other_token = await register(edge)
    mine = [await chat(edge, user_token, f"question {i}") for i in range(2)]
    mine.append(await chat(edge, user_token, "question", provider=ANTHROPIC))
    theirs = [await chat(edge, other_token, "their question")]
    await wait_for_rows(db, mine + theirs)

    report = await edge.get("/api/v1/usage", headers=auth(user_token))
    assert report.status_code == 200, report.text
    lines = {(u["provider"], u["model"]): u for u in report.json()["usage"]}
    assert set(lines) == {DEEPSEEK, ANTHROPIC}
    assert lines[DEEPSEEK]["requests"] == 2
    assert lines[ANTHROPIC]["requests"] == 1
    expected = await db.fetchval(
        "SELECT sum(total_tokens) FROM audit_log WHERE trace_id = ANY($1::text[])"
        " AND provider = 'deepseek'",
        mine,
    )
    assert lines[DEEPSEEK]["total_tokens"] == expected > 0
    assert lines[DEEPSEEK]["prompt_tokens"] + lines[DEEPSEEK]["completion_tokens"] == expected

    other = (await edge.get("/api/v1/usage", headers=auth(other_token))).json()["usage"]
    assert [(u["provider"], u["model"], u["requests"]) for u in other] == [(*DEEPSEEK, 1)]

    past = await edge.get(
        "/api/v1/usage", params={"from": "2001-01-01", "to": "2001-01-31"}, headers=auth(user_token)
    )
    assert past.json()["usage"] == []
    assert past.json()["totals"]["requests"] == 0
    assert (past.json()["from"], past.json()["to"]) == ("2001-01-01", "2001-01-31")
    anonymous = await edge.get("/api/v1/usage")
    assert anonymous.status_code == 401


async def test_killing_the_audit_service_mid_flight_loses_nothing(
    fleet_services: tuple[FleetConfig, list[Service]],
    edge: httpx.AsyncClient,
    user_token: str,
    db: asyncpg.Connection,
    database_url: str,
    redis_url: str,
) -> None:
    service = audit_service(fleet_services)
    assert service.process is not None
    stream = RedisKeys(fleet_services[0].redis_prefix).audit()
    redis = await redis_support.client(redis_url)
    traces = [await chat(edge, user_token, f"before {i}") for i in range(5)]
    try:
        async with inserts_held(database_url):
            traces += await asyncio.gather(
                *(chat(edge, user_token, f"during {i}") for i in range(10))
            )

            async def storing() -> bool:
                pending = (await redis.xpending(stream, AUDIT_GROUP))["pending"]
                return pending > 0 and bool(await waiting_inserts(db))

            # Killed with records read and not acknowledged, their INSERT on its way.
            await eventually(storing)
            orphans = await waiting_inserts(db)
            service.process.kill()  # SIGKILL by its PID
            service.process.wait()
        await backends_gone(db, orphans)  # its statement ran on once the lock was gone
        traces += [await chat(edge, user_token, f"while down {i}") for i in range(5)]
    finally:
        restart(service)
        await redis.aclose()
    await wait_for_rows(db, traces)


async def test_records_an_edge_emitted_survive_its_sigkill(
    fleet_services: tuple[FleetConfig, list[Service]],
    redis_url: str,
    user_token: str,
    db: asyncpg.Connection,
) -> None:
    config = fleet_services[0]
    service = audit_service(fleet_services)
    replica = edge_replica(config, free_port())
    redis = await redis_support.client(redis_url)
    stream = RedisKeys(config.redis_prefix).audit()
    try:
        replica.start()
        replica.wait_healthy()
        assert service.process is not None
        service.process.kill()  # nobody consumes: the records wait in the stream
        service.process.wait()
        url = replica.health_url.rsplit("/health", 1)[0] if replica.health_url else ""
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            traces = [await chat(client, user_token, f"replica {i}") for i in range(6)]

        async def all_emitted() -> bool:
            entries = await redis.xrange(stream)
            emitted = {audit.decode(fields).trace_id for _, fields in entries}
            return emitted >= set(traces)

        await eventually(all_emitted)
        assert replica.process is not None
        replica.process.kill()
        replica.process.wait()
    finally:
        replica.stop()
        restart(service)
        await redis.aclose()
    await wait_for_rows(db, traces)


async def test_a_record_postgresql_cannot_hold_does_not_block_the_ones_behind_it(
    edge: httpx.AsyncClient, user_token: str, db: asyncpg.Connection
) -> None:
    await edge.get("/api/v1/nothing%00here", headers=auth(user_token))  # NUL in the path
    traces = [await chat(edge, user_token, "after the odd one")]
    await wait_for_rows(db, traces)
