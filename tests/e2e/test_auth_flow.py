"""Register, log in and refresh through the edge, then use each token for a chat."""

import secrets

import httpx

from tests.e2e.helpers import assert_envelope, auth, chat_body


async def chat_status(edge: httpx.AsyncClient, token: str) -> int:
    body = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=2]]")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(token))
    return response.status_code


async def test_register_login_refresh_and_chat_with_each_token(edge: httpx.AsyncClient) -> None:
    email = f"flow-{secrets.token_hex(6)}@example.com"
    password = "securePassword123"

    registered = await edge.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": "John Doe"}
    )
    assert registered.status_code == 201, registered.text
    user = registered.json()["user"]
    assert user["email"] == email
    assert user["name"] == "John Doe"
    assert user["id"].startswith("usr_")
    assert set(registered.json()) == {"user", "token"}

    login = await edge.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    assert login.json()["expiresIn"] == "24h"

    for token in (registered.json()["token"], login.json()["token"]):
        assert await chat_status(edge, token) == 200

    refreshed = await edge.post("/api/v1/auth/refresh", headers=auth(login.json()["token"]))
    assert refreshed.status_code == 200, refreshed.text
    assert await chat_status(edge, refreshed.json()["token"]) == 200
    # Refreshing rotates: the token it replaced is revoked everywhere.
    assert await chat_status(edge, login.json()["token"]) == 401


async def test_auth_errors_come_back_through_the_edge_in_the_envelope(
    edge: httpx.AsyncClient,
) -> None:
    email = f"dup-{secrets.token_hex(6)}@example.com"
    body = {"email": email, "password": "securePassword123", "name": "A"}
    assert (await edge.post("/api/v1/auth/register", json=body)).status_code == 201

    assert_envelope(await edge.post("/api/v1/auth/register", json=body), 409, "validation_error")
    wrong = {"email": email, "password": "wrong-password-1"}
    assert_envelope(await edge.post("/api/v1/auth/login", json=wrong), 401, "authentication_error")
    bad_email = {**body, "email": "not-an-email"}
    assert_envelope(
        await edge.post("/api/v1/auth/register", json=bad_email), 400, "validation_error"
    )
    short = {**body, "email": f"x{email}", "password": "short"}
    assert_envelope(await edge.post("/api/v1/auth/register", json=short), 400, "validation_error")
    assert_envelope(await edge.post("/api/v1/auth/refresh"), 401, "authentication_error")


async def test_trace_id_given_by_the_client_is_kept_end_to_end(edge: httpx.AsyncClient) -> None:
    response = await edge.post(
        "/api/v1/auth/login",
        json={"email": "nobody@example.com", "password": "whatever-123"},
        headers={"X-Request-ID": "req_client_chosen_1"},
    )
    assert response.headers["x-request-id"] == "req_client_chosen_1"
    assert response.json()["error"]["trace_id"] == "req_client_chosen_1"


async def test_health_endpoints(edge: httpx.AsyncClient) -> None:
    assert (await edge.get("/health/live")).json() == {"status": "ok"}
    ready = await edge.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "redis": "connected", "database": "connected"}
