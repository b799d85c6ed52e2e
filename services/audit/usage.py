"""Usage over the audit rows: requests, tokens and spend grouped by day, provider, model, API key
and user, for one user or for the whole gateway, as JSON rows or CSV.

Only requests count (not events such as budget alerts), and only those that named a provider
and model. Days are UTC calendar days. `cost_usd` sums what the priced requests cost;
`unpriced_requests` counts those whose model had no price (their cost is unknown, never zero).
"""

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from shared.errors import InvalidRequest

Group = Literal["day", "provider", "model", "key", "user"]
# Each grouping field and the SQL that computes it (a closed set: nothing else reaches SQL).
GROUPS: dict[str, str] = {
    "day": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "provider": "provider",
    "model": "model",
    "key": "api_key_id",
    "user": "user_id",
}
COUNTERS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cost_usd",
    "unpriced_requests",
)
_AGGREGATES = (
    "count(*) AS requests, sum(prompt_tokens) AS prompt_tokens,"
    " sum(completion_tokens) AS completion_tokens, sum(total_tokens) AS total_tokens,"
    " coalesce(sum(cached_tokens), 0) AS cached_tokens,"
    " coalesce(sum(cost_usd), 0) AS cost_usd,"
    " count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_requests"
)
# More rows than a person or a spreadsheet reads: narrow the range or the grouping.
MAX_ROWS = 100_000


@dataclass(frozen=True)
class UsageQuery:
    group_by: tuple[str, ...]
    since: datetime | None
    until: datetime | None
    user_id: str | None  # None: the whole gateway

    def sql(self) -> tuple[str, list[Any]]:
        args: list[Any] = [self.since, self.until]
        where = [
            "event IS NULL",
            "provider IS NOT NULL",
            "model IS NOT NULL",
            "($1::timestamptz IS NULL OR at >= $1)",
            "($2::timestamptz IS NULL OR at < $2)",
        ]
        if self.user_id is not None:
            args.append(self.user_id)
            where.append("user_id = $3")
        columns = [f'{GROUPS[g]} AS "{g}"' for g in self.group_by]
        sql = f"SELECT {', '.join([*columns, _AGGREGATES])} FROM audit_log"
        sql += " WHERE " + " AND ".join(where)
        if self.group_by:
            positions = ", ".join(str(i) for i in range(1, len(self.group_by) + 1))
            sql += f" GROUP BY {positions} ORDER BY {positions}"
        return sql + f" LIMIT {MAX_ROWS + 1}", args

    async def rows(self, pool: asyncpg.Pool) -> list[dict[str, Any]]:
        sql, args = self.sql()
        found = await pool.fetch(sql, *args)
        if len(found) > MAX_ROWS:
            raise InvalidRequest(
                f"More than {MAX_ROWS} rows: narrow the date range or group_by",
                details={"max_rows": MAX_ROWS},
            )
        return [_row(r, self.group_by) for r in found if r["requests"]]


def _row(record: asyncpg.Record, group_by: tuple[str, ...]) -> dict[str, Any]:
    row: dict[str, Any] = {g: record[g] for g in group_by}
    for name in COUNTERS:
        value = record[name]
        row[name] = round(float(value), 8) if isinstance(value, Decimal) else int(value or 0)
    return row


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed: dict[str, Any] = {name: sum(r[name] for r in rows) for name in COUNTERS}
    summed["cost_usd"] = round(float(sum(Decimal(str(r["cost_usd"])) for r in rows)), 8)
    return summed


def _text_cell(value: str | None) -> str:
    """A grouping value as a cell a spreadsheet shows as text and never runs as a formula: a
    model name is the caller's string (the edge refuses one starting with a symbol today, but
    rows stored before it did may hold one)."""
    if value is None:
        return ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def as_csv(rows: list[dict[str, Any]], group_by: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*group_by, *COUNTERS])
    for row in rows:
        cells: list[Any] = [_text_cell(row[g]) for g in group_by]
        cells += [f"{row[c]:.8f}" if c == "cost_usd" else row[c] for c in COUNTERS]
        writer.writerow(cells)
    return out.getvalue()


def parse_group_by(value: str | None, *, whole_gateway: bool) -> tuple[str, ...]:
    if value is None:
        return ("provider", "model")
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in GROUPS]
    if unknown or len(value) > 100:
        raise InvalidRequest(
            "group_by takes day, provider, model, key (and user with scope=all)",
            details={"group_by": value[:100], "allowed": list(GROUPS)},
        )
    if "user" in names and not whole_gateway:
        raise InvalidRequest(
            "group_by=user needs scope=all (admins)", details={"group_by": value[:100]}
        )
    return names
