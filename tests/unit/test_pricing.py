"""The price table (shipped rows, operator overrides) and the cost of a request from its usage."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pydantic
import pytest

from shared.budgets import window
from shared.cost import cost_usd, header_value, to_units, worst_case_usd
from shared.pricing import DEFAULTS, PriceRow, PriceTable
from shared.providers import PROVIDERS
from shared.schemas import Usage


def row(**prices: object) -> PriceRow:
    return PriceRow.model_validate(
        {"provider": "anthropic", "model": "m", "as_of": "2026-12-03", "source": "x", **prices}
    )


def test_every_shipped_row_names_its_source_and_date() -> None:
    raw = orjson.loads(DEFAULTS.read_bytes())
    table = PriceTable.load()
    assert len(table.views()) == len(raw) > 10
    for view in table.views():
        assert view["provider"] in PROVIDERS
        assert view["source"].startswith("https://")
        assert date.fromisoformat(view["as_of"]) <= datetime.now(UTC).date()
        assert view["origin"] == "default"
        assert view["unit"].startswith("USD per 1M tokens")
    sonnet = table.get("anthropic", "claude-3-5-sonnet-20241022")
    assert sonnet is not None
    assert (sonnet.view()["input"], sonnet.view()["cached_input_write"]) == (3.0, 3.75)
    assert table.get("perplexity", "sonar-reasoning") is None  # no confirmed price: unpriced


def test_an_operator_file_overrides_and_adds_rows(tmp_path: Path) -> None:
    json_file = tmp_path / "prices.json"
    json_file.write_text(
        '{"prices": [{"provider": "deepseek", "model": "deepseek-chat", "input": 1,'
        ' "output": 2, "as_of": "2026-12-01", "source": "contract"}]}'
    )
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text(
        "- provider: litellm\n  model: text-embedding-3-small\n  input: 0.02\n"
        "  as_of: 2026-12-01\n  source: our LiteLLM proxy's price list\n"
    )
    table = PriceTable.load(json_file)
    chat = table.get("deepseek", "deepseek-chat")
    assert chat is not None and chat.origin == "override"
    assert (chat.row.input, chat.row.cached_input_read) == (Decimal(1), None)
    assert PriceTable.load(yaml_file).get("litellm", "text-embedding-3-small") is not None


@pytest.mark.parametrize(
    "rows",
    [
        [{"provider": "nobody", "model": "m", "input": 1, "as_of": "2026-01-01", "source": "x"}],
        [{"provider": "xai", "model": "m", "as_of": "2026-01-01", "source": "x"}],
        [{"provider": "xai", "model": "m", "input": -1, "as_of": "2026-01-01", "source": "x"}],
        [{"provider": "xai", "model": "m", "inptu": 1, "as_of": "2026-01-01", "source": "x"}],
    ],
)
def test_a_bad_price_file_is_refused(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps(rows))
    with pytest.raises(pydantic.ValidationError):
        PriceTable.load(path)


def test_cached_and_reasoning_tokens_are_priced_as_such() -> None:
    claude = row(input=3, output=15, cached_input_read=0.3, cached_input_write=3.75)
    usage = Usage(
        prompt_tokens=2000,
        completion_tokens=100,
        prompt_tokens_details={"cached_tokens": 1200, "cache_write_tokens": 500},
    )
    # 300 * 3 + 1200 * 0.3 + 500 * 3.75 + 100 * 15 = 900 + 360 + 1875 + 1500 per million
    assert cost_usd(claude, usage) == Decimal("0.004635")
    thinker = row(input=2, output=8, reasoning=3)
    usage = Usage(
        prompt_tokens=10, completion_tokens=50, completion_tokens_details={"reasoning_tokens": 40}
    )
    assert cost_usd(thinker, usage) == Decimal("0.00022")  # (10*2 + 10*8 + 40*3) per million


def test_fees_and_rounding() -> None:
    sonar = row(input=1, output=1, per_request=0.005, per_1k_searches=5)
    usage = Usage(prompt_tokens=7, completion_tokens=3, num_search_queries=2)
    assert cost_usd(sonar, usage) == Decimal("0.01501")  # 0.00001 + 0.005 + 0.01
    cheap = row(input=0.07, output=0.07)
    # 1 token at $0.07 per million is 7e-8 USD: kept to the 8th decimal, half up.
    assert cost_usd(cheap, Usage(prompt_tokens=1)) == Decimal("0.00000007")
    assert cost_usd(row(input=0.015), Usage(prompt_tokens=1)) == Decimal("0.00000002")
    assert header_value(Decimal("0.0000012")) == "0.00000120"
    assert header_value(None) == "unpriced"
    assert to_units(Decimal("0.05")) == 5_000_000


def test_what_a_row_cannot_price_is_unpriced_never_free() -> None:
    embedder = row(input=0.02)
    assert cost_usd(embedder, Usage(prompt_tokens=100)) == Decimal("0.000002")
    assert cost_usd(embedder, Usage(prompt_tokens=1, completion_tokens=1)) is None
    reranker = row(per_request=0.002)
    assert cost_usd(reranker, None) == Decimal("0.002")
    assert cost_usd(embedder, None) is None


def test_the_worst_case_is_every_token_at_its_dearest_price() -> None:
    claude = row(input=3, output=15, cached_input_read=0.3, cached_input_write=3.75)
    # 10 prompt tokens as cache writes, 100 answer tokens: 37.5 + 1500 per million, rounded up
    assert worst_case_usd(claude, 10, 100) == Decimal("0.00153750")
    assert worst_case_usd(row(input=0.07, output=0.07), 1, 0) == Decimal("0.00000007")
    assert worst_case_usd(row(input=0.001), 1, 0) == Decimal("0.00000001")  # never below cost
    assert worst_case_usd(row(input=1), 5, 5) is None
    assert worst_case_usd(row(per_request=0.002), 500, 0) == Decimal("0.002")


@pytest.mark.parametrize(
    ("period", "now", "stamp", "ends"),
    [
        ("day", "2026-12-31T23:59:59", "d2026-12-31", "2027-01-01T00:00:00"),
        ("week", "2026-12-03T08:00:00", "w2026-11-30", "2026-12-07T00:00:00"),
        ("week", "2026-11-30T00:00:00", "w2026-11-30", "2026-12-07T00:00:00"),
        ("month", "2026-12-15T12:00:00", "m2026-12", "2027-01-01T00:00:00"),
        ("month", "2026-01-31T12:00:00", "m2026-01", "2026-02-01T00:00:00"),
    ],
)
def test_budget_periods_are_utc_calendar_periods(
    period: str, now: str, stamp: str, ends: str
) -> None:
    span = window(period, datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert span.stamp == stamp
    assert span.ends == datetime.fromisoformat(ends).replace(tzinfo=UTC)
    forever = window("none", datetime.now(UTC))
    assert (forever.ends, forever.expiry_ms) == (None, 0)
