"""The usage report as the page shows it, from one answer of the edge's `/api/v1/usage`: its
grouped rows as the table (the same rows as its CSV), its totals, and charts of spend and tokens
by each grouping the rows have (day, provider and model, API key, user), summed from those rows.
"""

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

# Every column a report may have, in the order shown: (field, heading, is a group).
COLUMNS = (
    ("day", "Day", True),
    ("user", "User", True),
    ("provider", "Provider", True),
    ("model", "Model", True),
    ("key", "API key", True),
    ("cost_usd", "Spend (USD)", False),
    ("requests", "Requests", False),
    ("prompt_tokens", "Prompt tokens", False),
    ("completion_tokens", "Completion tokens", False),
    ("total_tokens", "Total tokens", False),
    ("cached_tokens", "Cached tokens", False),
    ("unpriced_requests", "Unpriced requests", False),
)
# What one user's report and the whole gateway's may be grouped by, and are by default.
GROUPINGS = ("day", "provider", "model", "key")
WHOLE_GATEWAY_GROUPINGS = ("day", "provider", "model", "key", "user")
WHOLE_GATEWAY_DEFAULT = ("day", "provider", "model", "user")
# Rows shown in the page; the CSV download has every row.
MAX_TABLE_ROWS = 1000
_MAX_BARS = 20
# A chart by day has a column for every day of the period, up to this many days.
_MAX_DAYS = 400
NO_KEY = "no API key (signed in)"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    share: float  # of the chart's largest value, 0–100 (a bar's drawn length in %)
    note: str = ""  # e.g. "2 unpriced": requests whose cost is unknown


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str  # "USD" or "tokens"
    bars: list[Bar]
    by_day: bool  # columns in time order rather than bars, largest first


@dataclass(frozen=True)
class Report:
    rows: list[dict[str, Any]]  # at most MAX_TABLE_ROWS
    row_count: int
    columns: list[tuple[str, str, bool]]
    totals: dict[str, float]
    charts: list[Chart]


def _sums(
    rows: list[dict[str, Any]], label: Callable[[dict[str, Any]], str], field: str
) -> dict[str, float]:
    parts: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        parts[label(row)].append(row.get(field) or 0)
    return {name: round(math.fsum(values), 8) for name, values in parts.items()}


def _unpriced(rows: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]) -> dict[str, str]:
    counts = _sums(rows, label, "unpriced_requests")
    return {name: f"{int(n)} unpriced" for name, n in counts.items() if n}


def _bars(sums: dict[str, float], notes: dict[str, str], order: list[str]) -> list[Bar]:
    largest = max(sums.values(), default=0) or 1
    return [Bar(n, sums.get(n, 0), 100 * sums.get(n, 0) / largest, notes.get(n, "")) for n in order]


def _days(since: date, until: date, present: set[str]) -> list[str]:
    """Every day of the period (days without requests too), or only those with requests
    when the period is too long to draw a column for each."""
    count = (until - since).days + 1
    if not 0 < count <= _MAX_DAYS:
        return sorted(present)
    return [(since + timedelta(days=i)).isoformat() for i in range(count)]


def charts_of(
    rows: list[dict[str, Any]],
    groups: list[str],
    period: tuple[date, date],
    key_label: Callable[[str | None], str],
) -> list[Chart]:
    """Spend and tokens by day, by provider and model, by key and by user: as many of these
    as the rows are grouped by."""
    dimensions: list[tuple[str, Callable[[dict[str, Any]], str]]] = []
    if "day" in groups:
        dimensions.append(("day", lambda row: str(row.get("day"))))
    models = [g for g in ("provider", "model") if g in groups]
    if models:
        title = " and ".join(models)
        dimensions.append((title, lambda row: " / ".join(str(row.get(g)) for g in models)))
    if "key" in groups:
        dimensions.append(("API key", lambda row: key_label(row.get("key"))))
    if "user" in groups:
        dimensions.append(("user", lambda row: str(row.get("user"))))
    charts = []
    for name, label in dimensions:
        notes = _unpriced(rows, label)
        for field, unit, what in (
            ("cost_usd", "USD", "Spend"),
            ("total_tokens", "tokens", "Tokens"),
        ):
            sums = _sums(rows, label, field)
            title = f"{what} by {name}"
            if name == "day":
                order = _days(*period, set(sums))
            else:
                order = sorted(sums, key=lambda n: (-sums[n], n))[:_MAX_BARS]
                title += f" (the top {_MAX_BARS} of {len(sums)})" if len(sums) > _MAX_BARS else ""
            bars = _bars(sums, notes if unit == "USD" else {}, order)
            charts.append(Chart(title, unit, bars, by_day=name == "day"))
    return charts


def report_of(
    body: dict[str, Any],
    period: tuple[date, date],
    key_label: Callable[[str | None], str],
) -> Report:
    rows = [row for row in body.get("usage", []) if isinstance(row, dict)]
    groups = [g for g in body.get("group_by") or [] if isinstance(g, str)]
    present = {name for row in rows for name in row} | set(groups)
    columns = [column for column in COLUMNS if column[0] in present]
    return Report(
        rows=rows[:MAX_TABLE_ROWS],
        row_count=len(rows),
        columns=columns,
        totals=body.get("totals") or {},
        charts=charts_of(rows, groups, period, key_label) if rows else [],
    )


def key_labeller(names: dict[str, str] | None) -> Callable[[str | None], str]:
    """An API key's label. With `names` (the signed-in user's live keys): its name, or
    "revoked" for a key of theirs no longer listed; without (another user's report): its id.
    Requests made while signed in (with a login token) have no key."""

    def label(key_id: str | None) -> str:
        if not key_id:
            return NO_KEY
        if names is None:
            return key_id
        return f"{names[key_id]} ({key_id})" if key_id in names else f"{key_id} (revoked)"

    return label
