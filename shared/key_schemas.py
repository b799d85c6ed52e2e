"""Bodies of the provider-key API (keyvault routes, and the edge that fronts them)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.providers import PROVIDERS

# Real provider keys are well under this; a 10 KB "key" is a mistake or an attack.
MAX_KEY_LENGTH = 512
KEY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ProviderKeyInput(_Strict):
    provider: str
    api_key: str = Field(alias="apiKey", min_length=8, max_length=MAX_KEY_LENGTH)

    @field_validator("provider")
    @classmethod
    def known_provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"unknown provider; known: {', '.join(sorted(PROVIDERS))}")
        return value

    @field_validator("api_key")
    @classmethod
    def plain_token(cls, value: str) -> str:
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("must not contain spaces or control characters")
        return value


class AddKeyRequest(ProviderKeyInput):
    name: str = Field("", max_length=100)

    @field_validator("name")
    @classmethod
    def printable_name(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must not contain control characters")
        return value


class KeyView(BaseModel):
    """A key as users see it: never the key itself."""

    id: str
    provider: str
    name: str
    maskedKey: str  # the spec's camelCase names
    createdAt: datetime | None = None


class KeyList(BaseModel):
    keys: list[KeyView]


class StashRequest(ProviderKeyInput):
    user_id: str = Field(min_length=1, max_length=64)


class StashResponse(BaseModel):
    id: str


class RevealedKey(BaseModel):
    id: str
    provider: str
    apiKey: str


class ValidateKeyRequest(_Strict):
    """Either a key to try (`provider` + `apiKey`) or the id of one of the caller's keys."""

    provider: str | None = None
    api_key: str | None = Field(None, alias="apiKey", min_length=8, max_length=MAX_KEY_LENGTH)
    id: str | None = Field(None, pattern=KEY_ID_PATTERN)

    @model_validator(mode="after")
    def _one_of(self) -> "ValidateKeyRequest":
        if (self.id is None) == (self.api_key is None):
            raise ValueError("give either `id` or `provider` and `apiKey`")
        if self.api_key is not None:
            ProviderKeyInput.known_provider(self.provider or "")
            ProviderKeyInput.plain_token(self.api_key)
        return self


class ValidationDetails(BaseModel):
    hasAccess: bool
    models: list[str]
    reason: str | None = None


class ValidateKeyResponse(BaseModel):
    valid: bool
    provider: str
    details: ValidationDetails
