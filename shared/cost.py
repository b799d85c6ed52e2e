"""What one request cost, from the usage its provider reported and its model's price row.

Usage is in unified semantics (`shared.schemas.Usage`): `prompt_tokens` counts every input
token, of which `prompt_tokens_details.cached_tokens` were read from the provider's prompt cache
and `cache_write_tokens` written to it; `completion_tokens` counts every output token, of which
`completion_tokens_details.reasoning_tokens` were reasoning. Each part is priced at its own
price, falling back to the plain input or output price where the provider has none of its own.

Amounts are exact decimals, rounded half up to 8 decimal places: the unit (1e-8 USD) in which
budgets are counted in Redis, so a budget's spend is the sum of the costs its requests showed.
"""

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from shared.pricing import PriceRow
from shared.schemas import Usage

MILLION = Decimal(1_000_000)
QUANTUM = Decimal("0.00000001")
UNITS_PER_USD = 100_000_000


def cost_usd(row: PriceRow, usage: Usage | None) -> Decimal | None:
    """The request's cost, or None when the row does not price what it used. `usage` None:
    an answer that reports none (rerank), priced by its per-request fee alone."""
    if usage is None or (row.input is None and row.output is None):  # priced per request
        return None if row.per_request is None else row.per_request.quantize(QUANTUM)
    prompt = usage.prompt_tokens_details or {}
    read, written = prompt.get("cached_tokens", 0), prompt.get("cache_write_tokens", 0)
    reasoning = (usage.completion_tokens_details or {}).get("reasoning_tokens", 0)
    plain_in = max(0, usage.prompt_tokens - read - written)
    plain_out = max(0, usage.completion_tokens - reasoning)
    parts = [
        (plain_in, row.input),
        (read, row.cached_input_read if row.cached_input_read is not None else row.input),
        (written, row.cached_input_write if row.cached_input_write is not None else row.input),
        (plain_out, row.output),
        (reasoning, row.reasoning if row.reasoning is not None else row.output),
    ]
    if any(tokens and price is None for tokens, price in parts):
        return None
    total = sum((tokens * price for tokens, price in parts if price is not None), Decimal(0))
    total = total / MILLION + (row.per_request or 0)
    if row.per_1k_searches is not None and usage.num_search_queries:
        total += usage.num_search_queries * row.per_1k_searches / 1000
    return total.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def worst_case_usd(row: PriceRow, prompt_tokens: int, answer_tokens: int) -> Decimal | None:
    """The most a request may cost: every prompt token at the dearest input price (a cache
    write costs more than a plain read), every answer token at the dearest output price, plus
    the per-request fee; None when the row cannot price it. Per-search fees are only known at
    the end and are settled then."""
    inputs = [p for p in (row.input, row.cached_input_write) if p is not None]
    outputs = [p for p in (row.output, row.reasoning) if p is not None]
    if not inputs and not outputs:  # priced per request
        prompt_tokens = answer_tokens = 0
    if (prompt_tokens and not inputs) or (answer_tokens and not outputs):
        return None
    total = prompt_tokens * max(inputs, default=Decimal(0))
    total += answer_tokens * max(outputs, default=Decimal(0))
    total = total / MILLION + (row.per_request or 0)
    return total.quantize(QUANTUM, rounding=ROUND_CEILING)


def to_units(amount: Decimal) -> int:
    return int(amount * UNITS_PER_USD)


def from_units(units: int) -> float:
    return units / UNITS_PER_USD


def header_value(cost: Decimal | None) -> str:
    """`X-Gateway-Cost-USD`: the amount with its 8 decimals, or `unpriced`."""
    return "unpriced" if cost is None else f"{cost:.8f}"
