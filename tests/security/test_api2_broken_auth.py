"""OWASP API2:2023 Broken Authentication.

Tokens are Ed25519 JWTs with a pinned algorithm, revoked on logout and on refresh through a
deny-list every replica reads. (There is no password-reset or email-change flow to test.)
"""

import base64
import time

import httpx
import jwt
import orjson

from tests.e2e.helpers import assert_envelope, auth
from tests.security.support import register

# Authenticated routes of every kind: a proxied one, a queued one and the compatible surface.
PROTECTED = (
    ("GET", "/api/v1/keys"),
    ("GET", "/api/v1/api-keys"),
    ("GET", "/api/v1/usage"),
    ("GET", "/api/v1/providers"),
    ("GET", "/v1/models"),
    ("POST", "/api/v1/auth/refresh"),
)


async def assert_refused(edge: httpx.AsyncClient, token: str) -> None:
    for method, path in PROTECTED:
        response = await edge.request(method, path, headers=auth(token))
        assert_envelope(response, 401, "authentication_error")


async def test_a_token_replayed_after_logout_is_refused(edge: httpx.AsyncClient) -> None:
    _, token = await register(edge)
    assert (await edge.get("/api/v1/keys", headers=auth(token))).status_code == 200
    assert (await edge.post("/api/v1/auth/logout", headers=auth(token))).status_code == 204
    await assert_refused(edge, token)
    again = await edge.post("/api/v1/auth/logout", headers=auth(token))
    assert_envelope(again, 401, "authentication_error")


async def test_a_refreshed_token_cannot_be_reused(edge: httpx.AsyncClient) -> None:
    _, first = await register(edge)
    refreshed = await edge.post("/api/v1/auth/refresh", headers=auth(first))
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["token"]
    assert second != first

    await assert_refused(edge, first)  # also a second refresh with it: no token chains
    assert (await edge.get("/api/v1/keys", headers=auth(second))).status_code == 200


def _segment(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


async def test_alg_none_and_tampered_tokens_are_refused(edge: httpx.AsyncClient) -> None:
    user_id, token = await register(edge)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    admin_claims = claims | {"role": "admin", "exp": int(time.time()) + 3600}
    unsigned = [
        f"{_segment({'alg': alg, 'typ': 'JWT', 'kid': header['kid']})}.{_segment(admin_claims)}."
        for alg in ("none", "None", "NONE")
    ]
    head, _, signature = token.split(".")
    tampered = f"{head}.{_segment(admin_claims)}.{signature}"  # a real signature, other claims
    for bad in (*unsigned, tampered, "not.a.token"):
        await assert_refused(edge, bad)
    assert claims["sub"] == user_id


async def test_no_credentials_and_wrong_schemes_are_refused(edge: httpx.AsyncClient) -> None:
    _, token = await register(edge)
    for headers in ({}, {"Authorization": token}, {"Authorization": f"Basic {token}"}):
        response = await edge.get("/api/v1/keys", headers=headers)
        assert_envelope(response, 401, "authentication_error")
