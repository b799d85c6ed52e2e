"""Signing in and out, and registering: the edge's `/api/v1/auth/*`, the token kept in the
session cookie (never in the page)."""

import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.console.edge import EdgeError, edge_of
from services.console.pages import PREFIX, SessionDep, cookies_of, redirect, render
from shared.settings import parse_duration

router = APIRouter()

_EMAIL_MAX = 254
_PASSWORD_MAX = 1024


def next_page(value: str | None) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith(f"{PREFIX}//"):
        return value
    return f"{PREFIX}/api-keys"


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    signed = cookies_of(request).session(request) is not None
    return RedirectResponse(f"{PREFIX}/api-keys" if signed else f"{PREFIX}/login", 303)


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", next=next_page(request.query_params.get("next")))


def lifetime(answer: dict[str, object]) -> int:
    """The token's life in seconds (`expiresIn` is written like `24h`)."""
    try:
        return int(parse_duration(str(answer.get("expiresIn"))))
    except ValueError:
        return 3600


async def start_session(request: Request, email: str, password: str, target: str) -> Response:
    body = {"email": email, "password": password}
    answer = await edge_of(request).json(request, "POST", "/api/v1/auth/login", None, json=body)
    response = RedirectResponse(target, status_code=303)
    cookies_of(request).start(response, answer["token"], email, lifetime(answer))
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:_EMAIL_MAX].strip()
    password = str(form.get("password", ""))[:_PASSWORD_MAX]
    target = next_page(str(form.get("next", "")))
    try:
        return await start_session(request, email, password, target)
    except EdgeError as exc:
        message = "Wrong email or password." if exc.status == 401 else exc.message
        return render(request, "login.html", exc.status, error=message, email=email, next=target)


@router.get("/register")
async def register_page(request: Request) -> Response:
    return render(request, "register.html")


@router.post("/register")
async def register(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))[:_EMAIL_MAX].strip()
    name = str(form.get("name", ""))[:200].strip()
    password = str(form.get("password", ""))[:_PASSWORD_MAX]
    body = {"email": email, "password": password, "name": name}
    edge = edge_of(request)
    try:
        await edge.json(request, "POST", "/api/v1/auth/register", None, json=body)
        return await start_session(request, email, password, f"{PREFIX}/api-keys?notice=registered")
    except EdgeError as exc:
        return render(
            request, "register.html", exc.status, error=exc.message, email=email, name=name
        )


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    """Revokes the token at the edge, then forgets it here (even if the edge is away: the
    browser is signed out either way)."""
    with contextlib.suppress(EdgeError):
        await edge_of(request).call(request, "POST", "/api/v1/auth/logout", session.token)
    response = redirect("/login", "signed-out")
    cookies_of(request).end(response)
    return response
