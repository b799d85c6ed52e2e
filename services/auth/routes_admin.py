"""Admin-only routes: a user's profile, tier, custom limits and budget (others get 403)."""

import logging

import pydantic
from fastapi import APIRouter, Request

from services.auth.deps import AdminDep, ComponentsDep, SettingsDep, UsersDep
from services.auth.limits import Limits, user_limits
from services.auth.schemas import LimitsBody
from services.auth.schemas_admin import AdminUserView, TierRequest
from services.auth.users import User
from shared.budgets import BudgetBody, BudgetState
from shared.errors import InvalidRequest, NotFoundError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/admin/users")


def _found(user: User | None) -> User:
    if user is None:
        raise NotFoundError("User not found")
    return user


async def _budget(user: User, auth: ComponentsDep) -> BudgetState | None:
    (state,) = await auth.limits.budget_states([("user", user.id, user.budget, user.id)])
    return state


async def _publish(user: User, auth: ComponentsDep) -> AdminUserView:
    effective = await auth.limits.publish_user(user.id, user.tier, user.limits, user.budget)
    # Cached API keys carry the owner's tier: drop them so the edge re-resolves.
    await auth.key_cache.forget(await auth.api_keys.live_hashes(user.id))
    return AdminUserView.of(user, effective, await _budget(user, auth))


@router.get("/{user_id}", response_model=AdminUserView)
async def get_user(
    user_id: str, admin: AdminDep, users: UsersDep, settings: SettingsDep, auth: ComponentsDep
) -> AdminUserView:
    user = _found(await users.by_id(user_id))
    effective = user_limits(settings, user.tier, user.limits)
    return AdminUserView.of(user, effective, await _budget(user, auth))


@router.put("/{user_id}/budget", response_model=AdminUserView)
async def set_budget(
    user_id: str, request: Request, admin: AdminDep, users: UsersDep, auth: ComponentsDep
) -> AdminUserView:
    """`{"amount_usd", "period"}` sets the user's budget; a `null` body removes it."""
    try:
        raw = await request.json()
        budget = None if raw is None else BudgetBody.model_validate(raw)
    except ValueError as exc:  # not JSON, or not a budget (pydantic's error is a ValueError)
        errors = exc.errors() if isinstance(exc, pydantic.ValidationError) else []
        raise InvalidRequest(
            "The body must be a budget {amount_usd, period} or null",
            details={
                "errors": [
                    {"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in errors
                ]
            },
        ) from None
    user = _found(await users.set_budget(user_id, budget))
    log.info("admin %s set the budget of %s", admin.id, user.id)
    return await _publish(user, auth)


@router.put("/{user_id}/tier", response_model=AdminUserView)
async def set_tier(
    user_id: str, body: TierRequest, admin: AdminDep, users: UsersDep, auth: ComponentsDep
) -> AdminUserView:
    user = _found(await users.set_tier(user_id, body.tier))
    log.info("admin %s set the tier of %s to %s", admin.id, user.id, body.tier)
    return await _publish(user, auth)


@router.put("/{user_id}/limits", response_model=AdminUserView)
async def set_limits(
    user_id: str, body: LimitsBody, admin: AdminDep, users: UsersDep, auth: ComponentsDep
) -> AdminUserView:
    current = _found(await users.by_id(user_id)).limits
    given = body.model_fields_set
    merged = Limits(
        requests=body.requests if "requests" in given else current.requests,
        window=body.window if "window" in given else current.window,
        tokens_per_minute=(
            body.tokens_per_minute if "tokens_per_minute" in given else current.tokens_per_minute
        ),
    )
    user = _found(await users.set_limits(user_id, merged))
    log.info("admin %s set the limits of %s", admin.id, user.id)
    return await _publish(user, auth)
