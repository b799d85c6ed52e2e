"""`GET /api/v1/prices` (what each model costs) and `GET /api/v1/budget` (your budgets now)."""

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from services.edge.deps import AdmittedCallerDep, components
from shared.budgets import BudgetView, read_states

router = APIRouter(tags=["spend"])


class PriceList(BaseModel):
    prices: list[dict[str, Any]]


class Budgets(BaseModel):
    user: BudgetView | None
    key: BudgetView | None  # null when called with a login token (JWT)


@router.get("/api/v1/prices", response_model=PriceList)
async def prices(request: Request, caller: AdmittedCallerDep) -> PriceList:
    """Every priced model: USD per 1M tokens, per request and per 1000 searches, with the
    date and source of each price and whether the operator overrode it."""
    return PriceList(prices=components(request).spending.prices.views())


@router.get("/api/v1/budget", response_model=Budgets)
async def budget(request: Request, caller: AdmittedCallerDep) -> Budgets:
    """Your spend budget, and the gateway API key's when called with one: the amount, its
    period, what was spent and is reserved in it, and when it resets."""
    edge = components(request)
    owners = [("user", caller.user_id, caller.user_id)]
    if caller.key_id is not None:
        owners.append(("key", caller.key_id, caller.user_id))
    states = await read_states(edge.redis, edge.keys, owners)
    views = [state.view() if state else None for state in states]
    return Budgets(user=views[0], key=views[1] if caller.key_id is not None else None)
