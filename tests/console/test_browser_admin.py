"""The console in a real browser (Debian's Chromium, driven by Playwright) against the real
fleet, as an admin: find a user and make them paid, set their spend budget and see it spent,
read their usage and the whole gateway's, remove the budget; see a failing provider's breaker
open; retry a dead letter."""

import secrets
import time

import httpx
import redis
from playwright.sync_api import Browser, BrowserContext, expect

from services.console.formats import usd
from services.fleet.plan import FleetConfig
from services.workers.recovery import WORKER_STOPPED
from shared.messages import ChatJob, encode
from shared.redis_keys import RedisKeys
from shared.schemas import ChatRequest
from tests.console.browsing import (
    BROWSER_TESTS,
    cell,
    chat,
    fits_a_phone,
    reload_until,
    session_token,
    shot,
    sign_in,
)
from tests.console.conftest import BREAKER_MIN_REQUESTS, CONSOLE_ADMIN, PASSWORD

pytestmark = BROWSER_TESTS


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
        reply_to="gw-test:replies:none",  # nobody waits for a dead letter's first run
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

    # A spend budget for the user: set, spent against, shown with their usage, removed.
    admin_view = f"{edge}/api/v1/admin/users/{user['user']['id']}"
    page.get_by_label("Amount (USD)").fill("2.5")
    page.get_by_label("Resets").select_option("month")
    page.get_by_role("button", name="Set budget").click()
    expect(page.get_by_role("status")).to_have_text("The spend budget was set.")
    expect(page.locator("dl.facts")).to_contain_text("$2.50 a month")
    admin_token = session_token(context)
    as_admin = {"authorization": f"Bearer {admin_token}"}
    budget = httpx.get(admin_view, headers=as_admin, timeout=30).json()["budget"]
    assert (budget["amount_usd"], budget["period"]) == (2.5, "month")
    cost = chat(edge, user["token"], "What is a budget? [[sim tokens=25]]")
    page.reload()
    expect(page.get_by_role("region", name="Spend budget")).to_contain_text(
        f"{usd(cost)} spent of $2.50 a month"
    )
    shot(page, "admin-user")
    page.get_by_role("link", name="Their usage and spend").click()
    expect(page.get_by_role("heading", name=f"Usage of {user_email}")).to_be_visible()
    reload_until(page, "deepseek-chat")
    assert cell(page, "deepseek-chat", "Spend (USD)") == usd(cost)
    expect(page.get_by_role("region", name="Their spend budget")).to_contain_text(
        f"{usd(cost)} spent of $2.50 a month"
    )
    page.get_by_label("The whole gateway").check()
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Usage of the whole gateway")).to_be_visible()
    everyone = page.get_by_role("row").filter(has_text=user["user"]["id"])
    expect(everyone.filter(has_text="deepseek-chat")).to_have_count(1)
    expect(page.get_by_role("figure").filter(has_text="Spend by user")).to_contain_text(
        user["user"]["id"]
    )
    shot(page, "usage-gateway")
    assert fits_a_phone(browser, context, page.url)
    everyone.get_by_role("link", name=user["user"]["id"]).first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove budget").click()
    expect(page.get_by_role("status")).to_have_text("The spend budget was removed.")
    expect(page.get_by_role("region", name="Spend budget")).to_contain_text("No spend budget")
    assert httpx.get(admin_view, headers=as_admin, timeout=30).json()["budget"] is None

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
