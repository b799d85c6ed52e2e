"""HTML form fields turned into the edge's request bodies. The edge validates every value
again; this only reads the form's shape (numbers, lists) and names the field that is wrong."""

from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.datastructures import FormData

from shared.budgets import MAX_BUDGET_USD, PERIODS
from shared.providers import PROVIDERS

MAX_TEXT = 4096
_BUDGET_DECIMALS = 8
# The budget periods as a form offers them: (value, label).
BUDGET_PERIODS = (("day", "daily"), ("week", "weekly"), ("month", "monthly"), ("none", "never"))


class FormError(ValueError):
    """A field that cannot become part of a request; its message names the field."""


def text(form: FormData, name: str, limit: int = MAX_TEXT) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def whole_number(form: FormData, name: str, label: str) -> int | None:
    value = text(form, name, 20)
    if not value:
        return None
    if not value.isdigit():
        raise FormError(f"{label} must be a whole number")
    return int(value)


def names_list(value: str) -> list[str]:
    """Names separated by commas or new lines."""
    return [n.strip() for n in value.replace("\n", ",").split(",") if n.strip()]


def kept_values(form: FormData) -> dict[str, Any]:
    """What to put back in the form after an error (never a password or a key)."""
    kept: dict[str, Any] = {
        name: text(form, name)
        for name in (
            "name",
            "expires_in",
            "allowed_models",
            "requests",
            "window",
            "tpm",
            "amount_usd",
            "period",
        )
    }
    kept["allowed_providers"] = [p for p in form.getlist("allowed_providers") if p in PROVIDERS]
    return kept


def limits_of(form: FormData) -> dict[str, Any] | None:
    limits: dict[str, Any] = {}
    requests = whole_number(form, "requests", "Requests per window")
    if requests is not None:
        limits["requests"] = requests
        limits["window"] = text(form, "window", 16) or "1h"
    tokens = whole_number(form, "tpm", "Tokens per minute")
    if tokens is not None:
        limits["tokens_per_minute"] = tokens
    return limits or None


def budget_of(form: FormData) -> dict[str, Any] | None:
    """`{"amount_usd", "period"}` from the form's budget fields; None when no amount is given."""
    value = text(form, "amount_usd", 32).removeprefix("$").replace(",", "")
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        amount = Decimal(-1)
    exponent = amount.as_tuple().exponent
    if (
        not amount.is_finite()
        or not 0 < amount <= MAX_BUDGET_USD
        or (isinstance(exponent, int) and -exponent > _BUDGET_DECIMALS)
    ):
        raise FormError(
            f"Budget must be an amount in USD above 0 and at most {MAX_BUDGET_USD:,}, "
            f"with at most {_BUDGET_DECIMALS} decimals"
        )
    period = text(form, "period", 16) or "month"
    if period not in PERIODS:
        raise FormError("Budget period must be day, week, month or none")
    return {"amount_usd": float(amount), "period": period}


def api_key_body(form: FormData) -> dict[str, Any]:
    body: dict[str, Any] = {"name": text(form, "name", 100)}
    if expires_in := text(form, "expires_in", 16):
        body["expires_in"] = expires_in
    if providers := [p for p in form.getlist("allowed_providers") if isinstance(p, str)]:
        body["allowed_providers"] = providers[:20]
    if models := names_list(text(form, "allowed_models")):
        body["allowed_models"] = models[:100]
    if limits := limits_of(form):
        body["limits"] = limits
    if budget := budget_of(form):
        body["budget"] = budget
    return body


def provider_key_body(form: FormData) -> dict[str, Any]:
    key = form.get("api_key")
    return {
        "provider": text(form, "provider", 64),
        "apiKey": key.strip()[:1024] if isinstance(key, str) else "",
        "name": text(form, "name", 100),
    }


def admin_limits_body(form: FormData) -> dict[str, Any]:
    """A user's custom limits; an empty field clears that limit."""
    requests = whole_number(form, "requests", "Requests per window")
    return {
        "requests": requests,
        "window": (text(form, "window", 16) or "1h") if requests is not None else None,
        "tokens_per_minute": whole_number(form, "tpm", "Tokens per minute"),
    }
