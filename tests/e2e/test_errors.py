"""Every failure is a clear status in the standard envelope with a trace id; never a 500."""

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from services.fleet.plan import FleetConfig
from shared.tokens import DEV_KEY_FILE, TokenSigner
from tests.e2e.helpers import assert_envelope, auth, chat_body, sse_payloads

ANTHROPIC = ("anthropic", "claude-3-5-sonnet-20241022")
DEEPSEEK = ("deepseek", "deepseek-chat")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer a.b.c"],
)
async def test_missing_or_garbage_tokens_get_401(
    edge: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await edge.post("/api/v1/chat", json=chat_body(*DEEPSEEK, "hi"), headers=headers)
    assert_envelope(response, 401, "authentication_error")


async def test_expired_token_gets_401(edge: httpx.AsyncClient, fleet: FleetConfig) -> None:
    key = load_pem_private_key((fleet.data_dir / DEV_KEY_FILE).read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    signer = TokenSigner(key, issuer="ai-gateway", audience="ai-gateway", expiry_seconds=-60)
    expired = signer.issue("usr_x", "free")
    response = await edge.post(
        "/api/v1/chat", json=chat_body(*DEEPSEEK, "hi"), headers=auth(expired)
    )
    error = assert_envelope(response, 401, "authentication_error")
    assert error["message"] == "Token expired"


async def test_malformed_json_gets_400(edge: httpx.AsyncClient, user_token: str) -> None:
    headers = {**auth(user_token), "Content-Type": "application/json"}
    response = await edge.post("/api/v1/chat", content=b'{"provider": "deepseek",', headers=headers)
    assert_envelope(response, 400, "validation_error")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temperature": 5}, "temperature"),
        ({"messages": []}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"model": ""}, "model"),
        ({"temprature": 0.5}, "temprature"),
    ],
)
async def test_invalid_fields_get_400_naming_the_field(
    edge: httpx.AsyncClient, user_token: str, change: dict[str, object], field: str
) -> None:
    body = {**chat_body(*DEEPSEEK, "hi"), **change}
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    error = assert_envelope(response, 400, "validation_error")
    assert field in str(error["message"])


async def test_unknown_provider_gets_400_listing_known_ones(
    edge: httpx.AsyncClient, user_token: str
) -> None:
    body = chat_body("nope", "m", "hi")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"]["available_providers"] == [
        "anthropic",
        "deepseek",
        "huggingface",
        "litellm",
        "nvidia_nim",
        "openrouter",
        "perplexity",
        "xai",
    ]


async def test_unknown_route_gets_404_in_envelope(edge: httpx.AsyncClient) -> None:
    response = await edge.get("/api/v1/nothing-here")
    assert_envelope(response, 404, "validation_error")


@pytest.mark.parametrize("provider", [ANTHROPIC, DEEPSEEK])
async def test_provider_rate_limit_becomes_429_with_retry_after(
    edge: httpx.AsyncClient, user_token: str, provider: tuple[str, str]
) -> None:
    body = chat_body(*provider, "hi [[sim fail=429]]")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    error = assert_envelope(response, 429, "rate_limit_error")
    assert int(response.headers["retry-after"]) >= 1
    assert error["details"]["provider"] == provider[0]


@pytest.mark.parametrize("provider", [ANTHROPIC, DEEPSEEK])
@pytest.mark.parametrize(("fail", "status"), [("401", 502), ("500", 502), ("503", 503)])
async def test_provider_failures_become_provider_errors(
    edge: httpx.AsyncClient, user_token: str, provider: tuple[str, str], fail: str, status: int
) -> None:
    body = chat_body(*provider, f"hi [[sim fail={fail}]]", stream=fail == "500")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    error = assert_envelope(response, status, "provider_error")
    assert error["details"]["provider"] == provider[0]
    assert error["details"]["upstream_status"] == int(fail)


async def test_anthropic_overload_529_becomes_503(edge: httpx.AsyncClient, user_token: str) -> None:
    body = chat_body(*ANTHROPIC, "hi [[sim fail=529]]")
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))
    assert_envelope(response, 503, "provider_error")


@pytest.mark.parametrize("provider", [ANTHROPIC, DEEPSEEK])
async def test_mid_stream_provider_error_ends_the_stream_with_an_error_event(
    edge: httpx.AsyncClient, user_token: str, provider: tuple[str, str]
) -> None:
    body = chat_body(*provider, "hi [[sim fail=midstream tokens=20]]", stream=True)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    assert response.status_code == 200
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    error = payloads[-2]["error"]
    assert error["type"] == "provider_error"
    assert error["trace_id"] == response.headers["x-request-id"]
    assert any("delta" in p for p in payloads[:-2] if isinstance(p, dict))


@pytest.mark.parametrize("provider", [ANTHROPIC, DEEPSEEK])
async def test_provider_disconnect_mid_stream_ends_with_an_error_event(
    edge: httpx.AsyncClient, user_token: str, provider: tuple[str, str]
) -> None:
    body = chat_body(*provider, "hi [[sim fail=disconnect tokens=20]]", stream=True)
    response = await edge.post("/api/v1/chat", json=body, headers=auth(user_token))

    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    assert payloads[-2]["error"]["type"] == "provider_error"
