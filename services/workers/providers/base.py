"""What every provider adapter shares: the upstream call and the mapping of upstream failures.

An adapter turns a unified request into the provider's wire format and the provider's answer
into unified events: `complete()` returns the `DoneEvent` of a non-streaming chat job, `stream()`
yields `DeltaEvent`s and ends with a `DoneEvent`; `embeddings()`, `rerank()` and `models()`
return the one result of the other job kinds. Upstream failures become `GatewayError`s.
"""

import asyncio
import codecs
import copy
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pydantic

from services.workers.providers.shapes import Shape
from services.workers.providers.upstream_errors import is_credentials_error, upstream_error
from shared.errors import GatewayError, InvalidRequest, ProviderError
from shared.logs import traceparent_var
from shared.messages import (
    DeltaEvent,
    DoneEvent,
    EmbeddingsResult,
    KeyCheckResult,
    ModelsResult,
    RerankResultEvent,
    TokenCount,
)
from shared.providers import Capability, Provider
from shared.schemas import ChatRequest, EmbeddingsRequest, RerankRequest
from shared.settings import Settings
from shared.tracecontext import child_of

__all__ = ["ProviderAdapter", "UpstreamLimits", "trace_headers", "upstream_error"]

log = logging.getLogger(__name__)

# An error answer only gives its message (cut to a few hundred characters): the rest is unread.
ERROR_BODY_BYTES = 65_536
POLL_SECONDS = 0.2
_NVCF_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,128}")
EMBEDDINGS_PER_MAX_BYTES = 64


def trace_headers(trace: str) -> dict[str, str]:
    """The request's trace id, and its W3C context with this worker as the parent."""
    headers = {"x-request-id": trace}
    if (parent := traceparent_var.get()) is not None:
        headers["traceparent"] = child_of(parent)
    return headers


