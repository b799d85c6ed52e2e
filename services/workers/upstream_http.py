"""The workers' HTTP client: httpx's API over aiohttp's connection handling (`httpx-aiohttp`),
which costs a fraction of httpx's own transport per request when many calls are in flight.

Failures surface as the httpx exceptions httpx's own transport raises, so the adapters map
them as before: a timeout is a `TimeoutException`, a refused connection a `ConnectError`, a
connection cut mid-answer a `RemoteProtocolError` (the library alone would report some of these
as `ConnectTimeout`, or let aiohttp's own exceptions through). Cookies set by upstreams are
ignored.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

_KEEPALIVE = 5.0  # seconds an idle connection is kept (httpx's default)
# Most specific first.
_ERRORS: tuple[tuple[type[aiohttp.ClientError], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientConnectionError, httpx.ReadError),
    (aiohttp.ClientError, httpx.TransportError),
)


def _as_httpx(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    mapped = next(to for from_, to in _ERRORS if isinstance(exc, from_))
    return mapped(str(exc) or type(exc).__name__, request=request)


@contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ClientError):
            raise _as_httpx(cause, request) from cause
        raise
    except aiohttp.ClientError as exc:
        raise _as_httpx(exc, request) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self.inner = inner
        self.request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self.request):
            async for chunk in self.inner:
                yield chunk

    async def aclose(self) -> None:
        with _httpx_errors(self.request):
            await self.inner.aclose()


class UpstreamTransport(AiohttpTransport):
    def __init__(self, limit: int) -> None:
        super().__init__(client=self._session)
        self.limit = limit

    def _session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the running loop. TLS is verified as httpx does (its
        context, with certifi's roots). No cookie jar: the session serves every caller."""
        connector = aiohttp.TCPConnector(
            limit=self.limit, keepalive_timeout=_KEEPALIVE, ssl=self.ssl_context
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _httpx_errors(request):
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream, request)
        return response


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class UpstreamClient(httpx.AsyncClient):
    """Keeps no cookie an upstream sets: the client serves every caller, whose requests must
    not carry each other's cookies (and reading them would cost time on every answer)."""

    _none = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("the upstream client keeps no cookies")


def upstream_client(*, connect: float, read: float, limit: int) -> httpx.AsyncClient:
    """At most `limit` connections; `connect` bounds getting one, `read` each read."""
    return UpstreamClient(
        timeout=httpx.Timeout(read, connect=connect), transport=UpstreamTransport(limit)
    )
