"""Public routes (reached through the edge, user tokens) and internal ones (service token)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.keyvault.repository import KeyRow
from services.keyvault.vault import Vault
from shared.errors import AuthenticationError
from shared.http import trace_id
from shared.key_schemas import (
    AddKeyRequest,
    KeyList,
    KeyView,
    RevealedKey,
    StashRequest,
    StashResponse,
)
from shared.service_auth import check_service_token
from shared.tokens import TokenVerifier

public = APIRouter()
internal = APIRouter(prefix="/internal/v1")


def _vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def caller(request: Request) -> str:
    """The user id of a bearer token verified with the auth service's public key."""
    verifier: TokenVerifier = request.app.state.verifier
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Missing bearer token")
    return verifier.verify(token.strip()).sub


def _service_name(request: Request) -> str:
    return request.headers.get("x-service-name", "service")[:32]


def service(request: Request) -> str:
    """The calling service's name, after checking it holds the internal token."""
    check_service_token(request.headers.get("authorization"), request.app.state.internal_token)
    return _service_name(request)


def decrypting_service(request: Request) -> str:
    """The calling service's name, after checking it holds the decrypt token (workers)."""
    check_service_token(request.headers.get("authorization"), request.app.state.decrypt_token)
    return _service_name(request)


UserId = Annotated[str, Depends(caller)]
ServiceName = Annotated[str, Depends(service)]
DecryptingService = Annotated[str, Depends(decrypting_service)]
VaultDep = Annotated[Vault, Depends(_vault)]


def view(row: KeyRow) -> KeyView:
    return KeyView(
        id=row.id,
        provider=row.provider,
        name=row.name,
        maskedKey=row.masked,
        createdAt=row.created_at,
    )


@public.post("/api/v1/keys", status_code=201, response_model_exclude_none=True)
async def add_key(body: AddKeyRequest, user_id: UserId, vault: VaultDep) -> KeyView:
    name = body.name or f"{body.provider} key"
    row = await vault.add(user_id, body.provider, name, body.api_key)
    return view(row).model_copy(update={"createdAt": None})


@public.get("/api/v1/keys")
async def list_keys(user_id: UserId, vault: VaultDep) -> KeyList:
    return KeyList(keys=[view(row) for row in await vault.list(user_id)])


@public.delete("/api/v1/keys/{key_id}", status_code=204)
async def delete_key(key_id: str, user_id: UserId, vault: VaultDep) -> Response:
    await vault.delete(key_id, user_id)
    return Response(status_code=204)


@internal.get("/keys/{key_id}", response_model_exclude_none=True)
async def key_metadata(
    key_id: str, user_id: Annotated[str, Query()], _: ServiceName, vault: VaultDep
) -> KeyView:
    return view(await vault.get(key_id, user_id))


@internal.get("/keys/{key_id}/secret")
async def reveal_key(
    key_id: str,
    user_id: Annotated[str, Query()],
    actor: DecryptingService,
    request: Request,
    vault: VaultDep,
) -> RevealedKey:
    row, plaintext = await vault.reveal(key_id, user_id, actor=actor, trace_id=trace_id(request))
    return RevealedKey(id=row.id, provider=row.provider, apiKey=plaintext)


@internal.post("/keys/stash", status_code=201)
async def stash_key(body: StashRequest, _: ServiceName, vault: VaultDep) -> StashResponse:
    return StashResponse(id=await vault.stash(body.user_id, body.provider, body.api_key))
