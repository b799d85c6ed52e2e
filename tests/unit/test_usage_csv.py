"""The usage report's CSV: grouping values a spreadsheet could run as formulas stay text."""

import csv
import io

import pytest

from services.audit.usage import COUNTERS, as_csv


def row(model: str) -> dict[str, object]:
    return {"model": model, **dict.fromkeys(COUNTERS, 0), "cost_usd": 0.5}


@pytest.mark.parametrize(
    ("stored", "cell"),
    [
        ('=HYPERLINK("https://evil.example")', '\'=HYPERLINK("https://evil.example")'),
        ("+1+2", "'+1+2"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("claude-3-5-haiku", "claude-3-5-haiku"),
    ],
)
def test_a_grouping_value_is_never_a_formula(stored: str, cell: str) -> None:
    header, line = list(csv.reader(io.StringIO(as_csv([row(stored)], ("model",)))))
    assert header == ["model", *COUNTERS]
    assert line[0] == cell
    assert line[header.index("cost_usd")] == "0.50000000"
