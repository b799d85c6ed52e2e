"""docs/providers.md §10.1 prints the parameter table the edge and the adapters enforce
(`shared.parameter_table`): every row of it, exactly, one table per group of parameters."""

from pathlib import Path

import pytest

from shared.parameter_table import GROUPS, PARAMETERS, TABLE, Rule

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def cell(rule: Rule) -> str:
    text = {"forward": "yes", "refuse": "**refused**", "translate": f"→ `{rule.becomes}`"}[
        rule.support
    ]
    return f"{text} ({', '.join(rule.values)})" if rule.values else text


def header(group: tuple[str, ...]) -> str:
    return "| provider | models | " + " | ".join(f"`{p}`" for p in group) + " |"


def rows(group: tuple[str, ...]) -> list[str]:
    lines = []
    for provider, table in TABLE.items():
        models = [("other models" if table.families else "all", table.rules)]
        models += [(f"`{f.name}`", table.with_family(f)) for f in table.families]
        for name, rules in models:
            cells = " | ".join(cell(rules[p]) for p in group)
            lines.append(f"| {provider} | {name} | {cells} |")
    return lines


@pytest.mark.parametrize("group", GROUPS, ids=[g[0] for g in GROUPS])
def test_the_documented_table_is_the_enforced_one(group: tuple[str, ...]) -> None:
    lines = DOC.read_text().splitlines()
    assert header(group) in lines
    start = lines.index(header(group)) + 2  # after the header and its rule line
    assert lines[start : start + len(rows(group))] == rows(group)
    assert not lines[start + len(rows(group))].startswith("|")


def test_every_parameter_is_in_one_table() -> None:
    assert sorted(PARAMETERS) == sorted({p for g in GROUPS for p in g})
    assert len(PARAMETERS) == len(set(PARAMETERS))
