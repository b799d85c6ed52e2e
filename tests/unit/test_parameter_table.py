"""docs/providers.md §10.1 prints the parameter table the edge and the adapters enforce
(`shared.parameters`): every row of it, exactly."""

from pathlib import Path

from shared.parameters import PARAMETERS, TABLE, Rule

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def cell(rule: Rule) -> str:
    text = {"forward": "yes", "refuse": "**refused**", "translate": f"→ `{rule.becomes}`"}[
        rule.support
    ]
    return f"{text} ({', '.join(rule.values)})" if rule.values else text


def rows() -> list[str]:
    lines = []
    for provider, table in TABLE.items():
        models = [("other models" if table.families else "all", table.rules)]
        models += [(f"`{f.name}`", table.with_family(f)) for f in table.families]
        for name, rules in models:
            cells = " | ".join(cell(rules[p]) for p in PARAMETERS)
            lines.append(f"| {provider} | {name} | {cells} |")
    return lines


def test_the_documented_table_is_the_enforced_one() -> None:
    header = "| provider | models | " + " | ".join(f"`{p}`" for p in PARAMETERS) + " |"
    text = DOC.read_text()
    assert header in text
    lines = text.splitlines()
    start = lines.index(header) + 2  # after the header and its rule line
    assert lines[start : start + len(rows())] == rows()
    assert not lines[start + len(rows())].startswith("|")
