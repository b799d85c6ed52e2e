"""What every provider adapter shares: the upstream call and the mapping of upstream failures.

An adapter turns a unified request into the provider's wire format and the provider's answer
into unified events: `complete()` returns the `DoneEvent` of a non-streaming chat job, `stream()`
yields `DeltaEvent`s and ends with a `DoneEvent`; `embeddings()`, `rerank()` and `models()`
return the one result of the other job kinds. Upstream failures become `GatewayError`s.
"""

import copy
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from services.workers.providers.upstream_errors import is_credentials_error, upstream_error
from shared.errors import GatewayError, ProviderError, ValidationError
from shared.messages import (
    DeltaEvent,
    DoneEvent,
    EmbeddingsResult,
    KeyCheckResult,
    ModelsResult,
    RerankResultEvent,
)
from shared.providers import Capability, Provider
from shared.schemas import ChatRequest, EmbeddingsRequest, RerankRequest

__all__ = ["ProviderAdapter", "upstream_error"]


class ProviderAdapter(ABC):
    def __init__(
        self,
        provider: Provider,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        *,
        retrieval_url: str | None = None,
    ) -> None:
        self.provider = provider
        self.client = client
        self.base_url = base_url
        self.api_key = api_key
        # Where reranking lives when it is not on the base URL (NIM hosted retrieval, HF TEI).
        self.retrieval_url = retrieval_url.rstrip("/") if retrieval_url else None

    def with_key(self, api_key: str) -> "ProviderAdapter":
        """The same adapter (and connection pool) calling with another key."""
        clone = copy.copy(self)
        clone.api_key = api_key
        return clone

    async def check_key(self, trace: str) -> KeyCheckResult:
        """Whether this adapter's key works, by its cheapest authenticated call (by default
        the model list, which also tells which models the key may use)."""
        try:
            listed = await self.models(trace)
        except GatewayError as exc:
            if is_credentials_error(exc):
                return KeyCheckResult(valid=False, reason=exc.message)
            raise
        return KeyCheckResult(valid=True, models=listed.models)

    @abstractmethod
    async def complete(self, request: ChatRequest, trace: str) -> DoneEvent: ...

    @abstractmethod
    def stream(
        self, request: ChatRequest, trace: str
    ) -> AsyncGenerator[DeltaEvent | DoneEvent, None]: ...

    @abstractmethod
    async def models(self, trace: str) -> ModelsResult: ...

    async def embeddings(self, request: EmbeddingsRequest, trace: str) -> EmbeddingsResult:
        raise self.unsupported("embeddings")

    async def rerank(self, request: RerankRequest, trace: str) -> RerankResultEvent:
        raise self.unsupported("rerank")

    def unsupported(self, capability: Capability) -> ValidationError:
        return ValidationError(
            f"{self.provider.name} does not support {capability}",
            details={"provider": self.provider.id, "capability": capability},
        )

    def require(self, capability: Capability) -> None:
        if not self.provider.can(capability):
            raise self.unsupported(capability)

    async def call(self, method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
        """The parsed JSON answer of one upstream call (any JSON value); errors mapped."""
        content = None if body is None else orjson.dumps(body)
        try:
            response = await self.client.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        if response.status_code >= 400:
            raise upstream_error(
                self.provider, response.status_code, response.text, response.headers
            )
        return self.parse_any(response.text)

    async def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        return self.expect_object(await self.call("POST", self.base_url + path, headers, body))

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

    def parse_any(self, text: str) -> Any:
        # strip(): providers send blank lines as keep-alives before a JSON body (§0 rule 7).
        try:
            return orjson.loads(text.strip())
        except orjson.JSONDecodeError as exc:
            raise self.bad_answer("a response that is not JSON") from exc

    def parse_json(self, text: str) -> dict[str, Any]:
        return self.expect_object(self.parse_any(text))

    def expect_object(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.bad_answer("an unexpected response")
        return value

    def bad_answer(self, what: str) -> ProviderError:
        return ProviderError(
            f"{self.provider.name} sent {what}", details={"provider": self.provider.id}
        )

    def transport_error(self, exc: httpx.HTTPError) -> ProviderError:
        details = {"provider": self.provider.id}
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(f"{self.provider.name} timed out", status=504, details=details)
        return ProviderError(
            f"{self.provider.name} could not be reached ({type(exc).__name__})", details=details
        )

    def stream_error(self, message: str, kind: str = "") -> ProviderError:
        status = 503 if "overloaded" in kind.lower() or "unavailable" in kind.lower() else 502
        return ProviderError(
            f"{self.provider.name} failed mid-stream: {message}",
            status=status,
            details={"provider": self.provider.id, "upstream_error": kind or "stream_error"},
        )
