"""Admission control through real edge replicas: limits, budgets, API keys, tokens, roles."""

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.fleet.plan import FleetConfig
from shared.tokens import TokenSigner
from tests.conftest import ADMIN_EMAIL, RUN_ID
from tests.e2e.helpers import (
    assert_envelope,
    async_value,
    auth,
    chat_body,
    eventually,
    held_at,
    release,
    running_edge,
)

PASSWORD = "correct-horse-battery"
TINY_CHAT = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=1]]")


@pytest.fixture(scope="module")
def replica(fleet: FleetConfig) -> Iterator[str]:
    """A second edge process on the same Redis: what a second replica behind a balancer is."""
    with running_edge(fleet) as url:
        yield url


@pytest.fixture
async def edge2(replica: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=replica, timeout=30.0) as client:
        yield client


async def register(edge: httpx.AsyncClient, email: str | None = None) -> tuple[str, str]:
    """(user id, token) of a new user, or of the existing one for `email`."""
    email = email or f"adm-{secrets.token_hex(5)}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Tester"}
    response = await edge.post("/api/v1/auth/register", json=body)
    if response.status_code == 409:
        response = await edge.post("/api/v1/auth/login", json=body | {"name": None})
        token = response.json()["token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        return claims["sub"], token
    assert response.status_code == 201, response.text
    return response.json()["user"]["id"], response.json()["token"]


@pytest.fixture
async def admin(edge: httpx.AsyncClient) -> str:
    _, token = await register(edge, ADMIN_EMAIL)
    return token


async def set_limits(edge: httpx.AsyncClient, admin: str, user_id: str, **limits: object) -> None:
    response = await edge.put(
        f"/api/v1/admin/users/{user_id}/limits", json=limits, headers=auth(admin)
    )
    assert response.status_code == 200, response.text


async def test_a_limit_holds_exactly_across_two_edge_replicas(
    edge: httpx.AsyncClient, edge2: httpx.AsyncClient, admin: str
) -> None:
    user_id, token = await register(edge)
    await set_limits(edge, admin, user_id, requests=12, window="1h")
    calls = [
        (edge if i % 2 else edge2).post("/api/v1/chat", json=TINY_CHAT, headers=auth(token))
        for i in range(24)
    ]
    responses = await asyncio.gather(*calls)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 12 + [429] * 12
    for limited in (r for r in responses if r.status_code == 429):
        assert_envelope(limited, 429, "rate_limit_error")
        assert 0 < int(limited.headers["retry-after"]) <= 3600
        assert limited.headers["ratelimit-limit"] == "12"
        assert limited.headers["ratelimit-remaining"] == "0"
        assert limited.headers["x-ratelimit-limit"] == "12"


async def test_admitted_responses_count_down_in_their_headers(
    edge: httpx.AsyncClient, admin: str
) -> None:
    user_id, token = await register(edge)
    await set_limits(edge, admin, user_id, requests=5, window="15m")
    remaining = []
    for _ in range(3):
        response = await edge.get("/api/v1/keys", headers=auth(token))
        assert response.headers["ratelimit-limit"] == "5"
        assert 0 < int(response.headers["ratelimit-reset"]) <= 900
        remaining.append(response.headers["ratelimit-remaining"])
    assert remaining == ["4", "3", "2"]


async def test_token_budget_cannot_be_overshot_and_failures_refund(
    edge: httpx.AsyncClient, edge2: httpx.AsyncClient, admin: str, simulator: httpx.AsyncClient
) -> None:
    user_id, token = await register(edge)
    await set_limits(edge, admin, user_id, tokens_per_minute=1000)
    # Each request reserves a few prompt tokens + max_tokens 300. The admitted ones are held
    # upstream until every request was admitted or refused, so none settles early.
    gate = f"tpm{secrets.token_hex(3)}"
    held = chat_body(
        "deepseek", "deepseek-chat", f"hi [[sim tokens=3 hold={gate}]]", max_tokens=300
    )
    calls = [
        asyncio.create_task(
            (edge if i % 2 else edge2).post("/api/v1/chat", json=held, headers=auth(token))
        )
        for i in range(8)
    ]
    try:
        await held_at(simulator, gate, 3)  # 3 * ~305 <= 1000 < 4 * ~305
        await eventually(
            async_value(lambda: sum(call.done() for call in calls) == 5), "five refusals"
        )
        assert all(c.result().status_code == 429 for c in calls if c.done())
        await held_at(simulator, gate, 3)
    finally:
        await release(simulator, gate)
    statuses = sorted(r.status_code for r in await asyncio.gather(*calls))
    assert statuses == [200] * 3 + [429] * 5

    # Settled to their real usage (a few tokens each), the budget has room again: without
    # settling, the 3 * ~302 still reserved would leave no room for ~902 more.
    big = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=2]]", max_tokens=900)
    assert (await edge.post("/api/v1/chat", json=big, headers=auth(token))).status_code == 200
    # A failed request gives back everything it reserved, so the next big one fits again.
    failing = chat_body("deepseek", "deepseek-chat", "hi [[sim fail=500]]", max_tokens=900)
    assert (await edge.post("/api/v1/chat", json=failing, headers=auth(token))).status_code == 502
    assert (await edge2.post("/api/v1/chat", json=big, headers=auth(token))).status_code == 200


