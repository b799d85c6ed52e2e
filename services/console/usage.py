"""The usage report as the pages show it: the columns the edge's rows have, totals, charts
(server-drawn SVG bars) and CSV. Columns come from the rows themselves, so a report with more
groupings (day, key) or counters (cached tokens, cost) shows them without a change here."""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

# Every column a report may have, in the order shown: (field, heading, is a group).
COLUMNS = (
    ("day", "Day", True),
    ("user", "User", True),
    ("provider", "Provider", True),
    ("model", "Model", True),
    ("key", "API key", True),
    ("requests", "Requests", False),
    ("prompt_tokens", "Prompt tokens", False),
    ("completion_tokens", "Completion tokens", False),
    ("cached_tokens", "Cached tokens", False),
    ("total_tokens", "Total tokens", False),
    ("cost_usd", "Cost (USD)", False),
    ("unpriced_requests", "Unpriced requests", False),
)
GROUPINGS = ("day", "provider", "model", "key")
_MAX_BARS = 20


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    share: float  # of the chart's largest bar, 0–100 (the bar's drawn width in %)


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    bars: list[Bar]


@dataclass(frozen=True)
class Report:
    rows: list[dict[str, Any]]
    columns: list[tuple[str, str, bool]]
    totals: dict[str, float]
    charts: list[Chart]
    groupable: bool  # the edge groups on request (`group_by`)


def columns_of(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    present = {name for row in rows for name in row}
    return [column for column in COLUMNS if column[0] in present]


def totals_of(rows: list[dict[str, Any]], columns: list[tuple[str, str, bool]]) -> dict[str, float]:
    return {
        name: sum(row.get(name) or 0 for row in rows)
        for name, _, is_group in columns
        if not is_group
    }


def group_label(row: dict[str, Any], groups: list[str]) -> str:
    return " / ".join(str(row.get(g) or "–") for g in groups)


def chart(title: str, unit: str, sums: dict[str, float], *, in_order: bool = False) -> Chart:
    """The largest sums as bars, largest first (`in_order`: by label, as days read)."""
    top = sorted(sums.items(), key=lambda item: item[1], reverse=True)[:_MAX_BARS]
    if in_order:
        top.sort()
    largest = max((value for _, value in top), default=0) or 1
    return Chart(title, unit, [Bar(label, value, 100 * value / largest) for label, value in top])


def charts_of(rows: list[dict[str, Any]], columns: list[tuple[str, str, bool]]) -> list[Chart]:
    names = {name for name, _, _ in columns}
    metric, unit = ("cost_usd", "USD") if "cost_usd" in names else ("total_tokens", "tokens")
    if metric not in names:
        return []
    others: list[str] = [g for g in ("provider", "model", "key") if g in names]
    charts = []
    for groups, title in ((["day"], "by day"), (others, "by " + " and ".join(others))):
        if not groups or not set(groups) <= names:
            continue
        for field, label, what in (
            (metric, unit, "Spend" if unit == "USD" else "Tokens"),
            ("requests", "requests", "Requests"),
        ):
            sums: dict[str, float] = defaultdict(float)
            for row in rows:
                sums[group_label(row, groups)] += row.get(field) or 0
            charts.append(chart(f"{what} {title}", label, sums, in_order=groups == ["day"]))
    return charts


def report_of(body: dict[str, Any]) -> Report:
    rows = [row for row in body.get("usage", []) if isinstance(row, dict)]
    columns = columns_of(rows)
    totals = body.get("totals") or totals_of(rows, columns)
    return Report(rows, columns, totals, charts_of(rows, columns), "group_by" in body)


def cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_of(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for name, _, _ in report.columns])
    for row in report.rows:
        writer.writerow([cell(row.get(name, "")) for name, _, _ in report.columns])
    return out.getvalue()
