"""How internal services prove to each other that they are services, not users.

Two tokens, so that the public-facing edge cannot decrypt anyone's provider key:

- the internal token (`INTERNAL_SERVICE_TOKEN`), held by the edge, auth and keyvault: the
  edge presents it to resolve gateway API keys (auth) and to look up or stash provider keys
  (keyvault);
- the decrypt token (`KEYVAULT_SERVICE_TOKEN`), held only by the workers and keyvault: the one
  credential the keyvault's decrypt route takes.

Both are `Authorization: Bearer <token>`, compared in constant time; user tokens never match.
In production each must be at least `MIN_TOKEN_BYTES` long and no known placeholder, and a
service holding both (keyvault) refuses to start when they are equal: the edge's token would
then open the decrypt route.
"""

import hmac
import secrets
from pathlib import Path

from pydantic import SecretStr

from shared.dev_secrets import dev_secret
from shared.errors import AuthenticationError
from shared.settings import Settings

MIN_TOKEN_BYTES = 32
# Words of the values templates and examples ship with (deploy/k8s/secrets-template: REPLACE_ME).
_PLACEHOLDERS = ("replace", "changeme", "change-me", "change_me", "placeholder", "example")


class ServiceTokenMissing(RuntimeError):
    """Production needs its configured service tokens, each a real secret."""


def _strong(token: str, name: str) -> str:
    if len(token.encode()) < MIN_TOKEN_BYTES:
        raise ServiceTokenMissing(f"{name} must be at least {MIN_TOKEN_BYTES} bytes in production")
    lowered = token.lower()
    if any(word in lowered for word in _PLACEHOLDERS) or len(set(token)) < 8:
        raise ServiceTokenMissing(
            f"{name} is a placeholder: set a random one (openssl rand -hex 32)"
        )
    return token


def _token(settings: Settings, configured: SecretStr | None, name: str) -> str:
    production = settings.node_env == "production"
    if configured is not None and configured.get_secret_value():
        token = configured.get_secret_value()
        return _strong(token, name) if production else token
    if production:
        raise ServiceTokenMissing(f"{name} is not set")
    path = Path(settings.data_dir) / name.lower()
    return dev_secret(path, lambda: secrets.token_urlsafe(32).encode()).decode()


def internal_token(settings: Settings) -> str:
    return _token(settings, settings.internal_service_token, "INTERNAL_SERVICE_TOKEN")


def decrypt_token(settings: Settings) -> str:
    return _token(settings, settings.keyvault_service_token, "KEYVAULT_SERVICE_TOKEN")


def both_tokens(settings: Settings) -> tuple[str, str]:
    """(internal, decrypt) for the keyvault, which holds both; they must differ."""
    internal, decrypt = internal_token(settings), decrypt_token(settings)
    if hmac.compare_digest(internal.encode(), decrypt.encode()):
        raise ServiceTokenMissing(
            "INTERNAL_SERVICE_TOKEN and KEYVAULT_SERVICE_TOKEN are equal: the edge's token would "
            "open the decrypt route"
        )
    return internal, decrypt


def check_service_token(authorization: str | None, expected: str) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationError("This endpoint is for internal services only")
