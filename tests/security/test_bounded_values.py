"""Every identifier a request brings is bounded and checked before metrics, logs, audit
records, keys or upstream URLs see it, on every surface (shared/identifiers.py).

A 200 KB `provider` once became a Prometheus label (three such chats grew the edge's /metrics
from 24 KB to 13 MB), an audit field and the text of its 400, and cost the caller nothing.
"""

import asyncio
import re
import secrets
import time
from typing import Any

import asyncpg
import httpx
import pytest

from services.fleet.plan import FleetConfig
from shared.providers import PROVIDERS
from tests.e2e.helpers import auth, chat_body, new_trace
from tests.security.support import admin_token, register

HUGE = "p" * 200_000
# What an error answer may be at most: a message, its details and the trace id.
SHORT_ANSWER = 2_000
LABELS = {*PROVIDERS, "none", "unknown"}
MESSAGES = [{"role": "user", "content": "hi"}]
COMPATIBLE = {"/v1/chat/completions", "/v1/embeddings", "/v1/messages"}


def _surfaces(provider: str) -> list[tuple[str, dict[str, Any]]]:
    """A request naming `provider` on every surface that takes one."""
    return [
        ("/api/v1/chat", {"provider": provider, "model": "m", "messages": MESSAGES}),
        ("/api/v1/embeddings", {"provider": provider, "model": "m", "input": "hi"}),
        ("/api/v1/rerank", {"provider": provider, "model": "m", "query": "q", "documents": ["d"]}),
        ("/v1/chat/completions", {"model": f"{provider}/m", "messages": MESSAGES}),
        ("/v1/embeddings", {"model": f"{provider}/m", "input": "hi"}),
        ("/v1/messages", {"model": f"{provider}/m", "max_tokens": 5, "messages": MESSAGES}),
    ]


def _provider_labels(exposition: str) -> set[str]:
    return set(re.findall(r'provider="([^"]*)"', exposition))


@pytest.mark.parametrize("provider", [HUGE, "nope-" + secrets.token_hex(4)])
async def test_an_unknown_provider_gets_a_short_400_on_every_surface(
    edge: httpx.AsyncClient, user_token: str, provider: str
) -> None:
    """A 400 (on the OpenAI- and Anthropic-compatible routes, the 404 they give a model
    `provider/model` that does not exist), short whatever was sent."""
    for path, body in _surfaces(provider):
        response = await edge.post(path, json=body, headers=auth(user_token))
        expected = {400, 404} if path in COMPATIBLE else {400}
        assert response.status_code in expected, (path, response.text[:300])
        assert len(response.content) < SHORT_ANSWER, (path, len(response.content))


async def test_metric_labels_come_from_closed_sets(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    before = await edge.get("/metrics")
    marker = "nope-" + secrets.token_hex(4)
    for provider in (HUGE, marker):
        for path, body in _surfaces(provider):
            await edge.post(path, json=body, headers=auth(user_token))
    after = await edge.get("/metrics")
    assert _provider_labels(after.text) <= LABELS, _provider_labels(after.text) - LABELS
    assert marker not in after.text
    assert len(after.content) < len(before.content) + 50_000


async def _audit_row(database_url: str, trace: str) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            row = await conn.fetchrow("SELECT * FROM audit_log WHERE trace_id = $1", trace)
            if row is not None:
                return row
            assert time.monotonic() < deadline, f"no audit row for {trace}"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def test_an_unknown_provider_is_not_an_audit_field(
    edge: httpx.AsyncClient, user_token: str, database_url: str
) -> None:
    trace = new_trace()
    body = chat_body("nope-" + secrets.token_hex(4), "m", "hi")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token, trace))
    assert response.status_code == 400
    row = await _audit_row(database_url, trace)
    assert (row["status"], row["provider"], row["model"]) == (400, None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "x" * 300),
        ("model", "has spaces"),
        ("model", "../../v1/chat/completions?x="),
        ("model", "org//name"),
        ("fallbacks", ["deepseek/" + "x" * 300]),
        ("fallbacks", ["nope/some-model"]),
        ("fallbacks", ["deepseek/ok"] * 6),
        ("fallback_models", ["a b"]),
        ("transforms", ["x" * 100]),
    ],
)
async def test_model_names_and_fallbacks_are_bounded_and_checked(
    edge: httpx.AsyncClient, user_token: str, field: str, value: object
) -> None:
    body = chat_body("deepseek", "deepseek-chat", "hi") | {field: value}
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]
    assert len(response.content) < SHORT_ANSWER


async def test_error_messages_quote_a_short_form_of_what_was_sent(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    long_id = "deepseek/" + "m" * 5_000
    response = await edge.get(f"/v1/models/{long_id}", headers=auth(user_token))
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert len(message) < 200 and "…" in message


async def test_a_request_refused_after_authentication_counts_against_the_limit(
    edge: httpx.AsyncClient, fleet: FleetConfig
) -> None:
    """Three refused requests spend a limit of three: the fourth, a good one, gets 429."""
    user_id, token = await register(edge)
    admin = await admin_token(edge)
    limits = {"requests": 3, "window": "1h"}
    response = await edge.put(
        f"/api/v1/admin/users/{user_id}/limits", json=limits, headers=auth(admin)
    )
    assert response.status_code == 200, response.text
    refused = [
        ("/api/v1/chat", chat_body("nope", "m", "hi")),
        ("/v1/chat/completions", {"model": "deepseek/bad model", "messages": MESSAGES}),
        ("/v1/messages", {"model": "nope/m", "max_tokens": 5, "messages": MESSAGES}),
    ]
    for path, body in refused:
        answer = await edge.post(path, json=body, headers=auth(token))
        assert answer.status_code in (400, 404), answer.text  # /v1/messages: no such model
    good = await edge.post(
        "/api/v1/chat", json=chat_body("deepseek", "deepseek-chat", "hi"), headers=auth(token)
    )
    assert good.status_code == 429, good.text
