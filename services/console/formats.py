"""How the pages write times and amounts."""

import math
import re
from datetime import UTC, datetime

_EXTRA_ZEROS = re.compile(r"(\.\d\d\d*?)0+$")


def when(value: object) -> str:
    """An ISO 8601 time or seconds since the epoch as `2026-11-03 14:05 UTC`."""
    try:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str) and value:
            moment = datetime.fromisoformat(value).astimezone(UTC)
        else:
            return "—"
    except (ValueError, OverflowError, OSError):
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def usd(value: float) -> str:
    """Dollars to the cent from one dollar up; below, to four significant digits (at most
    eight decimals, the edge's precision), so a request's fraction of a cent stays readable:
    `$1,234.50`, `$0.50`, `$0.01234`, `$0.00007056`."""
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    decimals = min(8, max(2, 3 - math.floor(math.log10(abs(value)))))
    return "$" + _EXTRA_ZEROS.sub(r"\1", f"{value:.{decimals}f}")


def amount(value: object, unit: str = "") -> str:
    """A count with thousands separators, or US dollars (`usd`); `—` for nothing."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    if unit == "USD":
        return usd(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"
