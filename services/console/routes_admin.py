"""Admins' pages: users (find, tier, limits, spend budget), providers (queues, workers,
breakers, recent errors and latency) and dead letters (retry, drop). Each calls the edge's admin
routes with the admin's own token: the edge, not this menu, decides who is an admin."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from services.console.edge import EdgeError, edge_of
from services.console.forms import BUDGET_PERIODS, FormError, admin_limits_body, budget_of
from services.console.pages import AdminSessionDep, redirect, render
from shared.key_schemas import KEY_ID_PATTERN
from shared.providers import PROVIDERS

router = APIRouter(prefix="/admin")

UserId = Annotated[str, Path(pattern=KEY_ID_PATTERN)]
EntryId = Annotated[str, Path(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$")]
WINDOWS = ("1m", "15m", "1h", "1d")


@router.get("/users")
async def users(
    request: Request,
    session: AdminSessionDep,
    q: Annotated[str, Query(max_length=254)] = "",
) -> Response:
    found = None
    if q.strip():
        answer = await edge_of(request).json(
            request, "GET", "/api/v1/admin/users", session.token, params={"q": q.strip()}
        )
        found = answer["users"]
    return render(request, "admin_users.html", q=q, found=found)


async def user_page(
    request: Request,
    token: str,
    user_id: str,
    status_code: int = 200,
    error: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    user = await edge_of(request).json(request, "GET", f"/api/v1/admin/users/{user_id}", token)
    return render(
        request,
        "admin_user.html",
        status_code,
        error=error,
        user=user,
        windows=WINDOWS,
        periods=BUDGET_PERIODS,
        form=form or {},
    )


@router.get("/users/{user_id}")
async def user(user_id: UserId, request: Request, session: AdminSessionDep) -> Response:
    return await user_page(request, session.token, user_id)


@router.post("/users/{user_id}/{setting}")
async def update_user(
    user_id: UserId, setting: str, request: Request, session: AdminSessionDep
) -> Response:
    form = await request.form()
    body: dict[str, Any] | None
    notice = "user-updated"
    try:
        if setting == "tier":
            body = {"tier": str(form.get("tier", ""))[:16]}
        elif setting == "limits":
            body = admin_limits_body(form)
        elif setting == "budget":
            removing = form.get("action") == "remove"
            body = None if removing else budget_of(form)
            if body is None and not removing:
                raise FormError("Give the budget's amount in USD")
            notice = "budget-removed" if removing else "budget-set"
        else:
            raise FormError("Unknown setting")
        await edge_of(request).call(
            request, "PUT", f"/api/v1/admin/users/{user_id}/{setting}", session.token, json=body
        )
    except (FormError, EdgeError) as exc:
        status = exc.status if isinstance(exc, EdgeError) else 400
        kept = {name: str(form.get(name, ""))[:32] for name in ("amount_usd", "period")}
        return await user_page(request, session.token, user_id, status, str(exc), kept)
    return redirect(f"/admin/users/{user_id}", notice)


def clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


async def providers_view(request: Request, token: str, minutes: int) -> dict[str, Any]:
    found: dict[str, Any] = await edge_of(request).json(
        request, "GET", "/api/v1/admin/providers", token, params={"minutes": minutes}
    )
    return found


@router.get("/providers")
async def providers(
    request: Request,
    session: AdminSessionDep,
    minutes: Annotated[int, Query(ge=1, le=60)] = 5,
) -> Response:
    view = await providers_view(request, session.token, minutes)
    return render(request, "admin_providers.html", view=view, minutes=minutes, now=clock())


@router.get("/providers/table")
async def providers_table(
    request: Request,
    session: AdminSessionDep,
    minutes: Annotated[int, Query(ge=1, le=60)] = 5,
) -> Response:
    """The providers table alone, for the page's script to refresh it in place."""
    view = await providers_view(request, session.token, minutes)
    return render(request, "providers_table.html", view=view, minutes=minutes, now=clock())


async def dead_letters_page(
    request: Request,
    token: str,
    provider: str,
    status_code: int = 200,
    *,
    error: str | None = None,
    retried: dict[str, Any] | None = None,
) -> Response:
    params = {"provider": provider} if provider else {}
    answer = await edge_of(request).json(
        request, "GET", "/api/v1/admin/dead-letters", token, params=params
    )
    return render(
        request,
        "admin_dead_letters.html",
        status_code,
        error=error,
        letters=answer["dead_letters"],
        provider=provider,
        providers=PROVIDERS,
        retried=retried,
    )


def known(provider: str) -> str:
    if provider not in PROVIDERS:
        raise EdgeError(400, "Unknown provider", "validation_error")
    return provider


@router.get("/dead-letters")
async def dead_letters(
    request: Request,
    session: AdminSessionDep,
    provider: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    return await dead_letters_page(
        request, session.token, provider if provider in PROVIDERS else ""
    )


@router.post("/dead-letters/{provider}/{entry_id}/retry")
async def retry(
    provider: str, entry_id: EntryId, request: Request, session: AdminSessionDep
) -> Response:
    path = f"/api/v1/admin/dead-letters/{known(provider)}/{entry_id}/retry"
    try:
        result = await edge_of(request).json(request, "POST", path, session.token)
    except EdgeError as exc:
        if exc.status == 401:
            raise
        return await dead_letters_page(request, session.token, "", exc.status, error=exc.message)
    return await dead_letters_page(request, session.token, "", retried=result)


@router.post("/dead-letters/{provider}/{entry_id}/drop")
async def drop(
    provider: str, entry_id: EntryId, request: Request, session: AdminSessionDep
) -> Response:
    path = f"/api/v1/admin/dead-letters/{known(provider)}/{entry_id}"
    await edge_of(request).call(request, "DELETE", path, session.token)
    return redirect("/admin/dead-letters", "dead-letter-dropped")
