"""The auth routes: register, login, refresh, logout, the JWKS and the health probes."""

from typing import Any

from fastapi import APIRouter, Request, Response

from services.auth.deps import (
    ComponentsDep,
    SettingsDep,
    UsersDep,
    VerifiedDep,
    client_address,
)
from services.auth.schemas import (
    LoginRequest,
    LoginResponse,
    PublicUser,
    RegisterRequest,
    RegisterResponse,
    TokenResponse,
)
from shared.errors import AuthenticationError

router = APIRouter()

INVALID_CREDENTIALS = "Invalid email or password"


@router.post("/api/v1/auth/register", status_code=201, response_model=RegisterResponse)
async def register(
    body: RegisterRequest,
    request: Request,
    users: UsersDep,
    auth: ComponentsDep,
) -> RegisterResponse:
    # Throttled like a login: a 409 (the email is taken) is a failed attempt of the client at
    # that email, so probing which emails are registered is as slow as guessing passwords.
    client = client_address(request)
    await auth.throttle.attempt(body.email, client)
    password_hash = await auth.passwords.hash(body.password)
    # Never an admin: the first one comes from the operator (services/auth/bootstrap.py).
    user = await users.create(body.email, body.name, password_hash)
    await auth.throttle.succeeded(body.email, client)
    await auth.limits.publish_user(user.id, user.tier, user.limits, user.budget)
    return RegisterResponse(
        user=PublicUser(id=user.id, email=user.email, name=user.name),
        token=auth.signer.issue(user.id, user.tier, user.role),
    )


@router.post("/api/v1/auth/login", response_model=LoginResponse, response_model_by_alias=True)
async def login(
    body: LoginRequest,
    request: Request,
    users: UsersDep,
    auth: ComponentsDep,
    settings: SettingsDep,
) -> LoginResponse:
    client = client_address(request)
    await auth.throttle.attempt(body.email, client)
    user = await users.by_email(body.email)
    ok = await auth.passwords.check(body.password, user.password_hash if user else None)
    if user is None or not ok:
        raise AuthenticationError(INVALID_CREDENTIALS)
    await auth.throttle.succeeded(body.email, client)
    # Re-publishing at every login heals a Redis that lost the hash.
    await auth.limits.publish_user(user.id, user.tier, user.limits, user.budget)
    return LoginResponse(
        token=auth.signer.issue(user.id, user.tier, user.role), expires_in=settings.jwt_expiry.text
    )


@router.post("/api/v1/auth/refresh", response_model=TokenResponse)
async def refresh(claims: VerifiedDep, users: UsersDep, auth: ComponentsDep) -> TokenResponse:
    # Rotation: the presented token is spent; presenting it again is refused.
    if not await auth.revocations.revoke(claims):
        raise AuthenticationError("Token revoked")
    user = await users.by_id(claims.sub)
    if user is None:
        raise AuthenticationError("User no longer exists")
    return TokenResponse(token=auth.signer.issue(user.id, user.tier, user.role))


@router.post("/api/v1/auth/logout", status_code=204)
async def logout(claims: VerifiedDep, auth: ComponentsDep) -> Response:
    if not await auth.revocations.revoke(claims):
        raise AuthenticationError("Token revoked")
    return Response(status_code=204)


@router.get("/.well-known/jwks.json")
async def jwks(auth: ComponentsDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return auth.signer.jwks()


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(users: UsersDep, auth: ComponentsDep) -> dict[str, str]:
    await users.ping()
    await auth.revocations.ping()
    return {"status": "ok"}
