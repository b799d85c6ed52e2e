"""OWASP API6:2023 Unrestricted Access to Sensitive Business Flows: registration and login.

Both are throttled per client address (the edge: `AUTH_RATE_LIMIT_MAX` a window on
`/api/v1/auth/*`; auth: `LOGIN_CLIENT_MAX_FAILURES` failed attempts) and per account and client
(`LOGIN_MAX_FAILURES` failed attempts at one email from one client; no stranger can lock an
account for others: test_login_lockout.py). A 409 (email taken) at registration counts as a
failed attempt. Login answers an unknown email and a
wrong password alike, and both cost one bcrypt verification at the configured cost.
Registration answers 409 for a taken email (the spec's registration returns a token, so a taken
email cannot be answered like a success): an accepted risk, bounded by the throttles above.
"""

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from fastapi import FastAPI

from services.auth.main import create_app
from shared.settings import Settings
from tests.auth.support import make_settings
from tests.e2e.helpers import assert_envelope
from tests.security.support import PASSWORD, register

ACCOUNT_MAX, CLIENT_MAX = 3, 6


@pytest.fixture(scope="module")
async def auth_app(database_url: str, redis_url: str, run_dir: Path) -> AsyncIterator[FastAPI]:
    """The auth service in process (its client address comes from X-Forwarded-For, as the
    edge sets it), with small throttles."""
    settings: Settings = make_settings(
        database_url,
        run_dir / "api6-auth",
        REDIS_URL=redis_url,
        REDIS_PREFIX=f"gw-api6-{secrets.token_hex(4)}",
        INTERNAL_SERVICE_TOKEN=secrets.token_urlsafe(24),
        LOGIN_MAX_FAILURES=ACCOUNT_MAX,
        LOGIN_CLIENT_MAX_FAILURES=CLIENT_MAX,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def auth_client(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
        yield client


def _email() -> str:
    return f"api6-{secrets.token_hex(6)}@example.com"


def _from(client: str) -> dict[str, str]:
    return {"X-Forwarded-For": client}


def _client() -> str:
    """A fresh client address (the peer, 127.0.0.1, is a trusted proxy by default)."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def _shape(body: Any) -> Any:
    """The body with every value replaced by its type: what an observer compares."""
    if isinstance(body, dict):
        return {k: _shape(v) for k, v in body.items()}
    return type(body).__name__


async def test_unknown_email_and_wrong_password_are_answered_alike(
    edge: httpx.AsyncClient,
) -> None:
    email = _email()
    await register(edge, email)
    wrong = await edge.post("/api/v1/auth/login", json={"email": email, "password": "nope-nope"})
    unknown = await edge.post(
        "/api/v1/auth/login", json={"email": _email(), "password": "nope-nope"}
    )
    for response in (wrong, unknown):
        assert_envelope(response, 401, "authentication_error")
    assert _shape(wrong.json()) == _shape(unknown.json())
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert wrong.json()["error"].get("details") == unknown.json()["error"].get("details")


async def test_unknown_email_costs_a_bcrypt_check_at_the_configured_cost(
    auth_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing, checked by structure: both answers run one real bcrypt verification against a
    hash of the same cost, so neither is cheaper to observe."""
    checked: list[bytes] = []
    real_check: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def counting_check(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real_check(password, hashed)

    email = _email()
    body = {"email": email, "password": PASSWORD, "name": "Timing"}
    assert (await auth_client.post("/api/v1/auth/register", json=body)).status_code == 201
    monkeypatch.setattr(bcrypt, "checkpw", counting_check)
    for login_email in (email, _email()):
        response = await auth_client.post(
            "/api/v1/auth/login",
            json={"email": login_email, "password": "wrong-password"},
            headers=_from(_client()),
        )
        assert response.status_code == 401, response.text
    known, unknown = checked
    assert known.split(b"$")[2] == unknown.split(b"$")[2]  # the cost factor


async def test_failed_logins_at_one_email_from_one_client_are_throttled(
    auth_client: httpx.AsyncClient,
) -> None:
    email = _email()
    body = {"email": email, "password": PASSWORD, "name": "Target"}
    assert (await auth_client.post("/api/v1/auth/register", json=body)).status_code == 201
    guess, guesser = {"email": email, "password": "guess-guess"}, _from(_client())
    for _ in range(ACCOUNT_MAX):
        response = await auth_client.post("/api/v1/auth/login", json=guess, headers=guesser)
        assert response.status_code == 401, response.text
    for login in (guess, {"email": email, "password": PASSWORD}):  # even the right password
        response = await auth_client.post("/api/v1/auth/login", json=login, headers=guesser)
        assert_envelope(response, 429, "rate_limit_error")
        assert int(response.headers["retry-after"]) >= 1
    unknown = await auth_client.post(
        "/api/v1/auth/login", json={"email": email.upper(), "password": "x"}, headers=guesser
    )
    assert unknown.status_code == 429  # the email's case does not make a new account


async def test_one_client_probing_many_emails_is_throttled(
    auth_client: httpx.AsyncClient,
) -> None:
    client = _client()
    for _ in range(CLIENT_MAX):
        login = {"email": _email(), "password": "guess-guess"}
        response = await auth_client.post("/api/v1/auth/login", json=login, headers=_from(client))
        assert response.status_code == 401, response.text
    login = {"email": _email(), "password": "guess-guess"}
    response = await auth_client.post("/api/v1/auth/login", json=login, headers=_from(client))
    assert_envelope(response, 429, "rate_limit_error")
    other = await auth_client.post("/api/v1/auth/login", json=login, headers=_from(_client()))
    assert other.status_code == 401  # other clients are not locked out


async def test_probing_registered_emails_through_registration_is_throttled(
    auth_client: httpx.AsyncClient,
) -> None:
    """A taken email is a 409; each counts as a failed attempt of the client at the email."""
    taken = [_email() for _ in range(CLIENT_MAX)]
    for email in taken:
        body = {"email": email, "password": PASSWORD, "name": "Taken"}
        response = await auth_client.post(
            "/api/v1/auth/register", json=body, headers=_from(_client())
        )
        assert response.status_code == 201, response.text
    prober = _client()
    for email in taken:
        body = {"email": email, "password": PASSWORD, "name": "Probe"}
        response = await auth_client.post("/api/v1/auth/register", json=body, headers=_from(prober))
        assert_envelope(response, 409, "validation_error")
    fresh = {"email": _email(), "password": PASSWORD, "name": "Probe"}
    response = await auth_client.post("/api/v1/auth/register", json=fresh, headers=_from(prober))
    assert_envelope(response, 429, "rate_limit_error")
    # One taken email probed again and again from one client: throttled at that email.
    target, again = taken[0], _from(_client())
    statuses = []
    for _ in range(ACCOUNT_MAX + 1):
        body = {"email": target, "password": PASSWORD, "name": "Probe"}
        response = await auth_client.post("/api/v1/auth/register", json=body, headers=again)
        statuses.append(response.status_code)
    assert statuses == [409] * ACCOUNT_MAX + [429], statuses


async def test_the_edge_limits_auth_requests_per_client(edge: httpx.AsyncClient) -> None:
    """`AUTH_RATE_LIMIT_MAX` (raised for the shared test fleet) is announced on every answer."""
    response = await edge.post("/api/v1/auth/login", json={"email": _email(), "password": "x"})
    assert response.status_code == 401
    assert int(response.headers["ratelimit-limit"]) >= 1
    assert "ratelimit-remaining" in response.headers
