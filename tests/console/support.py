"""What the console's HTTP tests share: signing in with the console's own form, reading the
cookies it sets and the CSRF token of its pages, and the edge's view of the user."""

import base64
import re
import time
from http.cookies import SimpleCookie

import httpx
import orjson

from services.fleet.plan import FleetConfig
from tests.console.conftest import PASSWORD

SESSION, CSRF = "__Host-gw_console", "__Host-gw_csrf"


def set_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """Each Set-Cookie of the response: name -> its value and attributes."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            flags = {k: str(v) for k, v in morsel.items() if v}
            found[name] = {"value": morsel.value, **flags, "raw": header}
    return found


def csrf_of(response: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, response.text
    return match.group(1)


def sign_up(console_fleet: FleetConfig, email: str) -> None:
    body = {"email": email, "password": PASSWORD, "name": "Console Tester"}
    response = httpx.post(f"{console_fleet.edge_url}/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text


def signed_in_client(console: httpx.Client, console_fleet: FleetConfig, email: str) -> str:
    """Signs in; returns the Cookie header of the session (session and CSRF cookies)."""
    sign_up(console_fleet, email)
    page = console.get("/console/login")
    csrf = set_cookies(page)[CSRF]["value"]
    form = {"email": email, "password": PASSWORD, "csrf_token": csrf}
    headers = {"cookie": f"{CSRF}={csrf}", "origin": str(console.base_url)}
    response = console.post("/console/login", data=form, headers=headers)
    cookies = set_cookies(response)
    return f"{SESSION}={cookies[SESSION]['value']}; {CSRF}={cookies[CSRF]['value']}"


def token_of(cookie: str) -> str:
    """The user's token in a session cookie (tests can read it; the page's scripts cannot)."""
    session_value = cookie.split(";")[0].split("=", 1)[1]
    return str(orjson.loads(base64.urlsafe_b64decode(session_value))["t"])


def spent(console_fleet: FleetConfig, token: str) -> float:
    """The user's spend in the edge's usage report, once their request's record is stored."""
    deadline = time.monotonic() + 30
    while True:
        report = httpx.get(
            f"{console_fleet.edge_url}/api/v1/usage",
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        if report["usage"] or time.monotonic() > deadline:
            return float(report["totals"]["cost_usd"])
        time.sleep(0.2)
