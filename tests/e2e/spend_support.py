"""What a request should cost, worked out by hand from the usage the provider reported (in the
provider's own semantics, as the simulator recorded it) and the shipped price table; and the
users, keys and budgets the spend tests need."""

import secrets
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from shared.pricing import PriceRow, PriceTable
from tests.conftest import ADMIN_EMAIL
from tests.e2e.helpers import auth

PRICES = PriceTable.load()
EIGHT = Decimal("0.00000001")
MILLION = Decimal(1_000_000)
PASSWORD = "correct-horse-battery"


def price(provider: str, model: str) -> PriceRow:
    found = PRICES.get(provider, model)
    assert found is not None, f"{provider}/{model} has no shipped price"
    return found.row


def by_hand(provider: str, model: str, usage: dict[str, Any]) -> Decimal:
    """USD, rounded half up to 8 decimals, of one answer whose usage the provider reported."""
    row = price(provider, model)
    if provider == "anthropic":  # input_tokens are those after the cache breakpoint
        assert row.cached_input_read is not None and row.cached_input_write is not None
        total = (
            usage["input_tokens"] * row.input
            + (usage.get("cache_creation_input_tokens") or 0) * row.cached_input_write
            + (usage.get("cache_read_input_tokens") or 0) * row.cached_input_read
            + usage["output_tokens"] * row.output
        )
    else:  # OpenAI dialect: prompt_tokens include the cached ones
        cached = usage.get("prompt_cache_hit_tokens")
        if cached is None:
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        completion = usage["completion_tokens"]
        if provider == "xai":  # xAI leaves reasoning out of completion_tokens, bills it as output
            completion += usage["completion_tokens_details"]["reasoning_tokens"]
        read_price = row.cached_input_read if row.cached_input_read is not None else row.input
        total = (
            (usage["prompt_tokens"] - cached) * row.input
            + cached * read_price
            + completion * row.output
        )
    cost = total / MILLION + (row.per_request or 0)
    return cost.quantize(EIGHT, rounding=ROUND_HALF_UP)


def worst_case(provider: str, model: str, text_chars: int, max_tokens: int) -> Decimal:
    """The documented reservation: the prompt at about four characters a token (plus one),
    at the dearest input price, and every answer token at the output price, rounded up."""
    row = price(provider, model)
    dearest_in = max(p for p in (row.input, row.cached_input_write) if p is not None)
    total = (text_chars // 4 + 1) * dearest_in + max_tokens * row.output
    return (total / MILLION + (row.per_request or 0)).quantize(EIGHT, rounding=ROUND_CEILING)


def usd(value: float | str) -> Decimal:
    return Decimal(str(value)).quantize(EIGHT)


async def register(edge: httpx.AsyncClient) -> tuple[str, str]:
    """(user id, token) of a new user."""
    email = f"spend-{secrets.token_hex(5)}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Spender"}
    response = await edge.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()["user"]["id"], response.json()["token"]


async def admin_token(edge: httpx.AsyncClient) -> str:
    body = {"email": ADMIN_EMAIL, "password": PASSWORD, "name": "Admin"}
    response = await edge.post("/api/v1/auth/register", json=body)
    if response.status_code == 409:
        response = await edge.post("/api/v1/auth/login", json=body)
    assert response.status_code in (200, 201), response.text
    token: str = response.json()["token"]
    return token


async def new_key(edge: httpx.AsyncClient, token: str, **fields: Any) -> dict[str, Any]:
    response = await edge.post(
        "/api/v1/api-keys", json={"name": "spend test", **fields}, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
