"""A fleet of its own for the console's tests, with the console in it: its circuit breakers open
after a few failures (the shared fleet's never do), so an admin can watch one open; and Debian's
Chromium, driven by Playwright, for the browser tests."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from services.fleet.infra import create_database, drop_database, free_port
from services.fleet.plan import FleetConfig, plan
from services.fleet.processes import Service, stop_all
from shared.providers import PROVIDERS
from tests.conftest import RUN_ID

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
CONSOLE_ADMIN = f"console-admin-{RUN_ID}@example.com"
PASSWORD = "correct-horse-battery"
BREAKER_MIN_REQUESTS = 4


@pytest.fixture(scope="session")
def console_fleet(redis_url: str, postgres_server: str, run_dir: Path) -> Iterator[FleetConfig]:
    name = f"gw_test_{RUN_ID}_console"
    database_url = asyncio.run(create_database(postgres_server, name))
    data_dir = run_dir / "console-fleet"
    config = FleetConfig(
        redis_url=redis_url,
        database_url=database_url,
        data_dir=data_dir,
        edge_port=free_port(),
        auth_port=free_port(),
        keyvault_port=free_port(),
        worker_metrics_ports=tuple(free_port() for _ in PROVIDERS),
        simulator_port=free_port(),
        audit_port=free_port(),
        console_port=free_port(),
        redis_prefix=f"gw-test-{RUN_ID}-console",
        log_dir=data_dir / "logs",
        extra_env={
            "BCRYPT_ROUNDS": "4",
            "REQUEST_TIMEOUT": "30s",
            "NODE_ENV": "test",
            "BOOTSTRAP_ADMIN_EMAIL": CONSOLE_ADMIN,
            "BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
            "RATE_LIMIT_MAX": "100000",
            "AUTH_RATE_LIMIT_MAX": "100000",
            "LOGIN_CLIENT_MAX_FAILURES": "100000",
            "AUTH_CLIENT_MAX_FAILURES": "100000",
            # A provider failing a few times in a row opens its breaker, and it stays open
            # while the test looks; one attempt per request, so each failure counts once.
            "BREAKER_MIN_REQUESTS": str(BREAKER_MIN_REQUESTS),
            "BREAKER_COOLDOWN": "5m",
            "RETRY_MAX_ATTEMPTS": "1",
        },
    )
    services = plan(config)
    try:
        for service in services:
            service.start()
            service.wait_healthy()
        yield config
    finally:
        stop_all(services)
        asyncio.run(drop_database(postgres_server, name))


@pytest.fixture(scope="session")
def secure_console(console_fleet: FleetConfig) -> Iterator[str]:
    """A second console on the same edge as production runs it: `Secure` cookies."""
    port = free_port()
    env = {
        "EDGE_URL": console_fleet.edge_url,
        "CONSOLE_PORT": str(port),
        "CONSOLE_SECURE_COOKIES": "true",
        "HOST": "127.0.0.1",
        "DATA_DIR": str(console_fleet.data_dir),
        "NODE_ENV": "test",
    }
    log = console_fleet.log_dir / "console-secure.log" if console_fleet.log_dir else None
    service = Service(
        "console-secure",
        ["-m", "services.console"],
        env,
        health_url=f"http://127.0.0.1:{port}/health/ready",
        log_path=log,
    )
    try:
        service.start()
        service.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()


@pytest.fixture
def console(secure_console: str) -> Iterator[httpx.Client]:
    """A client of the console that runs with `Secure` cookies: being plain HTTP, it sends
    them by hand, as a header."""
    with httpx.Client(base_url=secure_console, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (the browser tests skip, saying so, where it is not installed)."""
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
