"""Request and response bodies of the auth routes (the public API's shapes)."""

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)

from services.auth.limits import Limits
from services.auth.passwords import MAX_PASSWORD_BYTES
from shared.settings import parse_duration

# Deliberately loose (one @, a dot in the domain, no spaces): deliverability is not our business.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Email
    password: Annotated[str, Field(min_length=8)]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("not a valid email address")
        return value.lower()

    @field_validator("password")
    @classmethod
    def _bcrypt_limit(cls, value: str) -> str:
        if len(value.encode()) > MAX_PASSWORD_BYTES:
            raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes")
        return value


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: Email
    password: Annotated[str, Field(max_length=1024)]


class PublicUser(BaseModel):
    id: str
    email: str
    name: str


class RegisterResponse(BaseModel):
    user: PublicUser
    token: str


class LoginResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    token: str
    expires_in: str = Field(serialization_alias="expiresIn")


class TokenResponse(BaseModel):
    token: str


MAX_WINDOW_SECONDS = 30 * 86400


def _window(value: str) -> str:
    seconds = parse_duration(value)
    if not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError("must be between 1s and 30d")
    return value.strip()


def _positive_duration(value: str) -> str:
    if parse_duration(value) < 1:
        raise ValueError("must be at least 1s")
    return value.strip()


Window = Annotated[str, AfterValidator(_window)]
PositiveDuration = Annotated[str, AfterValidator(_positive_duration)]


class LimitsBody(BaseModel):
    """Custom limits; a field left out is kept (admin) or unset (new key), null clears it."""

    model_config = ConfigDict(extra="forbid")

    requests: Annotated[StrictInt, Field(gt=0, le=1_000_000_000)] | None = None
    window: Window | None = None
    tokens_per_minute: Annotated[StrictInt, Field(ge=0, le=1_000_000_000_000)] | None = None

    def to_limits(self) -> Limits:
        return Limits(self.requests, self.window, self.tokens_per_minute)


class LimitsOut(BaseModel):
    requests: int | None
    window: str | None
    tokens_per_minute: int | None

    @classmethod
    def of(cls, limits: Limits) -> "LimitsOut":
        return cls(
            requests=limits.requests,
            window=limits.window,
            tokens_per_minute=limits.tokens_per_minute,
        )
