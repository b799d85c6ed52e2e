"""OWASP API8:2023 Security Misconfiguration.

Security headers on every response of every service (errors too, added in one place:
`shared.http.TraceMiddleware`), no stack traces in error bodies, and services that refuse to
start in production without their secrets or with a placeholder.
"""

from pathlib import Path

import httpx
import pytest

from services.fleet.plan import FleetConfig
from tests.e2e.helpers import auth, chat_body
from tests.security.support import private_pem, production_env, register, start_and_wait

SPEC_PLACEHOLDER = "your-super-secret-jwt-key-change-in-production"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "strict-transport-security": "max-age=63072000; includeSubDomains",
}
CSP = "default-src 'none'; frame-ancestors 'none'"
TRACEBACK_MARKERS = ("Traceback", 'File "', "line ", ".py", "Exception")


def assert_secure(response: httpx.Response, *, csp: bool = True) -> None:
    where = f"{response.request.method} {response.request.url}"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (where, name, dict(response.headers))
        assert len(response.headers.get_list(name)) == 1, (where, name)
    assert ("content-security-policy" in response.headers) == csp, where
    if csp:
        assert response.headers["content-security-policy"] == CSP
    assert response.headers.get("cache-control"), where
    assert response.headers["x-request-id"].startswith("req_")


def assert_no_traceback(response: httpx.Response) -> None:
    for marker in TRACEBACK_MARKERS:
        assert marker not in response.text, (marker, response.text)


async def test_edge_responses_carry_the_security_headers(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    responses = [
        await edge.get("/health/live"),
        await edge.get("/openapi.json"),
        await edge.get("/metrics"),
        await edge.get("/api/v1/keys", headers=auth(user_token)),
        await edge.get("/api/v1/keys"),  # 401
        await edge.get("/nope"),  # 404
        await edge.delete("/health/live"),  # 405
        await edge.post("/api/v1/chat", content=b"{not json", headers=auth(user_token)),  # 400
        await edge.post(  # 413, answered before the app
            "/api/v1/chat",
            json=chat_body("deepseek", "deepseek-chat", "x" * 1_100_000),
            headers=auth(user_token),
        ),
        await edge.post(  # a stream
            "/api/v1/chat",
            json=chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=2]]", stream=True),
            headers=auth(user_token),
        ),
    ]
    for response in responses:
        assert_secure(response)
    assert responses[0].headers["cache-control"] == "no-store"
    errors = [r for r in responses if r.status_code >= 400]
    assert {r.status_code for r in errors} == {400, 401, 404, 405, 413}
    for response in errors:
        assert_no_traceback(response)


async def test_the_docs_page_is_served_without_csp_but_with_the_other_headers(
    edge: httpx.AsyncClient,
) -> None:
    docs = await edge.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert_secure(docs, csp=False)


async def test_internal_services_carry_the_security_headers(fleet: FleetConfig) -> None:
    assert fleet.audit_url
    async with httpx.AsyncClient(timeout=10.0) as client:
        jwks = await client.get(f"{fleet.auth_url}/.well-known/jwks.json")
        responses = [
            await client.get(f"{fleet.auth_url}/health/live"),
            await client.post(f"{fleet.auth_url}/api/v1/auth/refresh"),  # 401
            await client.post(f"{fleet.auth_url}/api/v1/auth/login", content=b"["),  # 400
            await client.get(f"{fleet.keyvault_url}/health/live"),
            await client.get(f"{fleet.keyvault_url}/api/v1/keys"),  # 401
            await client.get(f"{fleet.keyvault_url}/internal/v1/keys/key_x/secret"),  # 401
            await client.get(f"{fleet.audit_url}/health/live"),
            await client.get(f"{fleet.audit_url}/api/v1/usage"),  # 401
            await client.get(f"{fleet.audit_url}/nope"),  # 404
            jwks,
        ]
    for response in responses:
        assert_secure(response)
        if response.status_code >= 400:
            assert_no_traceback(response)
    # A Cache-Control a route chose is kept: the public key may be cached.
    assert jwks.headers["cache-control"] == "public, max-age=300"


async def test_a_client_cannot_read_the_docs_of_internal_services(fleet: FleetConfig) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        for base in (fleet.auth_url, fleet.keyvault_url, fleet.audit_url):
            assert (await client.get(f"{base}/docs")).status_code == 404


async def test_a_client_trace_id_cannot_inject_headers(edge: httpx.AsyncClient) -> None:
    response = await edge.get("/health/live", headers={"X-Request-ID": "x" * 500})
    assert response.headers["x-request-id"] != "x" * 500
    assert_secure(response)


async def test_validation_errors_name_the_field_not_the_code(edge: httpx.AsyncClient) -> None:
    _, token = await register(edge)
    response = await edge.post(
        "/api/v1/chat",
        json=chat_body("deepseek", "deepseek-chat", "hi", temperature="hot"),
        headers=auth(token),
    )
    assert response.status_code == 400
    assert_no_traceback(response)


# --- production mode: refusing to start --------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "JWT_PRIVATE_KEY is not set"),
        ({"JWT_SECRET": SPEC_PLACEHOLDER}, "JWT_PRIVATE_KEY is not set"),
        ({"JWT_PRIVATE_KEY": SPEC_PLACEHOLDER}, "JWT_PRIVATE_KEY is not a readable"),
        (
            {"JWT_PRIVATE_KEY": private_pem(), "INTERNAL_SERVICE_TOKEN": ""},
            "INTERNAL_SERVICE_TOKEN",
        ),
    ],
    ids=["missing", "spec-placeholder-jwt-secret", "placeholder-as-key", "no-service-token"],
)
def test_auth_refuses_to_start_in_production_without_its_secrets(
    tmp_path: Path,
    redis_url: str,
    database_url: str,
    variables: dict[str, str],
    message: str,
) -> None:
    env = production_env(tmp_path, redis_url, database_url) | variables
    env = {k: v for k, v in env.items() if v}
    code, output = start_and_wait("services.auth", env, tmp_path)
    assert code != 0
    assert message in output, output
    assert not (tmp_path / "data").exists()  # no development secret was generated


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "KEYVAULT_MASTER_KEYS is not set"),
        ({"KEYVAULT_MASTER_KEYS": ""}, "no master key configured"),
        ({"KEYVAULT_MASTER_KEYS": "1:c2hvcnQ="}, "must be 32 bytes"),
        ({"KEYVAULT_MASTER_KEYS": "change-me"}, "must look like 1:<base64>"),
    ],
    ids=["missing", "empty", "short", "placeholder"],
)
def test_keyvault_refuses_to_start_in_production_without_master_keys(
    tmp_path: Path,
    redis_url: str,
    database_url: str,
    variables: dict[str, str],
    message: str,
) -> None:
    env = production_env(tmp_path, redis_url, database_url) | variables
    code, output = start_and_wait("services.keyvault", env, tmp_path)
    assert code != 0
    assert message in output, output
    assert not (tmp_path / "data").exists()
