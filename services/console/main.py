"""`create_app(settings)`: the web console, a small server-rendered site in front of the edge.

Pages live under `/console`; scripts and styles are files of this package served from
`/console/static` (no CDN, no build step), under a Content-Security-Policy that allows no
inline script or style.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import (
    routes_account,
    routes_admin,
    routes_keys,
    routes_playground,
    routes_usage,
)
from services.console.edge import Edge, EdgeError, SignedOut
from services.console.pages import PREFIX, LoginRequired, csrf_protect, error_page, render, to_login
from services.console.session import Cookies
from shared import http
from shared.client_address import ClientAddress
from shared.errors import GatewayError
from shared.settings import Settings

STATIC = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    # Not the fleet's `no-referrer`: with it a browser sends `Origin: null` on form posts, and
    # the CSRF check needs the real origin.
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)


class PageHeaders:
    """The console's own Content-Security-Policy on every response (the fleet's default, for
    JSON services, allows nothing at all)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_PAGE_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


async def gateway_error(request: Request, exc: Exception) -> Response:
    """The console's own refusals (CSRF): a page for a form, the envelope for a script."""
    assert isinstance(exc, GatewayError)
    if request.headers.get("x-csrf-token") is not None:
        return http.error_response(exc, http.trace_id(request))
    return render(request, "error.html", exc.status, error=exc.message, trace=None)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(10.0, read=settings.request_timeout.seconds + 10)
        async with httpx.AsyncClient(base_url=settings.edge_url, timeout=timeout) as client:
            app.state.edge = Edge(client)
            yield

    app = FastAPI(
        title="AI Gateway console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(csrf_protect)],
    )
    app.state.cookies = Cookies(secure=settings.console_secure_cookies)
    app.add_middleware(PageHeaders)
    app.add_middleware(ClientAddress, proxies=settings.proxies)  # the browser, behind a proxy
    http.install(app)
    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(SignedOut, to_login)
    app.add_exception_handler(EdgeError, error_page)
    http.serve_process_metrics(app)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="static")
    for module in (routes_account, routes_keys, routes_usage, routes_playground, routes_admin):
        app.include_router(module.router, prefix=PREFIX)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        edge: Edge = request.app.state.edge
        try:
            answer = await edge.client.get("/health/live", timeout=2.0)
            up = answer.status_code == 200
        except httpx.HTTPError:
            up = False
        body = {"status": "ready" if up else "not_ready", "edge": "up" if up else "down"}
        return JSONResponse(body, status_code=200 if up else 503)

    return app
