"""The console in a real browser (Debian's Chromium, driven by Playwright) against the real
fleet: sign up, create and revoke an API key, store a provider key, watch a chat stream in the
playground and find it in usage; as an admin, find a user, see a failing provider's breaker
open and retry a dead letter. Skipped, saying so, where no Chromium is installed.

`CONSOLE_SCREENSHOTS=docs/console` also saves the screenshots the README shows."""

import base64
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from services.fleet.plan import FleetConfig
from services.workers.recovery import WORKER_STOPPED
from shared.messages import ChatJob, encode
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest
from tests.console.conftest import BREAKER_MIN_REQUESTS, CONSOLE_ADMIN, PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no Chromium at /usr/bin/chromium (apt-get install chromium): browser tests skipped",
    ),
    pytest.mark.timeout(240),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    created = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield created
    finally:
        created.close()


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


def test_a_user_manages_keys_streams_a_chat_and_sees_it_in_usage(
    context: BrowserContext, console_fleet: FleetConfig
) -> None:
    console, edge = console_fleet.console_url, console_fleet.edge_url
    assert console
    page = context.new_page()
    sign_up(page, console, f"browser-{secrets.token_hex(4)}@example.com")
    token = session_token(context)
    assert_nothing_stored(page, token)

    # A gateway API key: its secret once, with a copy button; it works until revoked.
    page.get_by_label("Name", exact=True).fill("batch job")
    page.get_by_label("DeepSeek").check()
    page.get_by_label("Requests").fill("500")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("The new API key").input_value()
    assert secret.startswith("gw_")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == secret
    row = page.get_by_role("row").filter(has_text="batch job")
    expect(row).to_contain_text("deepseek")
    expect(row).to_contain_text("500 requests / 1h")
    shot(page, "api-keys")
    key_auth = {"authorization": f"Bearer {secret}"}
    assert httpx.get(f"{edge}/api/v1/providers", headers=key_auth, timeout=30).status_code == 200
    page.goto(f"{console}/console/api-keys")
    assert_nothing_stored(page, secret, token)  # shown once: never again
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke batch job").click()
    expect(page.get_by_role("status")).to_have_text("The API key was revoked.")
    expect(page.get_by_role("row").filter(has_text="batch job")).to_have_count(0)
    assert httpx.get(f"{edge}/api/v1/providers", headers=key_auth, timeout=30).status_code == 401

    # An own provider key: stored, then listed masked only.
    own_key = f"sk-ant-api03-{secrets.token_hex(12)}"
    page.get_by_role("link", name="Provider keys").click()
    page.get_by_label("Provider").select_option("anthropic")
    page.get_by_label("Name").fill("My Anthropic key")
    page.get_by_label("Key", exact=True).fill(own_key)
    page.get_by_role("button", name="Store key").click()
    expect(page.get_by_role("status")).to_have_text("The provider key was stored.")
    expect(page.get_by_role("row").filter(has_text="My Anthropic key")).to_contain_text(
        f"...{own_key[-3:]}"
    )
    shot(page, "provider-keys")
    assert_nothing_stored(page, own_key)
    stored = page.get_by_role("row").filter(has_text="My Anthropic key")
    stored.get_by_role("button", name="Validate").click()
    expect(page.get_by_role("heading", name="anthropic: the key")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row").filter(has_text="My Anthropic key").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.get_by_role("status")).to_have_text("The provider key was deleted.")
    expect(page.get_by_role("row").filter(has_text="My Anthropic key")).to_have_count(0)

    # The playground: the answer grows in the page while the stream runs.
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Model").select_option("deepseek/deepseek-chat")
    page.get_by_label("Message").fill(
        "Explain quantum computing [[sim tokens=40 chunk_delay_ms=60]]"
    )
    page.get_by_role("button", name="Send").click()
    answer, status = page.locator("#answer"), page.locator("#answer-status")
    expect(status).to_have_text("Streaming…")
    expect(answer).not_to_be_empty()
    partial = answer.text_content() or ""
    assert "Done" not in (status.text_content() or "")  # text arrived before the stream ended
    expect(status).to_contain_text("40 completion tokens", timeout=30_000)
    assert len(answer.text_content() or "") > len(partial) > 0
    shot(page, "playground")

    # Usage: the streamed chat is counted (the audit service stores it within moments).
    page.get_by_role("link", name="Usage").click()
    deadline = time.monotonic() + 30
    while not page.get_by_role("row").filter(has_text="deepseek-chat").count():
        assert time.monotonic() < deadline, page.content()
        page.reload()
    row = page.get_by_role("row").filter(has_text="deepseek-chat")
    expect(row.get_by_role("cell").nth(2)).to_have_text("1")  # requests
    expect(page.get_by_role("figure").first).to_contain_text("deepseek / deepseek-chat")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.splitlines()[0].startswith("provider,model,requests")
    assert "deepseek,deepseek-chat,1," in csv_text
    shot(page, "usage")

    # Signing out revokes the token at the edge.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    revoked = httpx.get(
        f"{edge}/api/v1/api-keys", headers={"authorization": f"Bearer {token}"}, timeout=30
    )
    assert revoked.status_code == 401


