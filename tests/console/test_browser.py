"""The console in a real browser (Debian's Chromium, driven by Playwright) against the real
fleet, as a user: sign up, create an API key with a spend budget and see its spend, revoke it,
store a provider key, watch a chat stream in the playground with its cost, and find both
requests in usage (spend, charts, other groupings and periods, the edge's CSV)."""

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, expect

from services.console.formats import usd, when
from services.console.usage import NO_KEY
from services.fleet.plan import FleetConfig
from tests.console.browsing import (
    BROWSER_TESTS,
    assert_nothing_stored,
    cell,
    chat,
    fits_a_phone,
    reload_until,
    session_token,
    shot,
    sign_up,
    usage_of,
)

pytestmark = BROWSER_TESTS


def test_a_user_manages_keys_streams_a_chat_and_sees_it_in_usage(
    browser: Browser, context: BrowserContext, console_fleet: FleetConfig
) -> None:
    console, edge = console_fleet.console_url, console_fleet.edge_url
    assert console
    page = context.new_page()
    sign_up(page, console, f"browser-{secrets.token_hex(4)}@example.com")
    token = session_token(context)
    assert_nothing_stored(page, token)

    # A gateway API key with its own budget: its secret once, with a copy button; it works,
    # its spend shows in the list, until it is revoked.
    page.get_by_label("Name", exact=True).fill("batch job")
    page.get_by_label("DeepSeek").check()
    page.get_by_label("Requests").fill("500")
    page.get_by_label("Amount (USD)").fill("5")
    page.get_by_label("Resets").select_option("day")
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
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    resets = when(f"{tomorrow.isoformat()}T00:00:00Z")
    expect(row).to_contain_text("$5.00 a day")
    expect(row).to_contain_text(f"$0.00 spent; resets {resets}")
    expect(row.locator("meter")).to_have_attribute("max", "5.0")
    shot(page, "api-keys")
    assert fits_a_phone(browser, context, f"{console}/console/api-keys")
    key_auth = {"authorization": f"Bearer {secret}"}
    assert httpx.get(f"{edge}/api/v1/providers", headers=key_auth, timeout=30).status_code == 200
    key_cost = chat(edge, secret, "Summarise the night's logs [[sim tokens=30]]")
    assert key_cost > 0
    page.goto(f"{console}/console/api-keys")
    expect(row).to_contain_text(f"{usd(key_cost)} spent")
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
    # The stream's last event says what it cost.
    expect(status).to_contain_text(" · cost $")
    shown_cost = (status.text_content() or "").rsplit("cost ", 1)[1]
    shot(page, "playground")

    # Usage: the key's chat and the streamed one, each in its own row, with its spend; the
    # totals are the edge's, the charts show spend and tokens by day, model and key.
    page.get_by_role("link", name="Usage").click()
    reload_until(page, "deepseek-chat", NO_KEY)
    report = usage_of(edge, token).json()
    (streamed,) = [r for r in report["usage"] if r["key"] is None]
    assert usd(streamed["cost_usd"]) == shown_cost and streamed["completion_tokens"] == 40
    assert cell(page, NO_KEY, "Spend (USD)") == shown_cost
    assert cell(page, NO_KEY, "Requests") == "1"
    (keyed,) = [r for r in report["usage"] if r["key"] is not None]
    assert cell(page, f"{keyed['key']} (revoked)", "Spend (USD)") == usd(key_cost)
    total = report["totals"]["cost_usd"]
    spend_total = page.locator("dl.totals > div").filter(has_text="Spend (USD)")
    expect(spend_total.get_by_role("definition")).to_have_text(usd(total))
    charts = page.get_by_role("figure")
    expect(charts.filter(has_text="Spend by day")).to_have_count(1)
    by_day = charts.filter(has_text="Spend by day").get_by_role("img")
    expect(by_day).to_have_attribute("aria-label", re.compile(rf"the most {re.escape(usd(total))}"))
    expect(charts.filter(has_text="Spend by provider and model")).to_contain_text(
        f"deepseek / deepseek-chat — {usd(total)}"
    )
    expect(charts.filter(has_text="Tokens by API key")).to_contain_text(NO_KEY)
    expect(page.get_by_role("heading", name="Your spend budget")).to_be_visible()
    expect(page.locator(".budget-box")).to_contain_text("No spend budget")
    shot(page, "usage")
    assert fits_a_phone(browser, context, f"{console}/console/usage")

    # The CSV is the edge's own for the same report, passed through.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    today = datetime.now(UTC).date()
    assert download.value.suggested_filename == f"usage-{today - timedelta(days=30)}-{today}.csv"
    csv_text = Path(download.value.path()).read_text()
    since = (today - timedelta(days=30)).isoformat()
    assert csv_text == usage_of(edge, token, format="csv", **{"from": since}).text
    assert csv_text.splitlines()[0].startswith("day,provider,model,key,requests,")
    assert f",deepseek,deepseek-chat,,1,{streamed['prompt_tokens']},40," in csv_text

    # A narrower grouping and another period: the same spend, by provider alone.
    for grouping in ("day", "model", "API key"):
        page.get_by_role("checkbox", name=grouping, exact=True).uncheck()
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="By provider")).to_be_visible()
    assert cell(page, "deepseek", "Spend (USD)") == usd(total)
    page.get_by_role("link", name="Today").click()
    expect(page.get_by_label("From", exact=True)).to_have_value(today.isoformat())
    assert cell(page, "deepseek", "Spend (USD)") == usd(total)

    # Signing out revokes the token at the edge.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    revoked = httpx.get(
        f"{edge}/api/v1/api-keys", headers={"authorization": f"Bearer {token}"}, timeout=30
    )
    assert revoked.status_code == 401
