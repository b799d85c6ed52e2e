"""Routes the edge forwards to the internal service that owns them, after its own checks.

`/api/v1/auth/*` goes to the auth service as is (it is how callers get a token); the key
routes go to the keyvault once the caller is authenticated here.
"""

from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from services.auth.schemas import (
    LoginRequest,
    LoginResponse,
    RegisterRequest,
    RegisterResponse,
    TokenResponse,
)
from services.edge.deps import AdmittedCallerDep, InternalService, components
from shared.client_address import forwarding_headers
from shared.errors import ServiceUnavailable
from shared.http import trace_id
from shared.key_schemas import KEY_ID_PATTERN, AddKeyRequest, KeyList, KeyView

router = APIRouter()

_FORWARDED_HEADERS = ("authorization", "content-type", "user-agent", "accept")
_RETURNED_HEADERS = ("content-disposition",)  # the usage report's CSV file name

KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN)]


async def forward(request: Request, service: InternalService, path: str) -> Response:
    """The internal service's answer to the same request (status, body and content type)."""
    client = components(request).internal.client(service)
    headers = {h: v for h in _FORWARDED_HEADERS if (v := request.headers.get(h)) is not None}
    headers["x-request-id"] = trace_id(request)
    if request.client is not None:  # resolved from TRUSTED_PROXIES (shared/client_address.py)
        headers.update(forwarding_headers(request.client.host))
    try:
        upstream = await client.request(
            request.method, path, content=await request.body(), headers=headers
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(f"The {service} service is unavailable") from exc
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type"),
        headers={h: v for h in _RETURNED_HEADERS if (v := upstream.headers.get(h)) is not None},
    )


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a forwarded route: the auth service validates it."""
    schema = {"content": {"application/json": {"schema": model.model_json_schema()}}}
    return {"requestBody": {"required": True, **schema}}


async def _to_auth(request: Request) -> Response:
    await components(request).gate.admit_client(request)
    return await forward(request, "auth", request.url.path)


# One route per auth endpoint (not a catch-all), so that the schema lists every public route.
@router.post(
    "/api/v1/auth/register",
    status_code=201,
    response_model=RegisterResponse,
    tags=["auth"],
    openapi_extra=_json_body(RegisterRequest),
)
async def register(request: Request) -> Response:
    """Create an account; 409 if the email is taken."""
    return await _to_auth(request)


@router.post(
    "/api/v1/auth/login",
    response_model=LoginResponse,
    response_model_by_alias=True,
    tags=["auth"],
    openapi_extra=_json_body(LoginRequest),
)
async def login(request: Request) -> Response:
    """A token for an email and password; 401 on bad credentials."""
    return await _to_auth(request)


@router.post("/api/v1/auth/refresh", response_model=TokenResponse, tags=["auth"])
async def refresh(request: Request) -> Response:
    """A new token for the bearer token, which is revoked."""
    return await _to_auth(request)


@router.post("/api/v1/auth/logout", status_code=204, tags=["auth"])
async def logout(request: Request) -> Response:
    """Revokes the bearer token."""
    return await _to_auth(request)


# Two routes, not one with two methods: each operation needs its own OpenAPI operation id.
@router.post("/api/v1/api-keys", status_code=201, tags=["api-keys"])
async def create_api_key(request: Request, caller: AdmittedCallerDep) -> Response:
    """Create a gateway API key; the key is shown once."""
    return await forward(request, "auth", "/api/v1/api-keys")


@router.get("/api/v1/api-keys", tags=["api-keys"])
async def list_api_keys(request: Request, caller: AdmittedCallerDep) -> Response:
    """Your gateway API keys (never the keys themselves)."""
    return await forward(request, "auth", "/api/v1/api-keys")


@router.delete("/api/v1/api-keys/{key_id}", status_code=204, tags=["api-keys"])
async def revoke_api_key(key_id: KeyId, request: Request, caller: AdmittedCallerDep) -> Response:
    return await forward(request, "auth", f"/api/v1/api-keys/{key_id}")


@router.api_route("/api/v1/admin/users/{user_id}/{setting}", methods=["PUT"], tags=["admin"])
async def admin_update(
    user_id: KeyId,
    setting: Literal["tier", "limits", "budget"],
    request: Request,
    caller: AdmittedCallerDep,
) -> Response:
    """Admins only: a user's tier (`{"tier": "paid"}`), custom limits or budget
    (`{"amount_usd": 50, "period": "month"}`, `null` to remove it)."""
    return await forward(request, "auth", f"/api/v1/admin/users/{user_id}/{setting}")


@router.get("/api/v1/admin/users/{user_id}", tags=["admin"])
async def admin_view(user_id: KeyId, request: Request, caller: AdmittedCallerDep) -> Response:
    return await forward(request, "auth", f"/api/v1/admin/users/{user_id}")


@router.post("/api/v1/keys", status_code=201, response_model=KeyView, tags=["keys"])
async def add_key(body: AddKeyRequest, request: Request, caller: AdmittedCallerDep) -> Response:
    """Store your own provider key (encrypted at rest); it is used for your requests."""
    return await forward(request, "keyvault", "/api/v1/keys")


@router.get("/api/v1/keys", response_model=KeyList, tags=["keys"])
async def list_keys(request: Request, caller: AdmittedCallerDep) -> Response:
    """Your provider keys, masked."""
    return await forward(request, "keyvault", "/api/v1/keys")


@router.delete("/api/v1/keys/{key_id}", status_code=204, tags=["keys"])
async def delete_key(key_id: KeyId, request: Request, caller: AdmittedCallerDep) -> Response:
    return await forward(request, "keyvault", f"/api/v1/keys/{key_id}")


@router.get("/api/v1/usage", tags=["usage"])
async def usage(request: Request, caller: AdmittedCallerDep) -> Response:
    """Your requests, tokens and spend over `from`..`to` (ISO dates, UTC), grouped by
    `group_by` (any of day, provider, model, key; default provider,model), as JSON or
    `format=csv`. Admins: `user_id=usr_…` for one user, `scope=all` for the whole gateway (and
    `group_by=user`)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return await forward(request, "audit", f"/api/v1/usage{query}")
