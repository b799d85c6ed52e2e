"""Request and response bodies of the auth routes (seed-spec shapes)."""

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from services.auth.passwords import MAX_PASSWORD_BYTES

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
