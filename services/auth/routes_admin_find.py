"""`GET /api/v1/admin/users?q=…`: admins find users by id, or by part of their email or name."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.auth.deps import AdminDep, ComponentsDep, SettingsDep, UsersDep
from services.auth.limits import user_limits
from services.auth.schemas_admin import AdminUserView
from shared.errors import InvalidRequest

router = APIRouter()

_MAX_FOUND = 50


class FoundUsers(BaseModel):
    users: list[AdminUserView]


@router.get("/api/v1/admin/users", response_model=FoundUsers)
async def find_users(
    q: Annotated[str, Query(min_length=1, max_length=254)],
    admin: AdminDep,
    users: UsersDep,
    settings: SettingsDep,
    auth: ComponentsDep,
    limit: Annotated[int, Query(ge=1, le=_MAX_FOUND)] = 20,
) -> FoundUsers:
    if not q.strip():
        raise InvalidRequest("'q' must not be blank")
    found = await users.find(q.strip(), limit)
    budgets = await auth.limits.budget_states([("user", u.id, u.budget, u.id) for u in found])
    return FoundUsers(
        users=[
            AdminUserView.of(u, user_limits(settings, u.tier, u.limits), budget)
            for u, budget in zip(found, budgets, strict=True)
        ]
    )