async def test_gateway_api_key_lifecycle_and_revocation_on_every_replica(
    edge: httpx.AsyncClient, edge2: httpx.AsyncClient
) -> None:
    _, token = await register(edge)
    created = await edge.post("/api/v1/api-keys", json={"name": "batch job"}, headers=auth(token))
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    assert key.startswith("gw_")

    for client in (edge, edge2):
        response = await client.post("/api/v1/chat", json=TINY_CHAT, headers=auth(key))
        assert response.status_code == 200, response.text
    listed = await edge.get("/api/v1/api-keys", headers=auth(token))
    assert key_id in listed.text and key not in listed.text

    revoked = await edge.delete(f"/api/v1/api-keys/{key_id}", headers=auth(token))
    assert revoked.status_code == 204
    for client in (edge2, edge):
        response = await client.post("/api/v1/chat", json=TINY_CHAT, headers=auth(key))
        assert_envelope(response, 401, "authentication_error")


async def test_api_keys_keep_to_their_providers_and_models(edge: httpx.AsyncClient) -> None:
    _, token = await register(edge)
    created = await edge.post(
        "/api/v1/api-keys",
        json={
            "name": "deepseek only",
            "allowed_providers": ["deepseek"],
            "allowed_models": ["deepseek-chat"],
        },
        headers=auth(token),
    )
    key = created.json()["key"]
    assert (await edge.post("/api/v1/chat", json=TINY_CHAT, headers=auth(key))).status_code == 200
    other_provider = chat_body("anthropic", "claude-3-5-sonnet-20241022", "hi")
    response = await edge.post("/api/v1/chat", json=other_provider, headers=auth(key))
    assert_envelope(response, 403, "authorization_error")
    other_model = chat_body("deepseek", "deepseek-reasoner", "hi")
    response = await edge.post("/api/v1/chat", json=other_model, headers=auth(key))
    assert_envelope(response, 403, "authorization_error")


