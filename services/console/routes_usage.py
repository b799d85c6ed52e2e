"""Usage over a chosen period: charts, a table and a CSV download, from `/api/v1/usage`."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.edge import EdgeError, edge_of
from services.console.pages import SessionDep, render
from services.console.usage import GROUPINGS, csv_of, report_of

router = APIRouter()

_DEFAULT_DAYS = 30


def period(request: Request) -> tuple[str, str, list[str]]:
    """The chosen `from`, `to` (ISO dates; the last 30 days by default) and groupings."""
    today = datetime.now(UTC).date()

    def day(name: str, default: date) -> str:
        try:
            return date.fromisoformat(request.query_params.get(name, "")).isoformat()
        except ValueError:
            return default.isoformat()

    groups = [g for g in request.query_params.getlist("group_by") if g in GROUPINGS]
    return day("from", today - timedelta(days=_DEFAULT_DAYS)), day("to", today), groups


def params_of(since: str, until: str, groups: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"from": since, "to": until}
    if groups:
        params["group_by"] = ",".join(groups)
    return params


@router.get("/usage")
async def usage(request: Request, session: SessionDep) -> Response:
    since, until, groups = period(request)
    try:
        body = await edge_of(request).json(
            request, "GET", "/api/v1/usage", session.token, params=params_of(since, until, groups)
        )
    except EdgeError as exc:
        if exc.status == 401:
            raise
        return render(
            request,
            "usage.html",
            exc.status,
            error=exc.message,
            report=None,
            since=since,
            until=until,
            groups=groups,
            groupings=GROUPINGS,
        )
    return render(
        request,
        "usage.html",
        report=report_of(body),
        since=since,
        until=until,
        groups=groups or list(body.get("group_by") or []),
        groupings=GROUPINGS,
    )


@router.get("/usage.csv")
async def usage_csv(request: Request, session: SessionDep) -> Response:
    since, until, groups = period(request)
    body = await edge_of(request).json(
        request, "GET", "/api/v1/usage", session.token, params=params_of(since, until, groups)
    )
    filename = f"usage-{since}-{until}.csv"
    return Response(
        csv_of(report_of(body)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
