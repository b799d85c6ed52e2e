"""What each model costs: the shipped price table and the operator's overrides.

Prices are USD per million tokens; `per_request` is USD per request and `per_1k_searches` USD
per thousand searches (Perplexity). The shipped rows (`shared/prices.json`) were taken from
each provider's published pricing page, named in the row with the date it was read. An operator
overrides a row or adds one with `PRICES_FILE` (JSON or YAML, a list of rows of the same shape,
or `{"prices": [...]}`) without a code change; a field a row leaves out does not apply to that
model. A model with no row is unpriced: its requests cost "unpriced", never zero.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from shared.providers import PROVIDERS

DEFAULTS = Path(__file__).with_name("prices.json")
UNIT = "USD per 1M tokens (per_request: USD per request; per_1k_searches: USD per 1000 searches)"
# The dearest published price is a few hundred dollars per million tokens; past these, a row
# is a typo.
_TokenPrice = Annotated[Decimal, Field(ge=0, le=10_000, max_digits=16, decimal_places=8)]
_FeePrice = Annotated[Decimal, Field(ge=0, le=1_000, max_digits=16, decimal_places=8)]
Origin = Literal["default", "override"]


class PriceRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    model: str = Field(min_length=1, max_length=256)
    input: _TokenPrice | None = None
    output: _TokenPrice | None = None
    cached_input_read: _TokenPrice | None = None
    cached_input_write: _TokenPrice | None = None
    reasoning: _TokenPrice | None = None
    per_request: _FeePrice | None = None
    per_1k_searches: _FeePrice | None = None
    as_of: date
    source: str = Field(min_length=1, max_length=2048)

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"unknown provider {value!r}")
        return value

    @model_validator(mode="after")
    def _prices_something(self) -> "PriceRow":
        if self.input is None and self.output is None and self.per_request is None:
            raise ValueError("a price row needs input, output or per_request")
        return self


_ROWS: TypeAdapter[list[PriceRow]] = TypeAdapter(list[PriceRow])


@dataclass(frozen=True)
class Price:
    row: PriceRow
    origin: Origin

    def view(self) -> dict[str, Any]:
        """The row as `GET /api/v1/prices` shows it."""
        fields = self.row.model_dump(mode="json")
        for name in (
            "input",
            "output",
            "cached_input_read",
            "cached_input_write",
            "reasoning",
            "per_request",
            "per_1k_searches",
        ):
            value = getattr(self.row, name)
            fields[name] = None if value is None else float(value)
        return {**fields, "unit": UNIT, "origin": self.origin}


def _read(path: Path) -> list[PriceRow]:
    text = path.read_bytes()
    raw: Any = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else orjson.loads(text)
    if isinstance(raw, dict):
        raw = raw.get("prices")
    return _ROWS.validate_python(raw)


class PriceTable:
    def __init__(self, prices: dict[tuple[str, str], Price]) -> None:
        self._prices = prices

    @classmethod
    def load(cls, overrides: Path | None = None) -> "PriceTable":
        """The shipped rows, then the operator's file over them (a bad file fails startup)."""
        prices = {(r.provider, r.model): Price(r, "default") for r in _read(DEFAULTS)}
        if overrides is not None:
            prices |= {(r.provider, r.model): Price(r, "override") for r in _read(overrides)}
        return cls(prices)

    def get(self, provider: str, model: str) -> Price | None:
        return self._prices.get((provider, model))

    def views(self) -> list[dict[str, Any]]:
        return [self._prices[key].view() for key in sorted(self._prices)]
