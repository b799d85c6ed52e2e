"""What routes get injected: the app's components, the caller's verified token and user."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.auth.api_keys import ApiKeyRepository
from services.auth.limits import LimitsPublisher
from services.auth.passwords import PasswordHasher
from services.auth.revocation import KeyCache, Revocations
from services.auth.throttle import LoginThrottle
from services.auth.users import User, UserRepository
from shared.errors import AuthenticationError, AuthorizationError
from shared.settings import Settings
from shared.tokens import Claims, TokenSigner, TokenVerifier

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True, slots=True)
class Components:
    """Everything the lifespan builds; kept on `app.state.auth`."""

    api_keys: ApiKeyRepository
    passwords: PasswordHasher
    signer: TokenSigner
    verifier: TokenVerifier
    revocations: Revocations
    key_cache: KeyCache
    throttle: LoginThrottle
    limits: LimitsPublisher
    service_token: str


def _settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def _components(request: Request) -> Components:
    value: Components = request.app.state.auth
    return value


def _users(request: Request) -> UserRepository:
    # Read from app.state on each call so tests can swap the repository.
    value: UserRepository = request.app.state.users
    return value


SettingsDep = Annotated[Settings, Depends(_settings)]
ComponentsDep = Annotated[Components, Depends(_components)]
UsersDep = Annotated[UserRepository, Depends(_users)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _verified(credentials: BearerDep, auth: ComponentsDep) -> Claims:
    """A valid token's claims, revoked or not (refresh and logout revoke atomically)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("Missing bearer token")
    return auth.verifier.verify(credentials.credentials)


VerifiedDep = Annotated[Claims, Depends(_verified)]


async def _claims(claims: VerifiedDep, auth: ComponentsDep) -> Claims:
    if await auth.revocations.is_revoked(claims):
        raise AuthenticationError("Token revoked")
    return claims


ClaimsDep = Annotated[Claims, Depends(_claims)]


async def _current_user(claims: ClaimsDep, users: UsersDep) -> User:
    user = await users.by_id(claims.sub)
    if user is None:
        raise AuthenticationError("User no longer exists")
    return user


CurrentUserDep = Annotated[User, Depends(_current_user)]


async def _admin(user: CurrentUserDep) -> User:
    # The database, not the token's claim, decides: a demotion applies at once.
    if user.role != "admin":
        raise AuthorizationError("Admin role required")
    return user


AdminDep = Annotated[User, Depends(_admin)]


def client_address(request: Request) -> str:
    """The client as the edge resolved it (`ClientAddress`: the edge is a trusted proxy)."""
    return request.client.host if request.client else "unknown"
