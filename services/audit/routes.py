"""`GET /api/v1/usage` (reached through the edge, user tokens) and the health checks."""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import httpx
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from services.audit.repository import AuditRepository
from services.audit.usage import UsageQuery, as_csv, parse_group_by, totals
from shared.errors import (
    AuthenticationError,
    AuthorizationError,
    InvalidRequest,
    NotFoundError,
    ServiceUnavailable,
)
from shared.http import trace_id
from shared.tokens import TokenVerifier

router = APIRouter()

_USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def caller(request: Request) -> str:
    """The user id of a bearer token verified with the auth service's public key."""
    verifier: TokenVerifier = request.app.state.verifier
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Missing bearer token")
    return verifier.verify(token.strip()).sub


def _repo(request: Request) -> AuditRepository:
    repo: AuditRepository = request.app.state.repo
    return repo


def parse_bound(value: str | None, name: str, *, end: bool) -> datetime | None:
    """An ISO date (a UTC calendar day; as `to` it includes that whole day) or date-time."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"'{name}' must be an ISO date or date-time", details={name: value[:64]}
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def check_admin(request: Request, user_id: str) -> None:
    """The auth service decides (from its database, not the token's claim) whether the caller
    is an admin, by answering the caller's own request for `user_id`'s admin view."""
    client: httpx.AsyncClient = request.app.state.auth
    headers = {
        "authorization": request.headers.get("authorization", ""),
        "x-request-id": trace_id(request),
    }
    try:
        answer = await client.get(f"/api/v1/admin/users/{user_id}", headers=headers)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable("The auth service is unavailable") from exc
    if answer.status_code == 404:
        raise NotFoundError("User not found")
    if answer.status_code in (401, 403):
        raise AuthorizationError("Admin role required")
    if answer.status_code != 200:
        raise ServiceUnavailable("The auth service could not check the caller's role")


UserId = Annotated[str, Depends(caller)]
RepoDep = Annotated[AuditRepository, Depends(_repo)]


@router.get("/api/v1/usage")
async def usage(
    request: Request,
    caller_id: UserId,
    repo: RepoDep,
    since: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=64)] = None,
    group_by: Annotated[str | None, Query(max_length=100)] = None,
    format_: Annotated[Literal["json", "csv"] | None, Query(alias="format")] = None,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    scope: Literal["all"] | None = None,
) -> Response:
    if user_id is not None and (scope is not None or not _USER_ID.match(user_id)):
        raise InvalidRequest("Give user_id (a user id) or scope=all, not both")
    if user_id is not None and user_id != caller_id:
        await check_admin(request, user_id)
    if scope == "all":
        await check_admin(request, caller_id)
    query = UsageQuery(
        group_by=parse_group_by(group_by, whole_gateway=scope == "all"),
        since=parse_bound(since, "from", end=False),
        until=parse_bound(until, "to", end=True),
        user_id=None if scope == "all" else (user_id or caller_id),
    )
    if query.since and query.until and query.since >= query.until:
        raise InvalidRequest("'from' must be before 'to'", details={"from": since, "to": until})
    rows = await query.rows(repo.pool)
    wants_csv = format_ == "csv" or (
        format_ is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        name = _FILENAME_UNSAFE.sub("", f"usage-{since or 'start'}-{until or 'now'}") + ".csv"
        return Response(
            as_csv(rows, query.group_by),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    body = {
        "usage": rows,
        "totals": totals(rows),
        "from": since,
        "to": until,
        "group_by": list(query.group_by),
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/health/live", include_in_schema=False)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", include_in_schema=False)
async def ready(repo: RepoDep) -> dict[str, str]:
    try:
        await repo.ping()
    except Exception as exc:
        raise ServiceUnavailable("PostgreSQL is unavailable") from exc
    return {"status": "ok"}
