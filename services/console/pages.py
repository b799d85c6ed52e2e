"""Rendering the console's pages: one template environment, the signed-in user, notices.

A page that needs a user and has none sends the browser to the sign-in page; one whose token
the edge no longer takes ends the session first. Every form on a page carries the CSRF token
(`session.py`), and every state-changing route checks it (`csrf_protect`, on the whole app).
"""

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.console.edge import EdgeError, SignedOut
from services.console.formats import amount, when
from services.console.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    Cookies,
    Session,
    check_csrf,
    new_csrf_token,
)

PREFIX = "/console"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["when"] = when
templates.env.filters["amount"] = amount

# Fixed texts a redirect may ask a page to show (`?notice=`): never text from the request.
NOTICES = {
    "signed-out": "You are signed out.",
    "session-ended": "Your session ended; sign in again.",
    "registered": "Your account is ready.",
    "key-revoked": "The API key was revoked.",
    "provider-key-added": "The provider key was stored.",
    "provider-key-deleted": "The provider key was deleted.",
    "dead-letter-dropped": "The dead letter was dropped.",
    "user-updated": "The user was updated.",
    "budget-set": "The spend budget was set.",
    "budget-removed": "The spend budget was removed.",
}


class LoginRequired(Exception):
    def __init__(self, path: str, notice: str | None = None) -> None:
        self.path = path
        self.notice = notice


def cookies_of(request: Request) -> Cookies:
    cookies: Cookies = request.app.state.cookies
    return cookies


def signed_in(request: Request) -> Session:
    session = cookies_of(request).session(request)
    if session is None:
        raise LoginRequired(request.url.path)
    return session


def admin_session(session: Annotated[Session, Depends(signed_in)]) -> Session:
    if not session.is_admin:
        raise EdgeError(403, "This page is for admins", "authorization_error")
    return session


SessionDep = Annotated[Session, Depends(signed_in)]
AdminSessionDep = Annotated[Session, Depends(admin_session)]


async def csrf_protect(request: Request) -> None:
    """On every route: a state-changing request needs the page's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    check_csrf(request, cookies_of(request), submitted)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    error: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page, with the user, the navigation, the CSRF token and any notice or error."""
    cookies = cookies_of(request)
    csrf = cookies.csrf(request)
    fresh = csrf is None  # the first page of a visit: its forms get a token from now on
    if csrf is None:
        csrf = new_csrf_token()
    notice = NOTICES.get(request.query_params.get("notice", ""))
    page = templates.TemplateResponse(
        request,
        template,
        {
            "session": cookies.session(request),
            "csrf_token": csrf,
            "notice": notice,
            "error": error,
            "path": request.url.path,
            "prefix": PREFIX,
            **context,
        },
        status_code=status_code,
    )
    if fresh:
        cookies.set_csrf(page, csrf)
    return page


def redirect(path: str, notice: str | None = None) -> RedirectResponse:
    target = f"{PREFIX}{path}" + (f"?notice={quote(notice)}" if notice else "")
    return RedirectResponse(target, status_code=303)


def to_login(request: Request, exc: Exception) -> Response:
    """`LoginRequired` and `SignedOut`: to the sign-in page (ending a dead session)."""
    notice = "session-ended" if isinstance(exc, SignedOut) else None
    back = exc.path if isinstance(exc, LoginRequired) else request.url.path
    target = f"{PREFIX}/login?next={quote(back)}"
    response = RedirectResponse(target + (f"&notice={notice}" if notice else ""), 303)
    if isinstance(exc, SignedOut):
        cookies_of(request).end(response)
    return response


def error_page(request: Request, exc: Exception) -> Response:
    """An error no page handled: a page saying what went wrong, with the edge's status."""
    assert isinstance(exc, EdgeError)
    return render(request, "error.html", exc.status, error=exc.message, trace=exc.trace)
