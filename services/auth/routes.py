"""The auth routes: register, login, refresh, the JWKS and the health probes."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.auth.passwords import PasswordHasher
from services.auth.schemas import (
    LoginRequest,
    LoginResponse,
    PublicUser,
    RegisterRequest,
    RegisterResponse,
    TokenResponse,
)
from services.auth.users import UserRepository
from shared.errors import AuthenticationError
from shared.settings import Settings
from shared.tokens import TokenSigner, TokenVerifier

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)

INVALID_CREDENTIALS = "Invalid email or password"


def _settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def _users(request: Request) -> UserRepository:
    value: UserRepository = request.app.state.users
    return value


def _passwords(request: Request) -> PasswordHasher:
    value: PasswordHasher = request.app.state.passwords
    return value


def _signer(request: Request) -> TokenSigner:
    value: TokenSigner = request.app.state.signer
    return value


def _verifier(request: Request) -> TokenVerifier:
    value: TokenVerifier = request.app.state.verifier
    return value


SettingsDep = Annotated[Settings, Depends(_settings)]
UsersDep = Annotated[UserRepository, Depends(_users)]
PasswordsDep = Annotated[PasswordHasher, Depends(_passwords)]
SignerDep = Annotated[TokenSigner, Depends(_signer)]
VerifierDep = Annotated[TokenVerifier, Depends(_verifier)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@router.post("/api/v1/auth/register", status_code=201, response_model=RegisterResponse)
async def register(
    body: RegisterRequest, users: UsersDep, passwords: PasswordsDep, signer: SignerDep
) -> RegisterResponse:
    password_hash = await passwords.hash(body.password)
    user = await users.create(body.email, body.name, password_hash)
    return RegisterResponse(
        user=PublicUser(id=user.id, email=user.email, name=user.name),
        token=signer.issue(user.id, user.tier),
    )


@router.post("/api/v1/auth/login", response_model=LoginResponse, response_model_by_alias=True)
async def login(
    body: LoginRequest,
    users: UsersDep,
    passwords: PasswordsDep,
    signer: SignerDep,
    settings: SettingsDep,
) -> LoginResponse:
    user = await users.by_email(body.email)
    ok = await passwords.check(body.password, user.password_hash if user else None)
    if user is None or not ok:
        raise AuthenticationError(INVALID_CREDENTIALS)
    return LoginResponse(token=signer.issue(user.id, user.tier), expires_in=settings.jwt_expiry)


@router.post("/api/v1/auth/refresh", response_model=TokenResponse)
async def refresh(
    credentials: BearerDep, users: UsersDep, signer: SignerDep, verifier: VerifierDep
) -> TokenResponse:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("Missing bearer token")
    claims = verifier.verify(credentials.credentials)
    user = await users.by_id(claims.sub)
    if user is None:
        raise AuthenticationError("User no longer exists")
    return TokenResponse(token=signer.issue(user.id, user.tier))


@router.get("/.well-known/jwks.json")
async def jwks(signer: SignerDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return signer.jwks()


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(users: UsersDep) -> dict[str, str]:
    await users.ping()
    return {"status": "ok"}
