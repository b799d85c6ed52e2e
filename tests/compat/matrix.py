"""The client compatibility matrix: each row is one feature, driven through one real client
library against the running fleet. The README's matrix lists the rows (`test_readme.py`).

A row is a function taking the `Ctx` of a test: the fleet, a fresh user's token, and the
provider simulator (which records what reached each provider, by the request's trace id).
"""

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.fleet.plan import FleetConfig

ANTHROPIC_MODEL = "claude-sonnet-4-20250514"
# Anthropic caches a prefix of at least 1024 tokens (a simulated token is a word).
LONG_PROMPT = " ".join(f"rule{i}" for i in range(1100))


@dataclass(frozen=True)
class Ctx:
    fleet: FleetConfig
    token: str
    simulator: httpx.AsyncClient

    @property
    def edge(self) -> str:
        return self.fleet.edge_url

    async def upstream(self, trace: str) -> dict[str, Any]:
        """What reached the provider for `trace` (its one POST)."""
        response = await self.simulator.get("/_sim/requests", params={"trace_id": trace})
        records = [r for r in response.json()["requests"] if r["method"] == "POST"]
        assert len(records) == 1, records
        record: dict[str, Any] = records[0]
        return record


@dataclass(frozen=True)
class Row:
    id: str
    library: str
    feature: str
    check: Callable[[Ctx], Awaitable[None]]


def row(rows: list[Row], id: str, library: str, feature: str) -> Callable[..., Any]:
    """Adds the decorated check to `rows`."""

    def add(check: Callable[[Ctx], Awaitable[None]]) -> Callable[[Ctx], Awaitable[None]]:
        rows.append(Row(id, library, feature, check))
        return check

    return add


def params(rows: list[Row]) -> Any:
    return pytest.mark.parametrize("matrix_row", rows, ids=[r.id for r in rows])


def new_trace() -> tuple[str, dict[str, str]]:
    trace = f"req_compat_{secrets.token_hex(6)}"
    return trace, {"X-Request-ID": trace}
