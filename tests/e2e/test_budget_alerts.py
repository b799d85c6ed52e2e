"""Budget alerts: a budget passing a threshold writes one audit record and metric per budget,
period and threshold, and a worker POSTs it, signed, to a real HTTP receiver started here,
retrying when the receiver fails; never on the request's path."""

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiohttp import web
from redis.asyncio import Redis

from services.fleet.infra import free_port
from services.fleet.plan import FleetConfig, fleet_env
from services.fleet.processes import Service
from services.workers.alerts import AlertSender
from shared.redis_keys import RedisKeys
from tests.e2e.helpers import auth, chat_body, running_edge
from tests.e2e.spend_support import admin_token, register

SECRET = "alert-signing-secret"


@dataclass
class Receiver:
    """A webhook that fails the first POST of every alert with `first_status`, then takes it."""

    url: str = ""
    first_status: int = 503
    seen: dict[bytes, int] = field(default_factory=dict)  # body -> POSTs of it
    taken: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (alert, signature)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen[body] = self.seen.get(body, 0) + 1
        if self.seen[body] == 1:
            return web.Response(status=self.first_status)
        self.taken.append((orjson.loads(body), request.headers.get("X-Gateway-Signature", "")))
        return web.Response(status=204)

    def of(self, user_id: str) -> list[dict[str, Any]]:
        return [alert for alert, _ in self.taken if alert["user_id"] == user_id]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/budget", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    found.url = f"http://127.0.0.1:{port}/hooks/budget"
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.fixture
def webhook_worker(fleet: FleetConfig, receiver: Receiver) -> Iterator[Service]:
    """One more worker pool of the fleet, the one with the webhook configured."""
    env = {
        **fleet_env(fleet),
        "BUDGET_ALERT_WEBHOOK_URL": receiver.url,
        "BUDGET_ALERT_WEBHOOK_SECRET": SECRET,
    }
    log = fleet.log_dir / "worker-alerts.log" if fleet.log_dir else None
    service = Service(
        "worker-alerts", ["-m", "services.workers", "--provider", "nvidia_nim"], env, log_path=log
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def eventually(check: Any, within: float = 30) -> Any:
    deadline = time.monotonic() + within
    while not (found := await check()):
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)
    return found


def signed(body: dict[str, Any]) -> str:
    raw = orjson.dumps(body)
    return "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()


async def test_passing_thresholds_alerts_once_each_signed_and_retried(
    fleet: FleetConfig,
    edge: httpx.AsyncClient,
    receiver: Receiver,
    webhook_worker: Service,
    db: asyncpg.Connection,
) -> None:
    admin = await admin_token(edge)
    user_id, token = await register(edge)
    put = await edge.put(
        f"/api/v1/admin/users/{user_id}/budget",
        json={"amount_usd": 0.002, "period": "day"},
        headers=auth(admin),
    )
    assert put.status_code == 200, put.text
    body = chat_body("deepseek", "deepseek-chat", "Spend [[sim tokens=50]]", max_tokens=60)
    with running_edge(fleet, BUDGET_ALERT_THRESHOLDS="0.5,0.9") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as replica:
            spent = Decimal(0)
            for _ in range(40):
                response = await replica.post("/api/v1/chat", json=body, headers=auth(token))
                if response.status_code == 402:
                    break
                assert response.status_code == 200, response.text
                spent += Decimal(response.headers["x-gateway-cost-usd"])
            assert response.status_code == 402
            metrics = (await replica.get("/metrics")).text
    assert spent / Decimal("0.002") >= Decimal("0.9")
    for threshold in ("0.5", "0.9"):
        line = f'gateway_budget_alerts_total{{scope="user",threshold="{threshold}"}} 1.0'
        assert line in metrics

    alerts = await eventually(lambda: _two(receiver, user_id))
    assert [a["threshold"] for a in alerts] == [0.5, 0.9]
    for alert in alerts:
        assert alert["type"] == "budget_alert"
        assert (alert["scope"], alert["key_id"], alert["period"]) == ("user", None, "day")
        assert alert["budget_usd"] == 0.002
        assert alert["spent_usd"] >= alert["threshold"] * 0.002
        assert alert["resets_at"].endswith("T00:00:00Z") and alert["at"].endswith("Z")
    for alert, signature in receiver.taken:
        if alert["user_id"] == user_id:
            assert signature == signed(alert)  # the signature of the exact bytes received
    assert all(count == 2 for count in receiver.seen.values())  # each retried once

    rows = await eventually(lambda: _records(db, user_id))
    assert [orjson.loads(r["details"])["threshold"] for r in rows] == [0.5, 0.9]
    assert {(r["method"], r["path"], r["event"]) for r in rows} == {
        ("EVENT", "budget_alert", "budget_alert")
    }


async def _two(receiver: Receiver, user_id: str) -> list[dict[str, Any]] | None:
    alerts = sorted(receiver.of(user_id), key=lambda a: a["threshold"])
    return alerts if len(alerts) == 2 else None


async def _records(db: asyncpg.Connection, user_id: str) -> list[asyncpg.Record] | None:
    rows = await db.fetch(
        "SELECT * FROM audit_log WHERE user_id = $1 AND event = 'budget_alert' ORDER BY seq",
        user_id,
    )
    return rows if len(rows) == 2 else None


async def test_an_alert_the_webhook_refuses_is_not_retried(
    redis_url: str, receiver: Receiver
) -> None:
    """A 4xx other than 408 and 429 is final; the entry is acknowledged and deleted."""
    receiver.first_status = 400
    keys = RedisKeys(f"gw-alerts-{secrets.token_hex(4)}")
    redis = Redis.from_url(redis_url)
    async with httpx.AsyncClient(timeout=5) as client:
        sender = AlertSender(
            redis, keys, client, url=receiver.url, secret=None, consumer="c1", base_delay=0.01
        )
        stop = asyncio.Event()
        running = asyncio.create_task(sender.run(stop))
        try:
            await redis.xadd(keys.budget_alerts(), {"body": b'{"user_id": "usr_x"}'})
            await eventually(lambda: _settled(sender))
            assert (sender.delivered, sender.failed) == (0, 1)
            assert list(receiver.seen.values()) == [1]
            assert await redis.xlen(keys.budget_alerts()) == 0
        finally:
            stop.set()
            running.cancel()
            await redis.delete(keys.budget_alerts())
            await redis.aclose()


async def _settled(sender: AlertSender) -> bool:
    return sender.delivered + sender.failed > 0
