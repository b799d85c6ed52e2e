"""The console's one way out: the edge's public API, called with the signed-in user's token.

The console holds no credential of its own, so a page can do exactly what its user could do
with curl. Errors come back in the gateway's envelope and are raised as `EdgeError`; a 401 is
`SignedOut` (the token expired or was revoked): the user signs in again.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import Request

from shared.client_address import forwarding_headers
from shared.http import trace_id

NO_BODY: Any = object()  # `json=None` sends JSON `null` (an admin removing a budget)


@dataclass
class EdgeError(Exception):
    status: int
    message: str
    type: str = "internal_error"
    details: dict[str, Any] = field(default_factory=dict)
    trace: str | None = None

    def __str__(self) -> str:
        return self.message


class SignedOut(EdgeError):
    """The edge no longer takes the session's token."""


def failure(response: httpx.Response) -> EdgeError:
    """The envelope of an error answer as an `EdgeError` (401 as `SignedOut`)."""
    try:
        error = response.json()["error"]
        message, kind = str(error["message"]), str(error["type"])
        details, trace = error.get("details") or {}, error.get("trace_id")
    except (ValueError, KeyError, TypeError):
        message, kind, details, trace = (
            "The gateway answered unexpectedly",
            "internal_error",
            {},
            None,
        )
    cls = SignedOut if response.status_code == 401 else EdgeError
    return cls(response.status_code, message, kind, details, trace)


class Edge:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def headers(request: Request, token: str | None) -> dict[str, str]:
        headers = {"x-request-id": trace_id(request)}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if request.client is not None:  # the browser's address (TRUSTED_PROXIES on the edge)
            headers.update(forwarding_headers(request.client.host))
        if agent := request.headers.get("user-agent"):
            headers["user-agent"] = agent[:256]
        return headers

    async def call(
        self,
        request: Request,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = NO_BODY,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The edge's answer; raises `EdgeError` for an error answer or an unreachable edge."""
        headers = self.headers(request, token)
        content = None
        if json is not NO_BODY:
            content = orjson.dumps(json)
            headers["content-type"] = "application/json"
        try:
            response = await self.client.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.HTTPError:
            raise EdgeError(503, "The gateway is unreachable; try again shortly") from None
        if response.status_code >= 400:
            raise failure(response)
        return response

    async def json(
        self, request: Request, method: str, path: str, token: str | None, **kwargs: Any
    ) -> Any:
        response = await self.call(request, method, path, token, **kwargs)
        return response.json() if response.content else None

    @asynccontextmanager
    async def stream(
        self, request: Request, path: str, token: str, body: dict[str, Any]
    ) -> AsyncIterator[httpx.Response]:
        """A streamed POST: the open response (its status may be an error's)."""
        outgoing = self.client.build_request(
            "POST", path, json=body, headers=self.headers(request, token)
        )
        try:
            response = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError:
            raise EdgeError(503, "The gateway is unreachable; try again shortly") from None
        try:
            yield response
        finally:
            await response.aclose()


def edge_of(request: Request) -> Edge:
    edge: Edge = request.app.state.edge
    return edge