async def test_a_key_refused_by_its_own_limit_leaves_its_owners_window_alone(
    edge: httpx.AsyncClient, admin: str
) -> None:
    user_id, token = await register(edge)
    await set_limits(edge, admin, user_id, requests=4, window="1h")
    created = await edge.post(
        "/api/v1/api-keys",
        json={"name": "one a day", "limits": {"requests": 1, "window": "1d"}},
        headers=auth(token),
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    statuses = [
        (await edge.post("/api/v1/chat", json=TINY_CHAT, headers=auth(key))).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 429, 429]
    # The owner's window counts creating the key, the one admitted chat and this request; the
    # two refused chats would have used it up.
    response = await edge.get("/api/v1/keys", headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["ratelimit-remaining"] == "1"


async def test_gateway_api_keys_serve_models_but_cannot_manage_the_account(
    edge: httpx.AsyncClient,
) -> None:
    user_id, token = await register(edge)
    created = await edge.post("/api/v1/api-keys", json={"name": "program"}, headers=auth(token))
    key = created.json()["key"]
    for path in ("/api/v1/providers", "/v1/models"):
        response = await edge.get(path, headers=auth(key))
        assert response.status_code == 200, (path, response.text)
    account = [
        ("GET", "/api/v1/keys", None),
        ("POST", "/api/v1/keys", {"provider": "deepseek", "apiKey": "sk-leaked-0000000000"}),
        ("GET", "/api/v1/api-keys", None),
        ("POST", "/api/v1/api-keys", {"name": "minted by a program"}),
        ("GET", "/api/v1/usage", None),
        ("GET", f"/api/v1/admin/users/{user_id}", None),
        ("POST", "/api/v1/auth/refresh", None),
        ("POST", "/api/v1/auth/logout", None),
    ]
    for method, path, body in account:
        response = await edge.request(method, path, json=body, headers=auth(key))
        assert_envelope(response, 401, "authentication_error")
    listed = await edge.get("/api/v1/api-keys", headers=auth(token))
    assert [k["name"] for k in listed.json()["api_keys"]] == ["program"]


def forged(claims: dict[str, object], **header: str) -> str:
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)


def unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_forged_expired_foreign_unsigned_and_revoked_tokens_get_401(
    edge: httpx.AsyncClient, fleet: FleetConfig
) -> None:
    user_id, token = await register(edge)
    real = jwt.get_unverified_header(token)
    now = int(time.time())
    claims = {
        "sub": user_id,
        "tier": "free",
        "role": "admin",
        "jti": secrets.token_hex(8),
        "iat": now,
        "exp": now + 600,
        "iss": "ai-gateway",
        "aud": "ai-gateway",
    }
    key = (fleet.data_dir / "jwt_ed25519.pem").read_bytes()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    signing_key = load_pem_private_key(key, None)
    assert isinstance(signing_key, Ed25519PrivateKey)
    expired = TokenSigner(
        signing_key, issuer="ai-gateway", audience="ai-gateway", expiry_seconds=-5
    ).issue(user_id, "free")
    foreign_audience = TokenSigner(
        signing_key, issuer="ai-gateway", audience="someone-else", expiry_seconds=600
    ).issue(user_id, "free")
    hs256 = jwt.encode(
        claims,
        "a-shared-secret-of-32-bytes-long!!",
        algorithm="HS256",
        headers={"kid": real["kid"]},
    )
    bad_tokens = [
        forged(claims, kid=real["kid"]),
        expired,
        foreign_audience,
        unsigned(claims),
        hs256,
    ]
    for bad in bad_tokens:
        response = await edge.post("/api/v1/chat", json=TINY_CHAT, headers=auth(bad))
        assert_envelope(response, 401, "authentication_error")

    assert (await edge.post("/api/v1/auth/logout", headers=auth(token))).status_code == 204
    response = await edge.post("/api/v1/chat", json=TINY_CHAT, headers=auth(token))
    assert_envelope(response, 401, "authentication_error")


async def test_admin_routes_refuse_users(edge: httpx.AsyncClient) -> None:
    user_id, token = await register(edge)
    response = await edge.put(
        f"/api/v1/admin/users/{user_id}/tier", json={"tier": "paid"}, headers=auth(token)
    )
    assert_envelope(response, 403, "authorization_error")


async def test_paid_tier_set_by_an_admin_gets_the_paid_limit(
    edge: httpx.AsyncClient, admin: str
) -> None:
    user_id, token = await register(edge)
    response = await edge.put(
        f"/api/v1/admin/users/{user_id}/tier", json={"tier": "paid"}, headers=auth(admin)
    )
    assert response.status_code == 200, response.text
    listed = await edge.get("/api/v1/keys", headers=auth(token))
    assert listed.headers["ratelimit-limit"] == "1000"


async def test_a_body_over_the_limit_gets_413(edge: httpx.AsyncClient, user_token: str) -> None:
    huge = chat_body("deepseek", "deepseek-chat", "x" * 1_100_000)
    response = await edge.post("/api/v1/chat", json=huge, headers=auth(user_token))
    assert_envelope(response, 413, "validation_error")


@pytest.fixture(scope="module")
def strict_edge(fleet: FleetConfig) -> Iterator[str]:
    """An edge with the spec's auth limit (few requests per client) and a CORS allow-list,
    counting in its own Redis namespace so the rest of the suite does not use up its limit."""
    with running_edge(
        fleet,
        AUTH_RATE_LIMIT_MAX="3",
        REDIS_PREFIX=f"gw-strict-{RUN_ID}",
        CORS_ORIGINS="https://app.example.com",
    ) as url:
        yield url


async def test_auth_endpoints_are_limited_per_client(strict_edge: str) -> None:
    body = {"email": "nobody@example.com", "password": "wrong-password-1"}
    async with httpx.AsyncClient(base_url=strict_edge) as client:
        statuses = [(await client.post("/api/v1/auth/login", json=body)) for _ in range(4)]
    assert [r.status_code for r in statuses] == [401, 401, 401, 429]
    assert statuses[0].headers["ratelimit-limit"] == "3"
    assert_envelope(statuses[3], 429, "rate_limit_error")
    assert int(statuses[3].headers["retry-after"]) <= 60


async def test_cors_allows_only_listed_origins(strict_edge: str) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    async with httpx.AsyncClient(base_url=strict_edge) as client:
        allowed = await client.options(
            "/api/v1/chat", headers={"Origin": "https://app.example.com", **preflight}
        )
        denied = await client.options(
            "/api/v1/chat", headers={"Origin": "https://evil.example.net", **preflight}
        )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in denied.headers
