"""OWASP API5:2023 Broken Function Level Authorization.

Admin routes refuse users (403). Internal endpoints (the keyvault's decrypt and metadata, the
auth service's API-key resolution) are not served by the edge at all, and refuse user tokens
(401) when called directly on the service network: they take only the service token.
"""

import httpx

from services.fleet.plan import FleetConfig
from tests.e2e.helpers import assert_envelope, auth
from tests.security.support import admin_token, register

INTERNAL = (
    ("GET", "/internal/v1/keys/key_x"),
    ("GET", "/internal/v1/keys/key_x/secret"),
    ("POST", "/internal/v1/keys/stash"),
    ("POST", "/internal/v1/api-keys/resolve"),
)
RESOLVE_BODY = {"key_hash": "0" * 64}


async def test_admin_routes_refuse_users(edge: httpx.AsyncClient) -> None:
    user_id, token = await register(edge)
    for method, path, body in (
        ("GET", f"/api/v1/admin/users/{user_id}", None),
        ("PUT", f"/api/v1/admin/users/{user_id}/tier", {"tier": "paid"}),
        ("PUT", f"/api/v1/admin/users/{user_id}/limits", {"requests": 10**6, "window": "1m"}),
    ):
        response = await edge.request(method, path, json=body, headers=auth(token))
        assert_envelope(response, 403, "authorization_error")
    # A gateway API key of that user is no better (the auth service takes only tokens there).
    created = await edge.post("/api/v1/api-keys", json={"name": "k"}, headers=auth(token))
    key = created.json()["key"]
    response = await edge.get(f"/api/v1/admin/users/{user_id}", headers=auth(key))
    assert response.status_code in (401, 403), response.text
    # ... and the tier stayed as it was.
    view = await edge.get(f"/api/v1/admin/users/{user_id}", headers=auth(await admin_token(edge)))
    assert view.json()["tier"] == "free"


async def test_internal_routes_are_not_served_by_the_edge(edge: httpx.AsyncClient) -> None:
    _, token = await register(edge)
    for method, path in INTERNAL:
        for headers in ({}, auth(token)):
            response = await edge.request(method, path, json=RESOLVE_BODY, headers=headers)
            assert response.status_code == 404, (method, path, response.text)


async def test_internal_routes_refuse_user_tokens_when_called_directly(
    edge: httpx.AsyncClient, fleet: FleetConfig
) -> None:
    _, token = await register(edge)
    created = await edge.post("/api/v1/api-keys", json={"name": "k"}, headers=auth(token))
    gateway_key = created.json()["key"]
    services = {"keys": fleet.keyvault_url, "api-keys": fleet.auth_url}
    async with httpx.AsyncClient(timeout=10.0) as client:
        for method, path in INTERNAL:
            base = services["api-keys" if "api-keys" in path else "keys"]
            for headers in ({}, auth(token), auth(gateway_key), {"x-api-key": token}):
                response = await client.request(
                    method, f"{base}{path}", json=RESOLVE_BODY, headers=headers
                )
                assert_envelope(response, 401, "authentication_error")


async def test_the_edges_service_token_cannot_decrypt_a_key(
    edge: httpx.AsyncClient, fleet: FleetConfig
) -> None:
    """The fleet's edge holds the internal token, the workers the decrypt token: a leaked edge
    secret looks keys up but reveals none."""
    user_id, token = await register(edge)
    stored = await edge.post(
        "/api/v1/keys",
        json={"provider": "deepseek", "apiKey": "sk-api5-" + "x" * 24},
        headers=auth(token),
    )
    assert stored.status_code == 201, stored.text
    key_id = stored.json()["id"]
    edge_token = (fleet.data_dir / "internal_service_token").read_text()
    worker_token = (fleet.data_dir / "keyvault_service_token").read_text()
    assert edge_token != worker_token
    async with httpx.AsyncClient(base_url=fleet.keyvault_url, timeout=10.0) as keyvault:
        path, params = f"/internal/v1/keys/{key_id}", {"user_id": user_id}
        assert (
            await keyvault.get(path, params=params, headers=auth(edge_token))
        ).status_code == 200
        secret = await keyvault.get(f"{path}/secret", params=params, headers=auth(edge_token))
        assert_envelope(secret, 401, "authentication_error")
        assert "sk-api5-" not in secret.text
        revealed = await keyvault.get(f"{path}/secret", params=params, headers=auth(worker_token))
        assert revealed.status_code == 200
