"""How internal services prove to each other that they are services, not users.

Internal endpoints (the keyvault's decrypt, for one) accept only `Authorization: Bearer
<KEYVAULT_SERVICE_TOKEN>`, compared in constant time; user tokens never match it.
"""

import hmac
import secrets
from pathlib import Path

from shared.dev_secrets import dev_secret
from shared.errors import AuthenticationError
from shared.settings import Settings

DEV_SERVICE_TOKEN_FILE = "keyvault_service_token"


class ServiceTokenMissing(RuntimeError):
    """Production needs a configured service token."""


def service_token(settings: Settings) -> str:
    if settings.keyvault_service_token is not None:
        return settings.keyvault_service_token.get_secret_value()
    if settings.node_env == "production":
        raise ServiceTokenMissing("KEYVAULT_SERVICE_TOKEN is not set")
    path = Path(settings.data_dir) / DEV_SERVICE_TOKEN_FILE
    return dev_secret(path, lambda: secrets.token_urlsafe(32).encode()).decode()


def check_service_token(authorization: str | None, expected: str) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationError("This endpoint is for internal services only")
