"""Gateway API keys (create, list, revoke) and the user's own provider keys (add, validate,
delete). A new API key's secret is in the one answer to its creation, never stored here, in a
cookie or in the browser; provider keys are only ever shown masked."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from services.console.edge import EdgeError, edge_of
from services.console.forms import (
    BUDGET_PERIODS,
    FormError,
    api_key_body,
    kept_values,
    provider_key_body,
)
from services.console.pages import SessionDep, redirect, render
from shared.key_schemas import KEY_ID_PATTERN
from shared.providers import PROVIDERS

router = APIRouter()

KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN)]
EXPIRIES = (
    ("", "Never"),
    ("1d", "1 day"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
)
WINDOWS = ("1m", "15m", "1h", "1d")


async def api_keys_page(
    request: Request,
    token: str,
    status_code: int = 200,
    *,
    error: str | None = None,
    created: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    edge = edge_of(request)
    listing, budgets = await asyncio.gather(
        edge.json(request, "GET", "/api/v1/api-keys", token),
        edge.json(request, "GET", "/api/v1/budget", token),
    )
    return render(
        request,
        "api_keys.html",
        status_code,
        error=error,
        keys=listing["api_keys"],
        created=created,
        form=form or {},
        providers=PROVIDERS,
        expiries=EXPIRIES,
        windows=WINDOWS,
        periods=BUDGET_PERIODS,
        own_budget=budgets["user"],
    )


@router.get("/api-keys")
async def api_keys(request: Request, session: SessionDep) -> Response:
    return await api_keys_page(request, session.token)


@router.post("/api-keys")
async def create_api_key(request: Request, session: SessionDep) -> Response:
    form = await request.form()
    values = kept_values(form)
    try:
        body = api_key_body(form)
        created = await edge_of(request).json(
            request, "POST", "/api/v1/api-keys", session.token, json=body
        )
    except (FormError, EdgeError) as exc:
        status = exc.status if isinstance(exc, EdgeError) else 400
        return await api_keys_page(request, session.token, status, error=str(exc), form=values)
    return await api_keys_page(request, session.token, 201, created=created)


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(key_id: KeyId, request: Request, session: SessionDep) -> Response:
    await edge_of(request).call(request, "DELETE", f"/api/v1/api-keys/{key_id}", session.token)
    return redirect("/api-keys", "key-revoked")


async def provider_keys_page(
    request: Request,
    token: str,
    status_code: int = 200,
    *,
    error: str | None = None,
    validation: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    listing = await edge_of(request).json(request, "GET", "/api/v1/keys", token)
    return render(
        request,
        "provider_keys.html",
        status_code,
        error=error,
        keys=listing["keys"],
        providers=PROVIDERS,
        validation=validation,
        form=form or {},
    )


@router.get("/provider-keys")
async def provider_keys(request: Request, session: SessionDep) -> Response:
    return await provider_keys_page(request, session.token)


@router.post("/provider-keys")
async def add_provider_key(request: Request, session: SessionDep) -> Response:
    """Stores the key, or with `action=validate` only asks the provider whether it works."""
    form = await request.form()
    kept = {"provider": form.get("provider"), "name": form.get("name")}  # never the key
    edge = edge_of(request)
    try:
        body = provider_key_body(form)
        if form.get("action") == "validate":
            del body["name"]
            found = await edge.json(
                request, "POST", "/api/v1/keys/validate", session.token, json=body
            )
            return await provider_keys_page(request, session.token, validation=found, form=kept)
        await edge.call(request, "POST", "/api/v1/keys", session.token, json=body)
    except (FormError, EdgeError) as exc:
        status = exc.status if isinstance(exc, EdgeError) else 400
        return await provider_keys_page(request, session.token, status, error=str(exc), form=kept)
    return redirect("/provider-keys", "provider-key-added")


@router.post("/provider-keys/{key_id}/validate")
async def validate_provider_key(key_id: KeyId, request: Request, session: SessionDep) -> Response:
    try:
        found = await edge_of(request).json(
            request, "POST", "/api/v1/keys/validate", session.token, json={"id": key_id}
        )
    except EdgeError as exc:
        return await provider_keys_page(request, session.token, exc.status, error=exc.message)
    return await provider_keys_page(request, session.token, validation={**found, "id": key_id})


@router.post("/provider-keys/{key_id}/delete")
async def delete_provider_key(key_id: KeyId, request: Request, session: SessionDep) -> Response:
    await edge_of(request).call(request, "DELETE", f"/api/v1/keys/{key_id}", session.token)
    return redirect("/provider-keys", "provider-key-deleted")
