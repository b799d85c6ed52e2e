"""OWASP API3:2023 Broken Object Property Level Authorization.

Responses are built from explicit response models: none carries a password hash, a stored key
in full, sealed key material or another user's data.
"""

import secrets

import httpx

from tests.e2e.helpers import auth
from tests.security.support import PASSWORD, admin_token, assert_no_secrets, register


async def test_auth_responses_carry_no_hash_and_no_password(edge: httpx.AsyncClient) -> None:
    email = f"sec-{secrets.token_hex(6)}@example.com"
    registered = await edge.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Prop"}
    )
    assert registered.status_code == 201, registered.text
    assert set(registered.json()) == {"user", "token"}
    assert set(registered.json()["user"]) == {"id", "email", "name"}
    login = await edge.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert set(login.json()) == {"token", "expiresIn"}
    refresh = await edge.post("/api/v1/auth/refresh", headers=auth(login.json()["token"]))
    assert set(refresh.json()) == {"token"}
    taken = await edge.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "Again"}
    )
    assert taken.status_code == 409
    for response in (registered, login, refresh, taken):
        assert_no_secrets(response, PASSWORD)


async def test_key_responses_never_show_a_key_in_full(edge: httpx.AsyncClient) -> None:
    _, token = await register(edge)
    provider_key = f"sk-ant-prop-{secrets.token_urlsafe(18)}"
    stored = await edge.post(
        "/api/v1/keys",
        json={"provider": "anthropic", "apiKey": provider_key, "name": "k"},
        headers=auth(token),
    )
    assert stored.status_code == 201, stored.text
    assert set(stored.json()) == {"id", "provider", "name", "maskedKey"}
    listed = await edge.get("/api/v1/keys", headers=auth(token))

    created = await edge.post("/api/v1/api-keys", json={"name": "prop"}, headers=auth(token))
    assert created.status_code == 201, created.text
    gateway_key = created.json()["key"]  # shown once, here
    api_keys = await edge.get("/api/v1/api-keys", headers=auth(token))
    assert all("key" not in item for item in api_keys.json()["api_keys"])

    for response in (stored, listed, api_keys):
        assert_no_secrets(response, provider_key, gateway_key, provider_key[8:-3])
    assert_no_secrets(created, provider_key)


async def test_admin_views_and_lists_hold_only_what_they_should(edge: httpx.AsyncClient) -> None:
    admin = await admin_token(edge)
    user_id, token = await register(edge)
    _, other = await register(edge)
    other_key = f"sk-ant-other-{secrets.token_urlsafe(18)}"
    stored = await edge.post(
        "/api/v1/keys",
        json={"provider": "anthropic", "apiKey": other_key, "name": "theirs"},
        headers=auth(other),
    )
    assert stored.status_code == 201, stored.text

    view = await edge.get(f"/api/v1/admin/users/{user_id}", headers=auth(admin))
    assert view.status_code == 200, view.text
    assert set(view.json()) == {
        "id",
        "email",
        "name",
        "tier",
        "role",
        "limits",
        "effective_limits",
        "budget",
    }
    assert_no_secrets(view, PASSWORD)

    # The user's own lists hold nothing of the other user's.
    for path in ("/api/v1/keys", "/api/v1/api-keys", "/api/v1/usage"):
        response = await edge.get(path, headers=auth(token))
        assert response.status_code == 200, response.text
        assert_no_secrets(response, other_key, stored.json()["id"], "theirs")
