"""README.md shows the compatibility matrix: one line per row of tests/compat, in order."""

from pathlib import Path

from tests.compat import (
    test_anthropic_client,
    test_gateway_api,
    test_instructor,
    test_langchain,
    test_openai_client,
)
from tests.compat.matrix import Row

README = Path(__file__).resolve().parents[2] / "README.md"
MODULES = (
    test_openai_client,
    test_anthropic_client,
    test_langchain,
    test_instructor,
    test_gateway_api,
)


def line(row: Row) -> str:
    return f"| `{row.id}` | `{row.library}` | {row.feature} |"


def test_the_readme_lists_every_row() -> None:
    rows = [line(r) for module in MODULES for r in module.ROWS]
    lines = README.read_text().splitlines()
    start = lines.index("| row | client library | feature |") + 2
    assert lines[start : start + len(rows)] == rows
    assert not lines[start + len(rows)].startswith("|")
