"""The console's defences over HTTP, against a real console and edge: its Content-Security-
Policy, its cookies' flags, the CSRF checks on every state-changing request, and that the
session's token never reaches a page and is revoked at sign-out."""

import re
from pathlib import Path

import httpx

from services.console.formats import usd
from services.console.main import CONTENT_SECURITY_POLICY
from services.fleet.plan import FleetConfig
from tests.console.conftest import PASSWORD
from tests.console.support import (
    CSRF,
    SESSION,
    csrf_of,
    set_cookies,
    sign_up,
    signed_in_client,
    spent,
    token_of,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "console" / "templates"


def test_every_page_has_a_strict_policy_and_no_inline_script(console: httpx.Client) -> None:
    response = console.get("/console/login")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    script = console.get("/console/static/console.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name  # no inline handlers
        assert "style=" not in text and "<style" not in text, template.name


def test_cookies_are_http_only_secure_and_same_site_strict(
    console: httpx.Client, console_fleet: FleetConfig
) -> None:
    page = console.get("/console/login")
    csrf_cookie = set_cookies(page)[CSRF]
    for flag in ("httponly", "secure"):
        assert flag in csrf_cookie["raw"].lower()
    assert "samesite=strict" in csrf_cookie["raw"].lower()
    assert csrf_cookie["path"] == "/" and "domain" not in csrf_cookie
    assert csrf_of(page) == csrf_cookie["value"]

    email = "secure-cookies@example.com"
    sign_up(console_fleet, email)
    form = {"email": email, "password": PASSWORD, "csrf_token": csrf_cookie["value"]}
    headers = {"cookie": f"{CSRF}={csrf_cookie['value']}", "origin": str(console.base_url)}
    signed_in = console.post("/console/login", data=form, headers=headers)
    assert signed_in.status_code == 303, signed_in.text
    cookies = set_cookies(signed_in)
    session = cookies[SESSION]
    assert "httponly" in session["raw"].lower() and "secure" in session["raw"].lower()
    assert "samesite=strict" in session["raw"].lower()
    assert int(session["max-age"]) > 0
    assert cookies[CSRF]["value"] != csrf_cookie["value"]  # a new token for the new session


def test_state_changes_need_the_token_and_this_site(
    console: httpx.Client, console_fleet: FleetConfig
) -> None:
    cookie = signed_in_client(console, console_fleet, "csrf-checks@example.com")
    page = console.get("/console/api-keys", headers={"cookie": cookie})
    assert page.status_code == 200, page.text
    token = csrf_of(page)
    own = {"cookie": cookie, "origin": str(console.base_url)}
    create = {"name": "from a form", "csrf_token": token}

    refused = [
        console.post("/console/api-keys", data={"name": "no token"}, headers=own),
        console.post("/console/api-keys", data={**create, "csrf_token": "x" * 43}, headers=own),
        console.post(
            "/console/api-keys", data=create, headers={**own, "origin": "https://evil.example"}
        ),
        console.post("/console/api-keys", data=create, headers={**own, "origin": "null"}),
        console.post(
            "/console/api-keys", data=create, headers={**own, "sec-fetch-site": "cross-site"}
        ),
        console.post(
            "/console/admin/users/usr_someone/budget", data={"amount_usd": "1"}, headers=own
        ),
        console.post(
            "/console/playground/stream",
            json={"model": "deepseek/deepseek-chat", "message": "hi"},
            headers={**own, "x-csrf-token": "wrong"},
        ),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    listing = console.get("/console/api-keys", headers={"cookie": cookie})
    assert "from a form" not in listing.text and "no token" not in listing.text

    created = console.post("/console/api-keys", data=create, headers=own)
    assert created.status_code == 201, created.text
    assert "from a form" in created.text


def test_the_token_stays_out_of_pages_and_sign_out_revokes_it(
    console: httpx.Client, console_fleet: FleetConfig
) -> None:
    cookie = signed_in_client(console, console_fleet, "sign-out@example.com")
    session_value = cookie.split(";")[0].split("=", 1)[1]
    token = token_of(cookie)
    edge = console_fleet.edge_url
    assert httpx.get(
        f"{edge}/api/v1/api-keys", headers={"authorization": f"Bearer {token}"}
    ).is_success
    for path in ("/console/api-keys", "/console/provider-keys", "/console/usage"):
        page = console.get(path, headers={"cookie": cookie})
        assert page.status_code == 200, (path, page.text)
        assert token not in page.text and session_value not in page.text

    csrf = csrf_of(console.get("/console/api-keys", headers={"cookie": cookie}))
    without = console.post("/console/logout", headers={"cookie": cookie})
    assert without.status_code == 403
    out = console.post(
        "/console/logout",
        data={"csrf_token": csrf},
        headers={"cookie": cookie, "origin": str(console.base_url)},
    )
    assert out.status_code == 303 and out.headers["location"].startswith("/console/login")
    assert set_cookies(out)[SESSION]["value"] == ""
    after = httpx.get(f"{edge}/api/v1/api-keys", headers={"authorization": f"Bearer {token}"})
    assert after.status_code == 401
    gone = console.get("/console/api-keys", headers={"cookie": cookie})
    assert gone.status_code == 303 and "/console/login" in gone.headers["location"]


def test_without_scripts_the_playground_answers_in_the_page(
    console: httpx.Client, console_fleet: FleetConfig
) -> None:
    cookie = signed_in_client(console, console_fleet, "no-script@example.com")
    page = console.get("/console/playground", headers={"cookie": cookie})
    assert page.status_code == 200, page.text
    assert '<option value="deepseek/deepseek-chat"' in page.text
    form = {
        "csrf_token": csrf_of(page),
        "model": "deepseek/deepseek-chat",
        "message": "hi [[sim tokens=6]]",
    }
    headers = {"cookie": cookie, "origin": str(console.base_url)}
    answered = console.post("/console/playground", data=form, headers=headers)
    assert answered.status_code == 200, answered.text
    assert "6 completion tokens" in answered.text
    # What it cost, from the answer's X-Gateway-Cost-USD: the same the usage report counts.
    shown = re.search(r"6 completion tokens · cost (\$[0-9.]+)<", answered.text)
    assert shown, answered.text
    assert shown.group(1) == usd(spent(console_fleet, token_of(cookie)))
    bad = console.post("/console/playground", data={**form, "message": " "}, headers=headers)
    assert bad.status_code == 400 and "Write a message" in bad.text
