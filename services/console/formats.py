"""How the pages write times and amounts."""

from datetime import UTC, datetime


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


def amount(value: object, unit: str = "") -> str:
    """A count with thousands separators, or US dollars to the cent (to 6 decimals below one
    cent); `—` for nothing."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    if unit == "USD":
        return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.6f}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"
