"""The console's session and its CSRF defence.

The session cookie holds the user's own gateway token (and their email, for the header), is
`HttpOnly` (no script on the page can read it), `SameSite=Strict` and, unless turned off for
plain-HTTP local use, `Secure` with the `__Host-` prefix (only this host, over HTTPS, path /).

Every state-changing request must pass three checks: the browser says it comes from this
site (`Sec-Fetch-Site`, and `Origin` when sent, must be this host's), and it carries the CSRF
token, a random value kept in its own HttpOnly cookie and written into each page's forms
(double submit), renewed at login and logout.
"""

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import Request, Response

from shared.errors import AuthorizationError

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_COOKIE = 4096


@dataclass(frozen=True)
class Session:
    token: str
    email: str
    role: str
    user_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Cookies:
    secure: bool

    @property
    def session_name(self) -> str:
        return "__Host-gw_console" if self.secure else "gw_console"

    @property
    def csrf_name(self) -> str:
        return "__Host-gw_csrf" if self.secure else "gw_csrf"

    def _set(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def start(self, response: Response, token: str, email: str, expires_in: int) -> None:
        """Keeps the token for this browser, with a fresh CSRF token."""
        value = base64.urlsafe_b64encode(orjson.dumps({"t": token, "e": email})).decode()
        self._set(response, self.session_name, value, max(1, expires_in))
        self.renew_csrf(response)

    def end(self, response: Response) -> None:
        response.delete_cookie(
            self.session_name, path="/", secure=self.secure, httponly=True, samesite="strict"
        )
        self.renew_csrf(response)

    def renew_csrf(self, response: Response) -> None:
        self.set_csrf(response, new_csrf_token())

    def set_csrf(self, response: Response, value: str) -> None:
        self._set(response, self.csrf_name, value, None)

    def session(self, request: Request) -> Session | None:
        raw = request.cookies.get(self.session_name)
        if not raw or len(raw) > _MAX_COOKIE:
            return None
        try:
            found = orjson.loads(base64.urlsafe_b64decode(raw))
            token, email = str(found["t"]), str(found["e"])
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        claims = token_claims(token)
        return Session(token, email, str(claims.get("role", "user")), str(claims.get("sub", "")))

    def csrf(self, request: Request) -> str | None:
        value = request.cookies.get(self.csrf_name)
        return value if value and len(value) < 100 else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def token_claims(token: str) -> dict[str, Any]:
    """The token's claims, unverified: only to choose what to show. The edge verifies the token
    on every call, so a forged claim shows a menu and nothing behind it."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, binascii.Error, orjson.JSONDecodeError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def same_site(request: Request) -> bool:
    """The browser's word that the request comes from a page of this host."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc == host


def check_csrf(request: Request, cookies: Cookies, submitted: str | None) -> None:
    """Raises 403 unless a state-changing request is same-site and carries the CSRF token."""
    expected = cookies.csrf(request)
    if not same_site(request):
        raise AuthorizationError("Cross-site request refused")
    if not expected or not submitted or not hmac.compare_digest(submitted, expected):
        raise AuthorizationError("The form has expired; reload the page and try again")
