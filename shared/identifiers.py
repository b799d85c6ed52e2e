"""Identifiers a request brings (provider, model, fallbacks), validated where a body is parsed.

Nothing past the schema sees an unchecked one: a provider is one of `PROVIDERS`; a model name
is at most `MODEL_MAX_LENGTH` characters of a path-safe set, with no empty, `.` or `..` segment
(it becomes an audit field, part of cache keys and a path segment of upstream URLs). Error
messages quote what was sent only through `quoted`: a short, cut prefix.
"""

import re
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import PydanticCustomError

from shared.errors import InvalidRequest
from shared.providers import PROVIDERS

MODEL_MAX_LENGTH = 256
PROVIDER_MAX_LENGTH = 32
# "provider/model", as the compatible surfaces and a chat's fallbacks write a model.
QUALIFIED_MODEL_MAX_LENGTH = PROVIDER_MAX_LENGTH + 1 + MODEL_MAX_LENGTH
QUOTE_MAX_LENGTH = 64
# Letters, digits and the punctuation real model ids use (`org/name`, `name:variant`,
# `name@version`, `v1.5`); no spaces, no `%`, `?`, `#`, `\` or control characters.
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+~/-]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def quoted(value: object, limit: int = QUOTE_MAX_LENGTH) -> str:
    """`value` as text, cut to `limit` characters (marked with `…`): safe to echo in an error."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unknown_provider_details(provider: str) -> dict[str, Any]:
    return {"provider": quoted(provider), "available_providers": sorted(PROVIDERS)}


def _known_provider(value: str) -> str:
    if value not in PROVIDERS:
        raise PydanticCustomError(
            "unknown_provider",
            "Unknown provider '{provider}'",
            {"provider": quoted(value), "details": unknown_provider_details(value)},
        )
    return value


def names_unknown_provider(exc: ValidationError) -> bool:
    """Whether a schema refused a request for its provider (on the compatible surfaces a model
    `provider/model` that does not exist: a 404)."""
    return any(err["type"] == "unknown_provider" for err in exc.errors())


def model_problem(value: str) -> str | None:
    """Why `value` is not an acceptable model name, or None."""
    if not _MODEL.match(value):
        return "must start with a letter or digit and hold only letters, digits and . _ : @ + ~ / -"
    if any(segment in ("", ".", "..") for segment in value.split("/")):
        return "must not have empty, '.' or '..' path segments"
    return None


def _model_name(value: str) -> str:
    problem = model_problem(value)
    if problem is not None:
        raise PydanticCustomError("model_name", "Model name {problem}", {"problem": problem})
    return value


def model_path(model: str) -> str:
    """A model name as URL path segments, each percent-encoded: `org/name` stays two segments,
    and nothing in a name can end the path (`?`, `#`) or climb out of it (`..`)."""
    segments = model.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise InvalidRequest(f"Model name '{quoted(model)}' is not a path", details={})
    return "/".join(quote(segment, safe="") for segment in segments)


def _fallback(value: str) -> str:
    provider, slash, model = value.partition("/")
    if not slash or not model:
        raise PydanticCustomError(
            "fallback",
            "Fallback '{fallback}' must be written provider/model",
            {"fallback": quoted(value)},
        )
    _known_provider(provider)
    _model_name(model)
    return value


ProviderId = Annotated[
    str, Field(min_length=1, max_length=PROVIDER_MAX_LENGTH), AfterValidator(_known_provider)
]
ModelName = Annotated[
    str, Field(min_length=1, max_length=MODEL_MAX_LENGTH), AfterValidator(_model_name)
]
FallbackTarget = Annotated[
    str, Field(min_length=3, max_length=QUALIFIED_MODEL_MAX_LENGTH), AfterValidator(_fallback)
]
# A short option word a provider takes as is (OpenRouter's `transforms`).
OptionToken = Annotated[str, Field(min_length=1, max_length=64, pattern=_TOKEN.pattern)]
