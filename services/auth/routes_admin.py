"""Admin-only routes: a user's profile, tier and custom limits (others get 403)."""

import logging

from fastapi import APIRouter

from services.auth.deps import AdminDep, ComponentsDep, SettingsDep, UsersDep
from services.auth.limits import Limits, user_limits
from services.auth.schemas import LimitsBody
from services.auth.schemas_admin import AdminUserView, TierRequest
from services.auth.users import User
from shared.errors import NotFoundError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/admin/users")


def _found(user: User | None) -> User:
    if user is None:
        raise NotFoundError("User not found")
    return user


async def _publish(user: User, auth: ComponentsDep) -> AdminUserView:
    effective = await auth.limits.publish_user(user.id, user.tier, user.limits)
    # Cached API keys carry the owner's tier: drop them so the edge re-resolves.
    await auth.key_cache.forget(await auth.api_keys.live_hashes(user.id))
    return AdminUserView.of(user, effective)


@router.get("/{user_id}", response_model=AdminUserView)
async def get_user(
    user_id: str, admin: AdminDep, users: UsersDep, settings: SettingsDep
) -> AdminUserView:
    user = _found(await users.by_id(user_id))
    return AdminUserView.of(user, user_limits(settings, user.tier, user.limits))


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
