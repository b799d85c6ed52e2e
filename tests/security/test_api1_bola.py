"""OWASP API1:2023 Broken Object Level Authorization.

Every object a user can name (provider keys, gateway API keys, usage) is checked against its
owner: another user's id answers exactly as an id that does not exist (404), on every route,
and requests through the OpenAI- and Anthropic-compatible routes never use another user's key.
"""

import asyncio
import secrets

import httpx

from services.fleet.plan import SIMULATOR_KEY
from tests.e2e.helpers import assert_envelope, auth, chat_body, new_trace, upstream_record
from tests.security.support import register

CLAUDE = "claude-3-5-sonnet-20241022"


async def owner_with_objects(edge: httpx.AsyncClient) -> tuple[str, str, str, str]:
    """(token, provider key, its id, gateway API key id) of a user who stored both kinds."""
    _, token = await register(edge)
    provider_key = f"sk-ant-owner-{secrets.token_urlsafe(18)}"
    stored = await edge.post(
        "/api/v1/keys",
        json={"provider": "anthropic", "apiKey": provider_key, "name": "Owner's key"},
        headers=auth(token),
    )
    assert stored.status_code == 201, stored.text
    created = await edge.post("/api/v1/api-keys", json={"name": "owner"}, headers=auth(token))
    assert created.status_code == 201, created.text
    return token, provider_key, stored.json()["id"], created.json()["id"]


async def test_another_users_provider_key_is_404_on_every_route(edge: httpx.AsyncClient) -> None:
    owner, provider_key, key_id, _ = await owner_with_objects(edge)
    _, intruder = await register(edge)

    listed = await edge.get("/api/v1/keys", headers=auth(intruder))
    assert listed.status_code == 200 and listed.json()["keys"] == []
    assert key_id not in listed.text

    validate = await edge.post("/api/v1/keys/validate", json={"id": key_id}, headers=auth(intruder))
    unknown = await edge.post(
        "/api/v1/keys/validate", json={"id": "key_doesnotexist000"}, headers=auth(intruder)
    )
    assert_envelope(validate, 404, "validation_error")
    assert_envelope(unknown, 404, "validation_error")
    assert validate.json()["error"]["message"] == unknown.json()["error"]["message"]

    deleted = await edge.delete(f"/api/v1/keys/{key_id}", headers=auth(intruder))
    assert_envelope(deleted, 404, "validation_error")
    assert provider_key not in validate.text + deleted.text

    mine = await edge.get("/api/v1/keys", headers=auth(owner))
    assert [k["id"] for k in mine.json()["keys"]] == [key_id]  # still there, untouched


async def test_another_users_gateway_api_key_is_404(edge: httpx.AsyncClient) -> None:
    owner, _, _, api_key_id = await owner_with_objects(edge)
    _, intruder = await register(edge)

    listed = await edge.get("/api/v1/api-keys", headers=auth(intruder))
    assert listed.status_code == 200 and listed.json()["api_keys"] == []
    revoked = await edge.delete(f"/api/v1/api-keys/{api_key_id}", headers=auth(intruder))
    assert_envelope(revoked, 404, "validation_error")

    mine = await edge.get("/api/v1/api-keys", headers=auth(owner))
    assert [k["id"] for k in mine.json()["api_keys"]] == [api_key_id]


async def test_compatible_routes_never_use_another_users_provider_key(
    edge: httpx.AsyncClient, simulator: httpx.AsyncClient
) -> None:
    _, provider_key, _, _ = await owner_with_objects(edge)
    _, intruder = await register(edge)

    openai_trace, anthropic_trace, native_trace = new_trace(), new_trace(), new_trace()
    openai = await edge.post(
        "/v1/chat/completions",
        json={"model": f"anthropic/{CLAUDE}", "messages": [{"role": "user", "content": "hi"}]},
        headers=auth(intruder, openai_trace),
    )
    anthropic = await edge.post(
        "/v1/messages",
        json={
            "model": f"anthropic/{CLAUDE}",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": intruder, "X-Request-ID": anthropic_trace},
    )
    native = await edge.post(
        "/api/v1/chat",
        json=chat_body("anthropic", CLAUDE, "hi [[sim tokens=2]]"),
        headers=auth(intruder, native_trace),
    )
    for response in (openai, anthropic, native):
        assert response.status_code == 200, response.text
    for trace in (openai_trace, anthropic_trace, native_trace):
        record = await upstream_record(simulator, trace)
        assert record["headers"]["x-api-key"] == SIMULATOR_KEY != provider_key


async def test_usage_is_only_ones_own(edge: httpx.AsyncClient) -> None:
    owner_id, owner = await register(edge)
    _, intruder = await register(edge)
    chat = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=2]]")
    assert (await edge.post("/api/v1/chat", json=chat, headers=auth(owner))).status_code == 200

    for _ in range(300):  # the audit row is written asynchronously
        report = await edge.get("/api/v1/usage", headers=auth(owner))
        if report.json()["usage"]:
            break
        await asyncio.sleep(0.1)
    assert report.json()["usage"], "the owner's request never reached the audit log"

    # Naming the owner in the query changes nothing: the caller is the token's subject, and
    # only an admin may ask for another user's usage (or the whole gateway's).
    for params in ({}, {"user": owner_id}):
        theirs = await edge.get("/api/v1/usage", params=params, headers=auth(intruder))
        assert theirs.status_code == 200, theirs.text
        assert theirs.json()["usage"] == []
    for params in ({"user_id": owner_id}, {"scope": "all"}):
        refused = await edge.get("/api/v1/usage", params=params, headers=auth(intruder))
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["type"] == "authorization_error"