def dead_letter(fleet: FleetConfig, user_id: str) -> str:
    """A deepseek chat job set aside as the workers' recovery sets one aside."""
    past = time.time() - 300
    request = ChatRequest(
        provider="deepseek",
        model="deepseek-chat",
        messages=[{"role": "user", "content": "hello again [[sim tokens=7]]"}],
    )
    job = ChatJob(
        id=f"job_test_{secrets.token_hex(6)}",
        trace=f"req_test_{secrets.token_hex(6)}",
        ts=past,
        deadline=past + 30,
        user_id=user_id,
        request=request,
    )
    record = {"job": encode(job), "error": WORKER_STOPPED, "deliveries": "3", "ts": str(past)}
    client = redis.Redis.from_url(fleet.redis_url)
    try:
        entry = client.xadd(RedisKeys(fleet.redis_prefix).dead_letters("deepseek"), record)
    finally:
        client.close()
    return str(entry.decode() if isinstance(entry, bytes) else entry)


def test_an_admin_sees_a_failing_providers_breaker_open_and_retries_a_dead_letter(
    browser: Browser, context: BrowserContext, console_fleet: FleetConfig
) -> None:
    console, edge = console_fleet.console_url, console_fleet.edge_url
    assert console
    page = context.new_page()
    user_email = f"someone-{secrets.token_hex(4)}@example.com"
    user = httpx.post(
        f"{edge}/api/v1/auth/register",
        json={"email": user_email, "password": PASSWORD, "name": "Some One"},
        timeout=30,
    ).json()
    sign_in(page, console, CONSOLE_ADMIN)  # the fleet's bootstrap admin
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Dead letters")

    # Users: find one by part of the email, make them paid.
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Find by id").fill(user_email.split("@")[0])
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name=user_email).click()
    page.get_by_role("combobox", name="Tier").select_option("paid")
    page.get_by_role("button", name="Set tier").click()
    expect(page.get_by_role("status")).to_have_text("The user was updated.")
    expect(page.get_by_role("definition").filter(has_text="paid")).to_be_visible()
    shot(page, "admin-user")

    # xAI's upstream fails: after a few failures its breaker opens, and the page shows it.
    headers = {"authorization": f"Bearer {user['token']}"}
    failing = {
        "provider": "xai",
        "model": "grok-3",
        "messages": [{"role": "user", "content": "hi [[sim fail=500]]"}],
    }
    statuses = []
    while 503 not in statuses:  # 502s until the breaker opens; then 503 at once
        assert len(statuses) < 3 * BREAKER_MIN_REQUESTS, statuses
        response = httpx.post(f"{edge}/api/v1/chat", json=failing, headers=headers, timeout=30)
        statuses.append(response.status_code)
    assert set(statuses) == {502, 503} and statuses[-1] == 503
    page.get_by_role("link", name="Providers").click()
    xai = page.locator('tr[data-provider="xai"]')
    expect(xai.locator("[data-breaker]")).to_have_attribute("data-breaker", "open")
    expect(xai).to_contain_text("s left")
    deadline = time.monotonic() + 30  # the failures reach the audit log within moments
    while "100.0 %" not in (xai.text_content() or ""):
        assert time.monotonic() < deadline, xai.text_content()
        page.reload()
    expect(page.locator('tr[data-provider="deepseek"] [data-breaker]')).to_have_text("closed")
    shot(page, "admin-providers")
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=context.storage_state()
    )
    try:
        small = phone.new_page()
        small.goto(f"{console}/console/admin/providers")
        assert small.evaluate("() => document.documentElement.scrollWidth") <= 390
        shot(small, "admin-providers-phone")
    finally:
        phone.close()

    # A dead letter: listed with its last error, retried, gone from the list.
    entry = dead_letter(console_fleet, user["user"]["id"])
    page.get_by_role("link", name="Dead letters").click()
    row = page.get_by_role("row").filter(has_text=user["user"]["id"])
    expect(row).to_contain_text(WORKER_STOPPED)
    expect(row).to_contain_text("chat · deepseek-chat")
    shot(page, "admin-dead-letters")
    row.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_contain_text(": success, ")
    expect(page.locator(f'form[action$="/{entry}/retry"]')).to_have_count(0)