@dataclass(frozen=True)
class UpstreamLimits:
    """The most read of one answer (a body, or one line of a stream) and of a whole stream."""

    max_bytes: int
    max_stream_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "UpstreamLimits":
        return cls(settings.upstream_max_bytes, settings.upstream_max_stream_bytes)

    def embeddings_bytes(self, inputs: int) -> int:
        """Vectors are long: an embeddings answer may take `max_bytes` per 64 inputs (1000
        vectors of 4096 dimensions, as JSON, are about 90 MB)."""
        return self.max_bytes * -(-inputs // EMBEDDINGS_PER_MAX_BYTES)


class ProviderAdapter(ABC):
    def __init__(
        self,
        provider: Provider,
        client: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        *,
        limits: UpstreamLimits,
        retrieval_url: str | None = None,
        poll_url: str | None = None,
    ) -> None:
        self.provider = provider
        self.client = client
        self.base_url = base_url
        self.api_key = api_key
        self.limits = limits
        # Where reranking lives when it is not on the base URL (NIM hosted retrieval, HF TEI).
        self.retrieval_url = retrieval_url.rstrip("/") if retrieval_url else None
        # NVIDIA's hosted calls may answer 202 with `NVCF-REQID`: the result is polled here.
        self.poll_url = poll_url.rstrip("/") if poll_url else None

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

    async def count_tokens(self, request: ChatRequest, trace: str) -> TokenCount:
        """The input tokens of a chat request, counted by the provider (Anthropic only)."""
        raise InvalidRequest(
            f"{self.provider.name} does not count tokens: POST /v1/messages/count_tokens is "
            "offered for Anthropic models",
            details={"provider": self.provider.id, "field": "model"},
        )

    def unsupported(self, capability: Capability) -> InvalidRequest:
        return InvalidRequest(
            f"{self.provider.name} does not support {capability}",
            details={"provider": self.provider.id, "capability": capability},
        )

    def require(self, capability: Capability) -> None:
        if not self.provider.can(capability):
            raise self.unsupported(capability)

    async def call(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any = None,
        *,
        limit: int | None = None,
    ) -> Any:
        """The parsed JSON answer of one upstream call (any JSON value), read no further than
        `limit` bytes (default: `max_bytes`); errors mapped."""
        content = None if body is None else orjson.dumps(body)
        request = self.client.build_request(method, url, content=content, headers=headers)
        while True:
            async with self.send(request) as response:
                pending = response.headers.get("nvcf-reqid")
                if response.status_code != 202 or self.poll_url is None or pending is None:
                    answer = await self._read(response, limit or self.limits.max_bytes)
                    return self.parse_any(answer.decode("utf-8", "replace"))
            # Accepted, not done: poll until it is (the job's deadline bounds the wait).
            if not _NVCF_REQUEST_ID.fullmatch(pending):
                raise self.bad_answer("a 202 without a usable NVCF-REQID")
            await asyncio.sleep(POLL_SECONDS)
            poll_headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            request = self.client.build_request(
                "GET", f"{self.poll_url}/{pending}", headers=poll_headers
            )

    async def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str], shape: type[Shape]
    ) -> dict[str, Any]:
        return self.validated(shape, await self.call("POST", self.base_url + path, headers, body))

    @asynccontextmanager
    async def send(self, request: httpx.Request) -> AsyncIterator[httpx.Response]:
        """The response to `request`, its body unread; an error status is raised, mapped."""
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        try:
            if response.status_code >= 400:
                text = await self._read(response, ERROR_BODY_BYTES, cut=True)
                raise upstream_error(
                    self.provider,
                    response.status_code,
                    text.decode("utf-8", "replace"),
                    response.headers,
                )
            yield response
        finally:
            await response.aclose()

    @asynccontextmanager
    async def open_stream(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[AsyncIterator[str]]:
        request = self.client.build_request(
            "POST", self.base_url + path, content=orjson.dumps(body), headers=headers
        )
        async with self.send(request) as response:
            yield self._lines(response)

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc

    async def _read(self, response: httpx.Response, limit: int, *, cut: bool = False) -> bytes:
        """The body, read no further than `limit` bytes: cut there (`cut`), else refused."""
        body = bytearray()
        async for chunk in self._chunks(response):
            body += chunk
            if len(body) > limit:
                if cut:
                    return bytes(body[:limit])
                raise self.too_large("an answer", limit)
        return bytes(body)

    async def _lines(self, response: httpx.Response) -> AsyncIterator[str]:
        """The stream's lines, ends removed; refused once the stream or a line is too long."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        line_limit, total = self.limits.max_bytes, 0
        partial: list[str] = []  # the unfinished line, in pieces (a long line stays linear)
        partial_size = 0
        async for chunk in self._chunks(response):
            total += len(chunk)
            if total > self.limits.max_stream_bytes:
                raise self.too_large("a stream", self.limits.max_stream_bytes)
            *lines, rest = decoder.decode(chunk).split("\n")
            if lines:
                lines[0] = "".join(partial) + lines[0]
                partial, partial_size = [], 0
            partial.append(rest)
            partial_size += len(rest)
            if partial_size > line_limit or any(len(line) > line_limit for line in lines):
                raise self.too_large("a stream line", line_limit)
            for line in lines:
                yield line
        if tail := "".join(partial) + decoder.decode(b"", final=True):
            yield tail

    def parse_any(self, text: str) -> Any:
        # strip(): providers send blank lines as keep-alives before a JSON body (§0 rule 7).
        try:
            return orjson.loads(text.strip())
        except orjson.JSONDecodeError as exc:
            raise self.bad_answer("a response that is not JSON") from exc

    def parse_json(self, text: str, shape: type[Shape]) -> dict[str, Any]:
        return self.validated(shape, self.parse_any(text))

    def expect_object(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.bad_answer("an unexpected response")
        return value

    def validated(self, shape: type[Shape], value: Any) -> dict[str, Any]:
        """`value`, a JSON object, once it has `shape`; else a bad answer naming the field."""
        answer = self.expect_object(value)
        try:
            shape.model_validate(answer)
        except pydantic.ValidationError as exc:
            where = ".".join(str(part) for part in exc.errors()[0]["loc"])
            raise self.bad_answer(f"a response of the wrong shape (at {where})") from None
        return answer

    def too_large(self, what: str, limit: int) -> ProviderError:
        log.warning("%s sent %s over %d bytes; cut", self.provider.name, what, limit)
        return self.bad_answer(f"{what} larger than {limit} bytes")

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
