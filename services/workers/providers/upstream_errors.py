"""Upstream HTTP failures in the gateway's own error types (docs/providers.md §10.4).

Every provider's error body is read here: the OpenAI envelope, Anthropic's typed error, xAI's
flat `{"code", "error"}`, NIM's problem JSON `{status, title, detail}`, TEI's
`{"error", "error_type"}`, and non-JSON pages such as Perplexity's HTML 401.
"""

import email.utils
import re
import time
from typing import Any

import httpx
import orjson

from shared.errors import GatewayError, InvalidRequest, ProviderError, RateLimitError
from shared.providers import Provider

_MAX_ERROR_TEXT = 500
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
# Wrong keys that some providers report with a status other than 401 (xAI: 400).
_BAD_KEY = re.compile(r"incorrect api key|invalid api key|no credentials", re.IGNORECASE)


def _from_json(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error", body)
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        for key in ("message", "detail", "title"):
            if isinstance(error.get(key), str) and error[key]:
                return str(error[key])
    return None


def moderation_reasons(text: str) -> list[str] | None:
    """OpenRouter's reasons for flagging the input, when its 403 is a moderation refusal."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    metadata = error.get("metadata") if isinstance(error, dict) else None
    reasons = metadata.get("reasons") if isinstance(metadata, dict) else None
    return [str(r) for r in reasons] if isinstance(reasons, list) else None


def upstream_message(text: str) -> str:
    """The human message inside any provider's error body, else the body's start."""
    stripped = text.strip()
    try:
        message = _from_json(orjson.loads(stripped))
    except orjson.JSONDecodeError:
        title = _TITLE.search(stripped)
        message = title.group(1) if title else _TAG.sub(" ", stripped)
        message = " ".join(message.split())
    return (message or stripped or "no details")[:_MAX_ERROR_TEXT]


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def upstream_error(
    provider: Provider, status: int, text: str, headers: httpx.Headers
) -> GatewayError:
    message = upstream_message(text)
    details: dict[str, Any] = {"provider": provider.id, "upstream_status": status}
    if headers.get("x-should-retry", "").lower() == "false":
        details["retryable"] = False
    name = provider.name
    if status == 429:
        retry_after = retry_after_seconds(headers)
        return RateLimitError(
            f"{name} rate limit reached: {message}", details=details, retry_after=retry_after
        )
    if status == 403 and (reasons := moderation_reasons(text)) is not None:
        # The input was refused, not the key: the caller must change the prompt.
        details |= {"code": "content_filter", "reasons": reasons}
        return InvalidRequest(
            f"{name} moderation flagged the input: {message}", status=403, details=details
        )
    if status in (401, 403) or (status == 400 and _BAD_KEY.search(message)):
        details["credentials"] = "rejected"
        return ProviderError(f"{name} rejected the credentials: {message}", details=details)
    if status in (400, 404, 413, 415, 422):
        return InvalidRequest(
            f"{name} rejected the request: {message}",
            status=413 if status == 413 else 400,
            details=details,
        )
    if status == 402:
        return ProviderError(f"{name} account has no credit: {message}", details=details)
    if status in (408, 504):
        return ProviderError(f"{name} timed out: {message}", status=504, details=details)
    unavailable = status in (503, 529)
    return ProviderError(
        f"{name} {'is overloaded' if unavailable else 'failed'}: {message}",
        status=503 if unavailable else 502,
        details=details,
    )


def is_credentials_error(error: GatewayError) -> bool:
    """The provider refused the key itself (not the request, not its own health)."""
    return error.details.get("credentials") == "rejected"
