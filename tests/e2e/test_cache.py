"""The response cache: deterministic (temperature 0) non-streaming chat, per user."""

import secrets

import asyncpg
import httpx
import pytest

from tests.audit.support import wait_for_rows
from tests.e2e.helpers import auth, chat_body, new_trace, register

DEEPSEEK = ("deepseek", "deepseek-chat")


async def posts_seen(simulator: httpx.AsyncClient, trace: str) -> int:
    response = await simulator.get("/_sim/requests", params={"trace_id": trace})
    return sum(1 for r in response.json()["requests"] if r["method"] == "POST")


def question(**extra: object) -> dict[str, object]:
    return chat_body(*DEEPSEEK, f"What is {secrets.token_hex(4)}?", max_tokens=40, **extra)


async def ask(
    edge: httpx.AsyncClient, token: str, body: dict[str, object], **headers: str
) -> tuple[httpx.Response, str]:
    trace = new_trace()
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token, trace) | headers)
    assert response.status_code == 200, response.text
    return response, trace


@pytest.fixture
async def db(database_url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def test_a_repeated_deterministic_request_is_answered_from_the_cache(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, db: asyncpg.Connection
) -> None:
    body = question(temperature=0)
    first, first_trace = await ask(edge, user_token, body)
    second, second_trace = await ask(edge, user_token, body)
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    assert await posts_seen(simulator, first_trace) == 1
    assert await posts_seen(simulator, second_trace) == 0
    # Still admitted (rate-limit headers), and audited: no tokens spent, no job run.
    assert "ratelimit-remaining" in second.headers
    await wait_for_rows(db, [first_trace, second_trace])
    hit = await db.fetchrow("SELECT * FROM audit_log WHERE trace_id = $1", second_trace)
    assert (hit["cache"], hit["outcome"], hit["total_tokens"], hit["job_id"]) == (
        "hit",
        "success",
        0,
        None,
    )
    assert (hit["provider"], hit["model"]) == DEEPSEEK


async def test_nondeterministic_and_streaming_requests_are_never_cached(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    for body in (question(temperature=0.7), question()):
        for _ in range(2):
            response, trace = await ask(edge, user_token, body)
            assert "x-cache" not in response.headers
            assert await posts_seen(simulator, trace) == 1
    streamed, _ = await ask(edge, user_token, question(temperature=0, stream=True))
    assert "x-cache" not in streamed.headers


async def test_no_cache_bypasses_the_lookup_and_refreshes_the_entry(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    body = question(temperature=0)
    await ask(edge, user_token, body)
    bypass, trace = await ask(edge, user_token, body, **{"Cache-Control": "no-cache"})
    assert bypass.headers["x-cache"] == "BYPASS"
    assert await posts_seen(simulator, trace) == 1
    after, _ = await ask(edge, user_token, body)
    assert after.headers["x-cache"] == "HIT"
    assert after.content == bypass.content

    fresh = question(temperature=0)
    skipped, _ = await ask(edge, user_token, fresh, **{"Cache-Control": "no-store"})
    assert skipped.headers["x-cache"] == "BYPASS"
    again, _ = await ask(edge, user_token, fresh)
    assert again.headers["x-cache"] == "MISS"  # no-store stored nothing


async def test_another_users_identical_request_is_a_miss(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str
) -> None:
    other_token = await register(edge)
    body = question(temperature=0)
    await ask(edge, user_token, body)
    theirs, trace = await ask(edge, other_token, body)
    assert theirs.headers["x-cache"] == "MISS"
    assert await posts_seen(simulator, trace) == 1


def surface_request(path: str) -> dict[str, object]:
    """A new deterministic question in the request shape of the chat surface at `path`."""
    text = f"Why {secrets.token_hex(4)}?"
    messages = [{"role": "user", "content": text}]
    if path == "/api/v1/chat":
        return question(temperature=0)
    if path == "/v1/chat/completions":
        return {"model": "deepseek/deepseek-chat", "messages": messages, "temperature": 0}
    return {"model": "claude-3-5-sonnet-20241022", "messages": messages, "temperature": 0}


@pytest.mark.parametrize("path", ["/api/v1/chat", "/v1/chat/completions", "/v1/messages"])
async def test_every_chat_surface_answers_a_repeated_deterministic_request_from_the_cache(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient, user_token: str, path: str
) -> None:
    body = {**surface_request(path), "max_tokens": 40}
    answers = []
    for _ in range(2):
        trace = new_trace()
        response = await edge.post(path, json=body, headers=auth(user_token, trace))
        assert response.status_code == 200, response.text
        answers.append((response, trace))
    (miss, miss_trace), (hit, hit_trace) = answers
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    # The same answer, under the same id (OpenAI's `created` is the time of the response).
    assert hit.json() | {"created": 0} == miss.json() | {"created": 0}
    assert await posts_seen(simulator, miss_trace) == 1
    assert await posts_seen(simulator, hit_trace) == 0
    assert "ratelimit-remaining" in hit.headers
