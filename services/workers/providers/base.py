"""What every provider adapter shares: the upstream call and the mapping of upstream failures.

An adapter turns a `ChatRequest` into the provider's wire format and the provider's answer
into unified events: `complete()` returns the `DoneEvent` of a non-streaming job, `stream()`
yields `DeltaEvent`s and ends with a `DoneEvent`. Upstream failures become `GatewayError`s.
"""

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from shared.errors import GatewayError, ProviderError, RateLimitError, ValidationError
from shared.messages import DeltaEvent, DoneEvent
from shared.providers import Provider
from shared.schemas import ChatRequest

_MAX_ERROR_TEXT = 500


class ProviderAdapter(ABC):
    def __init__(
        self, provider: Provider, client: httpx.AsyncClient, base_url: str, api_key: str
    ) -> None:
        self.provider = provider
        self.client = client
        self.base_url = base_url
        self.api_key = api_key

    @abstractmethod
    async def complete(self, request: ChatRequest, trace: str) -> DoneEvent: ...

    @abstractmethod
    def stream(
        self, request: ChatRequest, trace: str
    ) -> AsyncGenerator[DeltaEvent | DoneEvent, None]: ...

    async def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            response = await self.client.post(
                self.base_url + path, content=orjson.dumps(body), headers=headers
            )
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        if response.status_code >= 400:
            raise upstream_error(
                self.provider, response.status_code, response.text, response.headers
            )
        return self.parse_json(response.text)

    @asynccontextmanager
    async def open_stream(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[AsyncIterator[str]]:
        request = self.client.build_request(
            "POST", self.base_url + path, content=orjson.dumps(body), headers=headers
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        try:
            if response.status_code >= 400:
                text = (await response.aread()).decode("utf-8", "replace")
                raise upstream_error(self.provider, response.status_code, text, response.headers)
            yield self._lines(response)
        finally:
            await response.aclose()

    async def _lines(self, response: httpx.Response) -> AsyncIterator[str]:
        try:
            async for line in response.aiter_lines():
                yield line
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc

    def parse_json(self, text: str) -> dict[str, Any]:
        try:
            parsed = orjson.loads(text.strip())
        except orjson.JSONDecodeError as exc:
            raise ProviderError(
                f"{self.provider.name} sent a response that is not JSON",
                details={"provider": self.provider.id},
            ) from exc
        if not isinstance(parsed, dict):
            raise ProviderError(
                f"{self.provider.name} sent an unexpected response",
                details={"provider": self.provider.id},
            )
        return parsed

    def transport_error(self, exc: httpx.HTTPError) -> ProviderError:
        details = {"provider": self.provider.id}
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(f"{self.provider.name} timed out", status=504, details=details)
        return ProviderError(
            f"{self.provider.name} could not be reached ({type(exc).__name__})", details=details
        )

    def stream_error(self, message: str, kind: str = "") -> ProviderError:
        status = 503 if "overloaded" in kind else 502
        return ProviderError(
            f"{self.provider.name} failed mid-stream: {message}",
            status=status,
            details={"provider": self.provider.id, "upstream_error": kind or "stream_error"},
        )


def upstream_message(text: str) -> str:
    """The human message inside any provider's error body, else the body's start."""
    try:
        body = orjson.loads(text.strip())
    except orjson.JSONDecodeError:
        return text.strip()[:_MAX_ERROR_TEXT] or "no details"
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            for key in ("message", "detail", "title"):
                if isinstance(error.get(key), str):
                    return str(error[key])[:_MAX_ERROR_TEXT]
        if isinstance(error, str):
            return error[:_MAX_ERROR_TEXT]
    return text.strip()[:_MAX_ERROR_TEXT]


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
    """providers.md §10.4, in the gateway's own error types."""
    message = upstream_message(text)
    details: dict[str, Any] = {"provider": provider.id, "upstream_status": status}
    name = provider.name
    if status == 429:
        retry_after = retry_after_seconds(headers)
        return RateLimitError(
            f"{name} rate limit reached: {message}", details=details, retry_after=retry_after
        )
    if status in (401, 403):
        return ProviderError(f"{name} rejected the credentials: {message}", details=details)
    if status in (400, 404, 413, 422):
        return ValidationError(
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
