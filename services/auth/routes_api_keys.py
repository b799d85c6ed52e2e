"""Gateway API keys: create (the key is shown once), list, revoke; and the edge's resolve."""

import logging
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request, Response

from services.auth.api_keys import SHOWN_PREFIX_CHARS, ApiKey, NewKey, hash_key, new_key
from services.auth.deps import ComponentsDep, CurrentUserDep
from services.auth.limits import Limits
from services.auth.schemas_keys import (
    ApiKeyList,
    ApiKeyView,
    CreatedApiKey,
    CreateKeyRequest,
    ResolvedKeyView,
    ResolveRequest,
)
from shared.errors import NotFoundError
from shared.service_auth import check_service_token
from shared.settings import parse_duration

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/api-keys")


def _expiry(body: CreateKeyRequest) -> datetime | None:
    if body.expires_in is not None:
        return datetime.now(UTC) + timedelta(seconds=parse_duration(body.expires_in))
    return body.expires_at


@router.post("", status_code=201, response_model=CreatedApiKey)
async def create_key(
    body: CreateKeyRequest, user: CurrentUserDep, auth: ComponentsDep
) -> CreatedApiKey:
    key = new_key()
    new = NewKey(
        user_id=user.id,
        name=body.name,
        allowed_providers=body.allowed_providers,
        allowed_models=body.allowed_models,
        limits=body.limits.to_limits() if body.limits else Limits(),
        expires_at=_expiry(body),
        budget=body.budget,
    )
    stored = await auth.api_keys.create(new, hash_key(key), key[:SHOWN_PREFIX_CHARS])
    await auth.limits.publish_key(stored.id, stored.user_id, stored.limits, stored.budget)
    log.info("user %s created api key %s", user.id, stored.id)
    (view,) = await _views(auth, [stored])
    return CreatedApiKey(**view.model_dump(), key=key)


@router.get("", response_model=ApiKeyList)
async def list_keys(user: CurrentUserDep, auth: ComponentsDep) -> ApiKeyList:
    return ApiKeyList(api_keys=await _views(auth, await auth.api_keys.list_for(user.id)))


async def _views(auth: ComponentsDep, keys: list[ApiKey]) -> list[ApiKeyView]:
    """Each key as its owner sees it, its budget with the current period's spend."""
    states = await auth.limits.budget_states([("key", k.id, k.budget, k.user_id) for k in keys])
    return [ApiKeyView.of(k, state) for k, state in zip(keys, states, strict=True)]


@router.delete("/{key_id}", status_code=204)
async def revoke_key(key_id: str, user: CurrentUserDep, auth: ComponentsDep) -> Response:
    revoked = await auth.api_keys.revoke(user.id, key_id)
    if revoked is None:  # unknown, already revoked, or someone else's: all look the same
        raise NotFoundError("API key not found")
    await auth.key_cache.forget([revoked.key_hash])
    await auth.limits.forget_key(revoked.id, revoked.user_id)
    log.info("user %s revoked api key %s", user.id, revoked.id)
    return Response(status_code=204)


async def _service_only(request: Request, auth: ComponentsDep) -> None:
    check_service_token(request.headers.get("authorization"), auth.service_token)


internal = APIRouter(prefix="/internal/v1", dependencies=[Depends(_service_only)])


@internal.post("/api-keys/resolve", response_model=ResolvedKeyView)
async def resolve_key(body: ResolveRequest, auth: ComponentsDep) -> ResolvedKeyView:
    resolved = await auth.api_keys.resolve(body.key_hash)
    if resolved is None:
        raise NotFoundError("API key not found")
    return ResolvedKeyView.of(resolved)
