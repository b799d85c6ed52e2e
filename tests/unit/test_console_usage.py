"""The console's usage report: columns, totals, charts and CSV follow the rows the edge sends,
today's (provider and model) and richer ones (by day, with cost)."""

from services.console.usage import csv_of, report_of


def test_todays_report_shows_tokens_by_provider_and_model() -> None:
    body = {
        "usage": [
            {
                "provider": "deepseek",
                "model": "deepseek-chat",
                "requests": 3,
                "prompt_tokens": 10,
                "completion_tokens": 20,
                "total_tokens": 30,
            },
            {
                "provider": "xai",
                "model": "grok-3",
                "requests": 1,
                "prompt_tokens": 5,
                "completion_tokens": 5,
                "total_tokens": 10,
            },
        ],
        "from": "2026-11-01",
        "to": "2026-11-30",
    }
    report = report_of(body)
    assert [c[0] for c in report.columns] == [
        "provider",
        "model",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    ]
    assert report.totals == {
        "requests": 4,
        "prompt_tokens": 15,
        "completion_tokens": 25,
        "total_tokens": 40,
    }
    assert not report.groupable
    tokens, requests = report.charts
    assert tokens.title == "Tokens by provider and model" and tokens.unit == "tokens"
    assert [(b.label, b.value, b.share) for b in tokens.bars] == [
        ("deepseek / deepseek-chat", 30, 100.0),
        ("xai / grok-3", 10, 100 * 10 / 30),
    ]
    assert [b.value for b in requests.bars] == [3, 1]


def test_a_report_by_day_with_cost_charts_spend_and_keeps_the_edges_totals() -> None:
    body = {
        "usage": [
            {
                "day": "2026-11-02",
                "provider": "anthropic",
                "requests": 2,
                "prompt_tokens": 1,
                "completion_tokens": 1,
                "cached_tokens": 0,
                "cost_usd": 0.5,
                "unpriced_requests": 0,
            },
            {
                "day": "2026-11-01",
                "provider": "anthropic",
                "requests": 1,
                "prompt_tokens": 1,
                "completion_tokens": 1,
                "cached_tokens": 0,
                "cost_usd": 0.25,
                "unpriced_requests": 1,
            },
        ],
        "totals": {"requests": 3, "cost_usd": 0.75},
        "group_by": ["day", "provider"],
    }
    report = report_of(body)
    assert report.groupable
    assert [c[1] for c in report.columns][:2] == ["Day", "Provider"]
    assert "Cost (USD)" in [c[1] for c in report.columns]
    assert report.totals == {"requests": 3, "cost_usd": 0.75}
    by_day = report.charts[0]
    assert (by_day.title, by_day.unit) == ("Spend by day", "USD")
    assert [b.label for b in by_day.bars] == ["2026-11-01", "2026-11-02"]  # in time order
    assert [c.title for c in report.charts][2:] == ["Spend by provider", "Requests by provider"]


def test_csv_has_a_header_and_never_a_formula() -> None:
    body = {"usage": [{"provider": "litellm", "model": "=HYPERLINK(1)", "requests": 1}]}
    lines = csv_of(report_of(body)).splitlines()
    assert lines == ["provider,model,requests", "litellm,'=HYPERLINK(1),1"]
