"""The auth API end to end through the ASGI app, against a real PostgreSQL."""

import time
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI

from services.auth.users import UserRepository
from shared.settings import Settings
from shared.tokens import TokenSigner, TokenVerifier

PASSWORD = "securePassword123"


def assert_envelope(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    assert isinstance(error["message"], str) and error["message"]
    assert error["trace_id"] == response.headers["x-request-id"]
    return dict(error)


def assert_no_secret(response: httpx.Response) -> None:
    assert "x-request-id" in response.headers
    assert "$2b$" not in response.text and "password_hash" not in response.text


async def register(client: httpx.AsyncClient, email: str, **extra: str) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "name": "John Doe", **extra}
    response = await client.post("/api/v1/auth/register", json=body)
    assert_no_secret(response)
    return response


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert_no_secret(response)
    return response


def verifier_for(settings: Settings, jwks: dict[str, Any]) -> TokenVerifier:
    return TokenVerifier.from_jwks(jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience)


async def test_register_shape(client: httpx.AsyncClient, email: str, settings: Settings) -> None:
    response = await register(client, email.upper())
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user", "token"}
    assert set(body["user"]) == {"id", "email", "name"}
    assert body["user"]["id"].startswith("usr_")
    assert body["user"]["email"] == email
    assert body["user"]["name"] == "John Doe"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = verifier_for(settings, jwks).verify(body["token"])
    assert claims.sub == body["user"]["id"] and claims.tier == "free"


async def test_duplicate_email_any_case(client: httpx.AsyncClient, email: str) -> None:
    assert (await register(client, email)).status_code == 201
    for variant in (email, email.upper(), email.capitalize()):
        error = assert_envelope(await register(client, variant), 409, "validation_error")
        assert error["message"] == "Email already registered"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "A"}, "email"),
        ({"email": "a@b", "password": PASSWORD, "name": "A"}, "email"),
        ({"email": "x@example.com", "password": "short", "name": "A"}, "password"),
        ({"email": "x@example.com", "password": "é" * 37, "name": "A"}, "password"),
        ({"email": "x@example.com", "password": PASSWORD, "name": ""}, "name"),
        ({"email": "x@example.com", "password": PASSWORD}, "name"),
        ({"password": PASSWORD, "name": "A"}, "email"),
    ],
)
async def test_register_validation(
    client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/auth/register", json=body)
    error = assert_envelope(response, 400, "validation_error")
    assert f"'{field}'" in error["message"]
    assert PASSWORD not in response.text


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, "validation_error")


async def test_login(client: httpx.AsyncClient, email: str, settings: Settings) -> None:
    user_id = (await register(client, email)).json()["user"]["id"]
    response = await login(client, email.upper(), PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["expiresIn"] == settings.jwt_expiry.text == "1h"
    assert set(body) == {"token", "expiresIn"}
    jwks = (await client.get("/.well-known/jwks.json")).json()
    claims = verifier_for(settings, jwks).verify(body["token"])
    assert claims.sub == user_id
    assert claims.exp - claims.iat == 3600


async def test_bad_credentials_same_message(client: httpx.AsyncClient, email: str) -> None:
    await register(client, email)
    wrong = assert_envelope(
        await login(client, email, "wrong-password"), 401, "authentication_error"
    )
    unknown = assert_envelope(
        await login(client, "nobody-" + email, PASSWORD), 401, "authentication_error"
    )
    too_long = assert_envelope(await login(client, email, "x" * 100), 401, "authentication_error")
    assert wrong["message"] == unknown["message"] == too_long["message"]
    assert wrong["message"] == "Invalid email or password"


async def test_refresh(client: httpx.AsyncClient, email: str, settings: Settings) -> None:
    token = (await register(client, email)).json()["token"]
    response = await client.post(
        "/api/v1/auth/refresh", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"token"}
    new = response.json()["token"]
    assert new != token
    jwks = (await client.get("/.well-known/jwks.json")).json()
    verifier = verifier_for(settings, jwks)
    assert verifier.verify(new).sub == verifier.verify(token).sub
    assert verifier.verify(new).jti != verifier.verify(token).jti


def _expired_token(app: FastAPI, sub: str) -> str:
    signer: TokenSigner = app.state.signer
    now = int(time.time())
    claims = {
        "sub": sub,
        "tier": "free",
        "iat": now - 7200,
        "exp": now - 3600,
        "jti": "old",
        "iss": signer.issuer,
        "aud": signer.audience,
    }
    return jwt.encode(claims, signer._key, algorithm="EdDSA", headers={"kid": signer.kid})


async def test_refresh_rejects(client: httpx.AsyncClient, app: FastAPI, email: str) -> None:
    user_id = (await register(client, email)).json()["user"]["id"]
    cases = {
        "missing": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": {"Authorization": "Bearer garbage.token.here"},
        "expired": {"Authorization": f"Bearer {_expired_token(app, user_id)}"},
        "gone user": {"Authorization": f"Bearer {app.state.signer.issue('usr_gone', 'free')}"},
    }
    messages = {}
    for name, headers in cases.items():
        response = await client.post("/api/v1/auth/refresh", headers=headers)
        messages[name] = assert_envelope(response, 401, "authentication_error")["message"]
        assert "garbage" not in response.text
    assert messages["expired"] == "Token expired"


async def test_jwks_and_trace_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json", headers={"X-Request-ID": "req_mine"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req_mine"
    [key] = response.json()["keys"]
    assert key["kty"] == "OKP" and "d" not in key


async def test_health(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")
    assert live.json() == ready.json() == {"status": "ok"}
    assert "x-request-id" in live.headers and "x-request-id" in ready.headers


async def test_unknown_route_in_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get("/api/v1/auth/nope"), 404, "validation_error")


async def test_database_down_is_503(client: httpx.AsyncClient, app: FastAPI, email: str) -> None:
    # A pool towards a port where nothing listens stands in for PostgreSQL going away.
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0)
    live_users = app.state.users
    app.state.users = UserRepository(dead)
    try:
        for response in (
            await client.get("/health/ready"),
            await register(client, email),
            await login(client, email, PASSWORD),
        ):
            error = assert_envelope(response, 503, "internal_error")
            assert "127.0.0.1" not in error["message"]
        assert (await client.get("/health/live")).status_code == 200
    finally:
        app.state.users = live_users
        await dead.close()
