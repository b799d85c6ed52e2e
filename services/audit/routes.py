"""`GET /api/v1/usage` (reached through the edge, user tokens) and the health checks."""

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from services.audit.repository import AuditRepository
from shared.errors import AuthenticationError, InvalidRequest, ServiceUnavailable
from shared.tokens import TokenVerifier

router = APIRouter()


class UsageItem(BaseModel):
    provider: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageReport(BaseModel):
    usage: list[UsageItem]
    from_: str | None = None
    to: str | None = None

    def body(self) -> dict[str, object]:
        return {"usage": [u.model_dump() for u in self.usage], "from": self.from_, "to": self.to}


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
    """An ISO date or date-time; a plain date as `to` includes that whole day."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day).astimezone()
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"'{name}' must be an ISO date or date-time", details={name: value}
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


UserId = Annotated[str, Depends(caller)]
RepoDep = Annotated[AuditRepository, Depends(_repo)]


@router.get("/api/v1/usage")
async def usage(
    user_id: UserId,
    repo: RepoDep,
    since: Annotated[str | None, Query(alias="from")] = None,
    until: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, object]:
    lines = await repo.usage(
        user_id, parse_bound(since, "from", end=False), parse_bound(until, "to", end=True)
    )
    items = [UsageItem(**line.__dict__) for line in lines]
    return UsageReport(usage=items, from_=since, to=until).body()


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
