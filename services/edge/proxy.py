"""Routes the edge forwards to the internal service that owns them, after its own checks.

`/api/v1/auth/*` goes to the auth service as is (it is how callers get a token); the key
routes go to the keyvault once the caller is authenticated here.
"""

from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, Path, Request, Response

from services.edge.auth import Principal
from services.edge.limits import gate_of, principal
from shared.errors import ServiceUnavailable
from shared.http import trace_id
from shared.key_schemas import KEY_ID_PATTERN, AddKeyRequest, KeyList, KeyView

router = APIRouter()

_FORWARDED_HEADERS = ("authorization", "content-type", "user-agent")

CallerDep = Annotated[Principal, Depends(principal)]
KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN)]


async def forward(request: Request, service: str, path: str) -> Response:
    """The internal service's answer to the same request (status, body and content type)."""
    client: httpx.AsyncClient = request.app.state.internal[service]
    headers = {h: v for h in _FORWARDED_HEADERS if (v := request.headers.get(h)) is not None}
    headers["x-request-id"] = trace_id(request)
    if request.client is not None:
        headers["x-forwarded-for"] = request.client.host
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
    )


@router.post("/api/v1/auth/{path:path}", include_in_schema=False)
async def auth(path: str, request: Request) -> Response:
    await gate_of(request).admit_client(request)
    return await forward(request, "auth", f"/api/v1/auth/{path}")


@router.api_route("/api/v1/api-keys", methods=["GET", "POST"], tags=["api-keys"])
async def api_keys(request: Request, caller: CallerDep) -> Response:
    """Create (`POST`, the key is shown once) or list (`GET`) your gateway API keys."""
    return await forward(request, "auth", "/api/v1/api-keys")


@router.delete("/api/v1/api-keys/{key_id}", status_code=204, tags=["api-keys"])
async def revoke_api_key(key_id: KeyId, request: Request, caller: CallerDep) -> Response:
    return await forward(request, "auth", f"/api/v1/api-keys/{key_id}")


@router.api_route("/api/v1/admin/users/{user_id}/{setting}", methods=["PUT"], tags=["admin"])
async def admin_update(
    user_id: KeyId, setting: Literal["tier", "limits"], request: Request, caller: CallerDep
) -> Response:
    """Admins only: a user's tier (`{"tier": "paid"}`) or custom limits."""
    return await forward(request, "auth", f"/api/v1/admin/users/{user_id}/{setting}")


@router.get("/api/v1/admin/users/{user_id}", tags=["admin"])
async def admin_view(user_id: KeyId, request: Request, caller: CallerDep) -> Response:
    return await forward(request, "auth", f"/api/v1/admin/users/{user_id}")


@router.post("/api/v1/keys", status_code=201, response_model=KeyView, tags=["keys"])
async def add_key(body: AddKeyRequest, request: Request, caller: CallerDep) -> Response:
    """Store your own provider key (encrypted at rest); it is used for your requests."""
    return await forward(request, "keyvault", "/api/v1/keys")


@router.get("/api/v1/keys", response_model=KeyList, tags=["keys"])
async def list_keys(request: Request, caller: CallerDep) -> Response:
    """Your provider keys, masked."""
    return await forward(request, "keyvault", "/api/v1/keys")


@router.delete("/api/v1/keys/{key_id}", status_code=204, tags=["keys"])
async def delete_key(key_id: KeyId, request: Request, caller: CallerDep) -> Response:
    return await forward(request, "keyvault", f"/api/v1/keys/{key_id}")


@router.get("/api/v1/usage", tags=["usage"])
async def usage(request: Request, caller: CallerDep) -> Response:
    """Your requests and tokens by provider and model (optional `from`, `to`: ISO dates)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return await forward(request, "audit", f"/api/v1/usage{query}")
