"""`POST /api/v1/keys/validate`: does a provider key work? Asked of the provider's workers.

Workers are the only egress and jobs never carry keys: a key given in the body is first
stored by the keyvault as a short-lived sealed copy, and the job names that copy.
"""

import httpx
from fastapi import APIRouter, Request

from services.edge.deps import AdmittedCallerDep, components
from shared.errors import NotFoundError, ServiceUnavailable
from shared.http import trace_id, traceparent
from shared.key_schemas import ValidateKeyRequest, ValidateKeyResponse, ValidationDetails
from shared.messages import KeyCheckJob, KeyCheckResult

router = APIRouter()


async def keyvault(
    request: Request,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    json: dict[str, str] | None = None,
) -> httpx.Response:
    internal = components(request).internal
    headers = {
        "authorization": f"Bearer {internal.token}",
        "x-request-id": trace_id(request),
        "x-service-name": "edge",
    }
    try:
        response = await internal.keyvault.request(
            method, path, headers=headers, params=params, json=json
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailable("The keyvault service is unavailable") from exc
    if response.status_code == 404:
        raise NotFoundError("Key not found")
    if response.status_code >= 400:
        raise ServiceUnavailable("The keyvault could not handle the key")
    return response


async def key_to_check(request: Request, body: ValidateKeyRequest, user_id: str) -> tuple[str, str]:
    """(key id, provider) of the key to validate: the caller's stored key or a fresh copy."""
    if body.id is not None:
        stored = await keyvault(
            request, "GET", f"/internal/v1/keys/{body.id}", params={"user_id": user_id}
        )
        return body.id, str(stored.json()["provider"])
    assert body.provider is not None and body.api_key is not None
    stash = {"user_id": user_id, "provider": body.provider, "apiKey": body.api_key}
    copy = await keyvault(request, "POST", "/internal/v1/keys/stash", json=stash)
    return str(copy.json()["id"]), body.provider


@router.post(
    "/api/v1/keys/validate",
    response_model=ValidateKeyResponse,
    response_model_exclude_none=True,
    tags=["keys"],
)
async def validate_key(
    body: ValidateKeyRequest, request: Request, caller: AdmittedCallerDep
) -> ValidateKeyResponse:
    key_id, provider = await key_to_check(request, body, caller.user_id)
    queue = components(request).jobs
    fields = queue.job_fields(
        user_id=caller.user_id, trace=trace_id(request), traceparent=traceparent(request)
    )
    result = await queue.call(KeyCheckJob(**fields, key_id=key_id), provider)
    assert isinstance(result, KeyCheckResult)
    details = ValidationDetails(hasAccess=result.valid, models=result.models, reason=result.reason)
    return ValidateKeyResponse(valid=result.valid, provider=provider, details=details)
