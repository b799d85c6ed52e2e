"""`python -m services.auth make-admin EMAIL`: bootstrap (or add) an administrator."""

import logging

from services.auth.main import database_url, migrate
from services.auth.users import UserRepository
from shared.db import create_pool
from shared.settings import Settings

log = logging.getLogger(__name__)


async def make_admin(settings: Settings, email: str) -> bool:
    """True if a user with this email now has the admin role; False if there is none."""
    await migrate(settings)
    pool = await create_pool(database_url(settings), max_size=1)
    try:
        user = await UserRepository(pool).set_role_by_email(email.strip(), "admin")
    finally:
        await pool.close()
    if user is None:
        log.error("no user with that email: register first, then run make-admin")
        return False
    log.info("user %s is now an admin", user.id)
    return True
