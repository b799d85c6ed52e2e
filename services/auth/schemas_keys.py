"""Bodies of the gateway API key routes and of the edge's resolve route."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.auth.api_keys import ApiKey, ResolvedKey
from services.auth.schemas import LimitsBody, LimitsOut, PositiveDuration
from shared.budgets import BudgetBody, BudgetState, BudgetView
from shared.providers import PROVIDERS

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class KeyLimitsBody(LimitsBody):
    @model_validator(mode="after")
    def _window_needs_requests(self) -> "KeyLimitsBody":
        if self.window is not None and self.requests is None:
            raise ValueError("window needs requests")
        return self


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    expires_in: PositiveDuration | None = None
    expires_at: AwareDatetime | None = None
    allowed_providers: Annotated[list[str], Field(min_length=1, max_length=20)] | None = None
    allowed_models: Annotated[list[ModelName], Field(min_length=1, max_length=100)] | None = None
    limits: KeyLimitsBody | None = None
    budget: BudgetBody | None = None

    @field_validator("allowed_providers")
    @classmethod
    def _known_providers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - set(PROVIDERS))
        if unknown:
            raise ValueError(f"unknown provider(s): {', '.join(unknown)}")
        return sorted(set(value))

    @field_validator("expires_at")
    @classmethod
    def _in_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value

    @model_validator(mode="after")
    def _one_expiry(self) -> "CreateKeyRequest":
        if self.expires_in is not None and self.expires_at is not None:
            raise ValueError("give expires_in or expires_at, not both")
        return self


class ApiKeyView(BaseModel):
    id: str
    name: str
    prefix: str
    expires_at: datetime | None
    allowed_providers: list[str] | None
    allowed_models: list[str] | None
    limits: LimitsOut | None
    budget: BudgetView | None
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey, budget: BudgetState | None) -> "ApiKeyView":
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            expires_at=key.expires_at,
            allowed_providers=key.allowed_providers,
            allowed_models=key.allowed_models,
            limits=None if key.limits.empty else LimitsOut.of(key.limits),
            budget=budget.view() if budget else None,
            created_at=key.created_at,
        )


class CreatedApiKey(ApiKeyView):
    key: str  # the only time the key itself is ever sent


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyView]


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class ResolvedKeyView(BaseModel):
    key_id: str
    user_id: str
    tier: str
    role: str
    allowed_providers: list[str] | None
    allowed_models: list[str] | None
    expires_at: datetime | None
    limits: LimitsOut | None

    @classmethod
    def of(cls, resolved: ResolvedKey) -> "ResolvedKeyView":
        key = resolved.key
        return cls(
            key_id=key.id,
            user_id=key.user_id,
            tier=resolved.tier,
            role=resolved.role,
            allowed_providers=key.allowed_providers,
            allowed_models=key.allowed_models,
            expires_at=key.expires_at,
            limits=None if key.limits.empty else LimitsOut.of(key.limits),
        )
