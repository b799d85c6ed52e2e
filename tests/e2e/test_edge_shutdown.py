"""On SIGTERM the edge stops accepting new requests and finishes the streams it has open."""

import asyncio
import signal
from collections.abc import Awaitable, Callable

import asyncpg
import httpx

from services.fleet.infra import free_port
from services.fleet.plan import FleetConfig, edge_replica
from tests.audit.support import wait_for_rows
from tests.e2e.helpers import auth, chat_body, eventually, new_trace


def refused(client: httpx.AsyncClient) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        try:
            await client.get("/health/live")
        except httpx.ConnectError:
            return True
        return False

    return condition


async def test_sigterm_lets_open_streams_finish(
    fleet: FleetConfig, user_token: str, database_url: str
) -> None:
    trace = new_trace()
    replica = edge_replica(fleet, free_port())
    try:
        replica.start()
        replica.wait_healthy()
        assert replica.process is not None
        base = str(replica.health_url).removesuffix("/health/ready")
        body = chat_body("deepseek", "deepseek-chat", "hi [[sim tokens=40 chunk_delay_ms=100]]")
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as client,
            client.stream(
                "POST",
                "/api/v1/chat",
                json={**body, "stream": True},
                headers=auth(user_token, trace),
            ) as response,
        ):
            lines = response.aiter_lines()
            first = await anext(lines)
            assert first.startswith("data: ")
            replica.process.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient(base_url=base, timeout=5) as newcomer:
                await eventually(refused(newcomer), "the stopping edge refusing connections")
            rest = [line async for line in lines if line]
            assert rest[-1] == "data: [DONE]"
            deltas = [first, *rest]
            assert sum(line.startswith('data: {"delta":{"content"') for line in deltas) == 40
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert await asyncio.to_thread(replica.process.wait, 15) in (0, -signal.SIGTERM)
    finally:
        replica.stop()
    db = await asyncpg.connect(database_url)
    try:
        await wait_for_rows(db, [trace])  # the finished stream's record was written before exit
    finally:
        await db.close()
