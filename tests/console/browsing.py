"""What the console's browser tests share: their marks (skipped, saying so, where no Chromium
is installed), screenshots for the README, signing up through the console, reading its tables,
fitting a phone's screen; and the edge called directly, as a program would.

`CONSOLE_SCREENSHOTS=docs/console` saves the screenshots the README shows."""

import base64
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.console.conftest import CHROMIUM, PASSWORD

SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
FITS = """() => document.documentElement.scrollWidth <= window.innerWidth
    && [...document.querySelectorAll(".table-wrap")].every(t => t.scrollWidth <= t.clientWidth)"""

# The marks of every browser test module.
BROWSER_TESTS = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no Chromium at /usr/bin/chromium (apt-get install chromium): browser tests skipped",
    ),
    pytest.mark.timeout(240),
]


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def sign_up(page: Page, console: str, email: str) -> None:
    page.goto(f"{console}/console/register")
    page.get_by_label("Name").fill("Console User")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()


def sign_in(page: Page, console: str, email: str) -> None:
    page.goto(f"{console}/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()


def session_token(context: BrowserContext) -> str:
    """The token in the HttpOnly session cookie (readable by the test, not by the page)."""
    (cookie,) = [c for c in context.cookies() if c["name"] == "gw_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    return str(orjson.loads(base64.urlsafe_b64decode(cookie["value"]))["t"])


def assert_nothing_stored(page: Page, *secrets_: str) -> None:
    """No secret in the page's HTML, and nothing in the browser's storage."""
    html = page.content()
    for secret in secrets_:
        assert secret not in html
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""  # every cookie is HttpOnly


def fits_a_phone(browser: Browser, context: BrowserContext, url: str) -> bool:
    """Whether the page, in this context's session, fits a phone's screen: nothing wider than
    the screen, no table scrolling sideways (on a phone each row is a card)."""
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=context.storage_state()
    )
    try:
        small = phone.new_page()
        small.goto(url)
        return bool(small.evaluate(FITS))
    finally:
        phone.close()


def chat(edge: str, credential: str, text: str) -> float:
    """A plain deepseek chat; what it cost (`X-Gateway-Cost-USD`)."""
    body = {
        "provider": "deepseek",
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": text}],
    }
    headers = {"authorization": f"Bearer {credential}"}
    response = httpx.post(f"{edge}/api/v1/chat", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return float(response.headers["x-gateway-cost-usd"])


def usage_of(edge: str, token: str, **params: str) -> httpx.Response:
    today = datetime.now(UTC).date().isoformat()
    query = {"from": today, "to": today, "group_by": "day,provider,model,key", **params}
    headers = {"authorization": f"Bearer {token}"}
    return httpx.get(f"{edge}/api/v1/usage", params=query, headers=headers, timeout=30)


def reload_until(page: Page, row_text: str, *also: str) -> None:
    """Reloads until a table row has all these texts (the audit service stores a request's
    record within moments of its end)."""
    deadline = time.monotonic() + 30
    rows = page.get_by_role("row").filter(has_text=row_text)
    for text in also:
        rows = rows.filter(has_text=text)
    while not rows.count():
        assert time.monotonic() < deadline, page.content()
        page.reload()


def cell(page: Page, row_text: str, heading: str, *also: str) -> str:
    """The text of a table cell, by its row's text and its column's heading."""
    headings = page.get_by_role("columnheader").all_text_contents()
    rows = page.get_by_role("row").filter(has_text=row_text)
    for text in also:
        rows = rows.filter(has_text=text)
    return rows.get_by_role("cell").nth(headings.index(heading)).inner_text()
