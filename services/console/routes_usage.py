"""Usage and spend over a chosen period: charts, a table and the edge's own CSV, from
`/api/v1/usage`; with the budget it counts against. Admins also see one user's usage
(`user_id=`) or the whole gateway's (`scope=all`): the edge, not this page, checks they may."""

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.edge import EdgeError, edge_of
from services.console.forms import FormError
from services.console.pages import SessionDep, render
from services.console.session import Session
from services.console.usage import (
    GROUPINGS,
    WHOLE_GATEWAY_DEFAULT,
    WHOLE_GATEWAY_GROUPINGS,
    key_labeller,
    report_of,
)
from shared.key_schemas import KEY_ID_PATTERN

router = APIRouter()

_DEFAULT_DAYS = 30
_USER_ID = re.compile(KEY_ID_PATTERN)


@dataclass(frozen=True)
class UsageQuery:
    """What the page shows: whose usage, over which days, grouped how."""

    since: date
    until: date
    groups: list[str]
    user_id: str | None = None  # another user's usage (admins)
    everyone: bool = False  # the whole gateway's (admins)

    @property
    def whose(self) -> str:
        return "all" if self.everyone else "user" if self.user_id else "me"

    def edge_params(self) -> dict[str, str]:
        params = {
            "from": self.since.isoformat(),
            "to": self.until.isoformat(),
            "group_by": ",".join(self.groups),
        }
        if self.user_id:
            params["user_id"] = self.user_id
        if self.everyone:
            params["scope"] = "all"
        return params

    def link(self, since: date | None = None, until: date | None = None) -> str:
        """This page's query string (for another period, when given)."""
        params: dict[str, Any] = {
            "from": (since or self.since).isoformat(),
            "to": (until or self.until).isoformat(),
            "group_by": self.groups,
            "whose": self.whose,
        }
        if self.user_id:
            params["user_id"] = self.user_id
        return urlencode(params, doseq=True)


def today() -> date:
    return datetime.now(UTC).date()


def query_of(request: Request) -> UsageQuery:
    """The page's query from its URL; a bad user id is a `FormError`."""
    found = request.query_params
    now = today()

    def day(name: str, default: date) -> date:
        try:
            return date.fromisoformat(found.get(name, ""))
        except ValueError:
            return default

    since, until = day("from", now - timedelta(days=_DEFAULT_DAYS)), day("to", now)
    whose = found.get("whose") or ("user" if found.get("user_id") else "me")
    user_id = found.get("user_id", "").strip() if whose == "user" else None
    if user_id is not None and not _USER_ID.match(user_id):
        raise FormError("A user id is up to 64 letters, digits, '_' and '-' (usr_…)")
    everyone = whose == "all"
    allowed = WHOLE_GATEWAY_GROUPINGS if everyone else GROUPINGS
    default = WHOLE_GATEWAY_DEFAULT if everyone else GROUPINGS
    # Another view (whose) than the page showed starts from that view's own grouping.
    chosen = found.getlist("group_by") if found.get("shown", whose) == whose else []
    groups = [g for g in allowed if g in chosen] or list(default)
    return UsageQuery(since, until, groups, user_id, everyone)


def presets(query: UsageQuery) -> list[tuple[str, str]]:
    """Common periods as links: (label, query string)."""
    now = today()
    first = now.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return [
        ("Today", query.link(now, now)),
        ("Last 7 days", query.link(now - timedelta(days=6), now)),
        ("Last 30 days", query.link(now - timedelta(days=29), now)),
        ("This month", query.link(first, now)),
        ("Last month", query.link(last_month_end.replace(day=1), last_month_end)),
    ]


async def _gather(request: Request, token: str, query: UsageQuery) -> dict[str, Any]:
    """The usage report and what goes with it: the budget it counts against (yours, or the
    user's an admin looks at) and your keys' names."""
    edge = edge_of(request)
    calls = {"usage": edge.json(request, "GET", "/api/v1/usage", token, params=query.edge_params())}
    if query.user_id:
        path = f"/api/v1/admin/users/{query.user_id}"
        calls["user"] = edge.json(request, "GET", path, token)
    elif not query.everyone:
        calls["budgets"] = edge.json(request, "GET", "/api/v1/budget", token)
        if "key" in query.groups:
            calls["keys"] = edge.json(request, "GET", "/api/v1/api-keys", token)
    answers = await asyncio.gather(*calls.values())
    return dict(zip(calls, answers, strict=True))


def page_context(query: UsageQuery, session: Session) -> dict[str, Any]:
    return {
        "query": query,
        "presets": presets(query),
        "groupings": WHOLE_GATEWAY_GROUPINGS if query.everyone else GROUPINGS,
        "is_admin": session.is_admin,
        "report": None,
    }


@router.get("/usage")
async def usage(request: Request, session: SessionDep) -> Response:
    try:
        query = query_of(request)
    except FormError as exc:
        query = UsageQuery(today() - timedelta(days=_DEFAULT_DAYS), today(), list(GROUPINGS))
        return render(request, "usage.html", 400, error=str(exc), **page_context(query, session))
    context = page_context(query, session)
    try:
        found = await _gather(request, session.token, query)
    except EdgeError as exc:
        if exc.status == 401:
            raise
        return render(request, "usage.html", exc.status, error=exc.message, **context)
    keys = found.get("keys")
    label = key_labeller({k["id"]: k["name"] for k in keys["api_keys"]} if keys else None)
    user = found.get("user")
    context |= {
        "report": report_of(found["usage"], (query.since, query.until), label),
        "key_label": label,
        "user": user,
        "budget": user["budget"] if user else (found.get("budgets") or {}).get("user"),
    }
    return render(request, "usage.html", **context)


@router.get("/usage.csv")
async def usage_csv(request: Request, session: SessionDep) -> Response:
    """The edge's own CSV of the same report, passed through with its file name."""
    try:
        query = query_of(request)
    except FormError as exc:
        raise EdgeError(400, str(exc), "validation_error") from None
    params = query.edge_params() | {"format": "csv"}
    answer = await edge_of(request).call(
        request, "GET", "/api/v1/usage", session.token, params=params
    )
    name = f"usage-{query.since}-{query.until}.csv"
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type", "text/csv; charset=utf-8"),
        headers={
            "content-disposition": answer.headers.get(
                "content-disposition", f'attachment; filename="{name}"'
            )
        },
    )
