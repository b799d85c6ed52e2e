"""The first administrator, from operator secrets: `BOOTSTRAP_ADMIN_EMAIL` and
`BOOTSTRAP_ADMIN_PASSWORD`, applied at every start of the auth service.

No registration ever grants a role, so nobody can become an admin by registering an address
first. At start, the account is created with the admin role if it does not exist; an existing
account is made an admin only if it holds the bootstrap password (so it is the operator's);
otherwise it is left alone and the start logs why (use `make-admin` for that account).
"""

import logging

from services.auth.passwords import MAX_PASSWORD_BYTES, PasswordHasher
from services.auth.users import UserRepository
from shared.errors import ConflictError
from shared.settings import Settings

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 16


class BootstrapAdminError(RuntimeError):
    """The bootstrap admin settings are incomplete or too weak."""


def bootstrap_credentials(settings: Settings) -> tuple[str, str] | None:
    """(email, password) when both are set; None when neither is."""
    email = (settings.bootstrap_admin_email or "").strip().lower()
    secret = settings.bootstrap_admin_password
    password = secret.get_secret_value() if secret else ""
    if not email and not password:
        return None
    if not email or not password:
        raise BootstrapAdminError(
            "BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD are set together or not at all"
        )
    if not MIN_PASSWORD_LENGTH <= len(password.encode()) <= MAX_PASSWORD_BYTES:
        raise BootstrapAdminError(
            f"BOOTSTRAP_ADMIN_PASSWORD must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_BYTES} bytes"
        )
    return email, password


async def ensure_admin(
    credentials: tuple[str, str], users: UserRepository, passwords: PasswordHasher
) -> bool:
    """True if the bootstrap account exists (now) as an admin."""
    email, password = credentials
    user = await users.by_email(email)
    if user is None:
        hashed = await passwords.hash(password)
        try:
            user = await users.create(email, "Administrator", hashed, "admin")
            log.info("bootstrap admin %s created", user.id)
            return True
        except ConflictError:  # another replica created it meanwhile
            user = await users.by_email(email)
            if user is None:
                return False
    if user.role == "admin":
        return True
    if not await passwords.check(password, user.password_hash):
        log.error(
            "BOOTSTRAP_ADMIN_EMAIL names an account registered by someone else (user %s): not "
            "made an admin; choose another address or run make-admin for an account you own",
            user.id,
        )
        return False
    await users.set_role_by_email(email, "admin")
    log.info("bootstrap admin %s given the admin role", user.id)
    return True
