"""How internal services prove to each other that they are services, not users.

Two tokens, so that the public-facing edge cannot decrypt anyone's provider key:

- the internal token (`INTERNAL_SERVICE_TOKEN`), held by the edge, auth and keyvault: the
  edge presents it to resolve gateway API keys (auth) and to look up or stash provider keys
  (keyvault);
- the decrypt token (`KEYVAULT_SERVICE_TOKEN`), held only by the workers and keyvault: the one
  credential the keyvault's decrypt route takes.

Both are `Authorization: Bearer <token>`, compared in constant time; user tokens never match.
"""

import hmac
import secrets
from pathlib import Path

from pydantic import SecretStr

from shared.dev_secrets import dev_secret
from shared.errors import AuthenticationError
from shared.settings import Settings


class ServiceTokenMissing(RuntimeError):
    """Production needs its configured service tokens."""


def _token(settings: Settings, configured: SecretStr | None, name: str) -> str:
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    if settings.node_env == "production":
        raise ServiceTokenMissing(f"{name} is not set")
    path = Path(settings.data_dir) / name.lower()
    return dev_secret(path, lambda: secrets.token_urlsafe(32).encode()).decode()


def internal_token(settings: Settings) -> str:
    return _token(settings, settings.internal_service_token, "INTERNAL_SERVICE_TOKEN")


def decrypt_token(settings: Settings) -> str:
    return _token(settings, settings.keyvault_service_token, "KEYVAULT_SERVICE_TOKEN")


def check_service_token(authorization: str | None, expected: str) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationError("This endpoint is for internal services only")
