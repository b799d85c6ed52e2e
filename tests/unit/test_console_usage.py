"""The console's usage report from the edge's grouped rows: the table keeps the edge's rows and
totals, the charts sum spend and tokens by each grouping, a day chart has every day of the
period, and money is written to the cent or, below a dollar, to four significant digits."""

from datetime import date

from services.console.formats import usd
from services.console.usage import NO_KEY, key_labeller, report_of

PERIOD = (date(2026, 11, 1), date(2026, 11, 3))


def row(day: str, model: str, key: str | None, cost: float, tokens: int, unpriced: int = 0) -> dict:
    return {
        "day": day,
        "provider": "deepseek",
        "model": model,
        "key": key,
        "requests": 1,
        "prompt_tokens": tokens // 2,
        "completion_tokens": tokens - tokens // 2,
        "total_tokens": tokens,
        "cached_tokens": 0,
        "cost_usd": cost,
        "unpriced_requests": unpriced,
    }


BODY = {
    "usage": [
        row("2026-11-01", "deepseek-chat", "gwk_a", 0.1, 100),
        row("2026-11-01", "deepseek-reasoner", None, 0.2, 10),
        row("2026-11-03", "deepseek-chat", "gwk_b", 0.00007056, 46, unpriced=2),
    ],
    "totals": {"requests": 3, "cost_usd": 0.30007056, "total_tokens": 156},
    "group_by": ["day", "provider", "model", "key"],
}


def test_the_table_is_the_edges_rows_and_totals_with_spend_first() -> None:
    report = report_of(BODY, PERIOD, key_labeller(None))
    assert report.rows == BODY["usage"] and report.row_count == 3
    assert report.totals == BODY["totals"]  # the edge's, not summed here
    names = [name for name, _, _ in report.columns]
    assert names[:5] == ["day", "provider", "model", "key", "cost_usd"]
    assert "user" not in names


def test_charts_sum_spend_and_tokens_by_each_grouping() -> None:
    labels = key_labeller({"gwk_a": "batch job"})
    charts = {chart.title: chart for chart in report_of(BODY, PERIOD, labels).charts}
    assert list(charts) == [
        "Spend by day",
        "Tokens by day",
        "Spend by provider and model",
        "Tokens by provider and model",
        "Spend by API key",
        "Tokens by API key",
    ]
    by_day = charts["Spend by day"]
    assert by_day.by_day and by_day.unit == "USD"
    # every day of the period, in order, the day without requests at zero
    assert [(b.label, b.value) for b in by_day.bars] == [
        ("2026-11-01", 0.3),
        ("2026-11-02", 0),
        ("2026-11-03", 0.00007056),
    ]
    assert by_day.bars[0].share == 100 and by_day.bars[2].note == "2 unpriced"
    models = charts["Tokens by provider and model"]
    assert not models.by_day and models.unit == "tokens"
    assert [(b.label, b.value) for b in models.bars] == [
        ("deepseek / deepseek-chat", 146),
        ("deepseek / deepseek-reasoner", 10),
    ]
    keys = charts["Spend by API key"]
    assert [b.label for b in keys.bars] == [NO_KEY, "batch job (gwk_a)", "gwk_b (revoked)"]
    someone_elses = report_of(BODY, PERIOD, key_labeller(None)).charts[4]
    assert [b.label for b in someone_elses.bars] == [NO_KEY, "gwk_a", "gwk_b"]


def test_only_the_groupings_the_rows_have_are_charted() -> None:
    body = {
        "usage": [{"user": "usr_1", "requests": 2, "cost_usd": 1.5, "total_tokens": 9}],
        "totals": {"requests": 2},
        "group_by": ["user"],
    }
    report = report_of(body, PERIOD, key_labeller(None))
    assert [c.title for c in report.charts] == ["Spend by user", "Tokens by user"]
    assert report_of({"usage": [], "group_by": ["day"]}, PERIOD, key_labeller(None)).charts == []
    many = [{"user": f"usr_{n:02d}", "cost_usd": n, "total_tokens": n} for n in range(30)]
    spend = report_of({"usage": many, "group_by": ["user"]}, PERIOD, key_labeller(None)).charts[0]
    assert spend.title == "Spend by user (the top 20 of 30)"
    assert [b.label for b in spend.bars] == [f"usr_{n:02d}" for n in range(29, 9, -1)]


def test_dollars_read_to_the_cent_or_to_four_significant_digits() -> None:
    assert [usd(v) for v in (0, 0.00007056, 0.01234, 0.5, 1, 1234.5, 1e-8)] == [
        "$0.00",
        "$0.00007056",
        "$0.01234",
        "$0.50",
        "$1.00",
        "$1,234.50",
        "$0.00000001",
    ]
