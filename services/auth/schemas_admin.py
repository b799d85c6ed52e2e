"""Bodies of the admin routes."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.auth.limits import EffectiveLimits
from services.auth.schemas import LimitsOut
from services.auth.users import User
from shared.budgets import BudgetState, BudgetView


class TierRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Literal["free", "paid"]


class EffectiveLimitsOut(BaseModel):
    requests: int
    window_seconds: int
    tokens_per_minute: int


class AdminUserView(BaseModel):
    id: str
    email: str
    name: str
    tier: str
    role: str
    limits: LimitsOut
    effective_limits: EffectiveLimitsOut
    budget: BudgetView | None

    @classmethod
    def of(
        cls, user: User, effective: EffectiveLimits, budget: BudgetState | None
    ) -> "AdminUserView":
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            tier=user.tier,
            role=user.role,
            limits=LimitsOut.of(user.limits),
            effective_limits=EffectiveLimitsOut(**effective.mapping()),
            budget=budget.view() if budget else None,
        )
